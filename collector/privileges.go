package collector

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Capability numbers from linux/capability.h (x/sys/unix lacks the newer ones on some versions).
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// CheckPrivileges fails with a message naming what is missing when this process cannot load the
// BPF program (CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN) and attach it (CAP_NET_ADMIN, which
// bpf.Load also demands, so even a capture replay needs it). Checked before anything else so
// the user reads "run as root" rather than a verifier or netlink EPERM.
func CheckPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read process capabilities: %w", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	var missing []string
	if !has(capSysAdmin) {
		if !has(capBPF) {
			missing = append(missing, "CAP_BPF")
		}
		if !has(capPerfmon) {
			missing = append(missing, "CAP_PERFMON")
		}
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("not enough privileges to load the BPF program: run as root, or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (missing: %s)",
		strings.Join(missing, ", "))
}
