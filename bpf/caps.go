package bpf

import (
	"fmt"
	"os"
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

// capHint ends every refusal for want of privileges: Load's early check and a kernel EPERM.
const capHint = "hint: run as root, or grant the binary CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN"

// CheckCaps fails with a message naming what is missing when this process cannot load the BPF
// program (CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN) and attach it (CAP_NET_ADMIN; Load demands it
// too, so even a capture replay needs it). Load calls it; callers may call it before anything
// else, so that the user reads "run as root" rather than a verifier or netlink EPERM.
func CheckCaps() error {
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
	return fmt.Errorf("not enough privileges to load the BPF program (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) "+
		"and attach it (CAP_NET_ADMIN): missing %s (uid %d); %s", strings.Join(missing, ", "), os.Geteuid(), capHint)
}
