package demo

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/packetlake/packetlake/bpf"
)

// tools are the programs the demo runs, with the Debian package scripts/install-deps.sh
// installs each from. nping comes with nmap and stands in for ping (iputils-ping is not among
// the project's packages); both send real ICMP echo requests.
var tools = []struct{ name, pkg string }{
	{"ip", "iproute2"},
	{"nginx", "nginx-light"},
	{"dnsmasq", "dnsmasq-base"},
	{"curl", "curl"},
	{"dig", "bind9-dnsutils"},
	{"nmap", "nmap"},
	{"nping", "nmap"},
	{"openssl", "openssl"},
}

// preflight fails with one clear message when the demo cannot run here: not root, or a tool
// missing. It returns the tools' absolute paths.
func preflight() (map[string]string, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the demo makes network namespaces, starts servers in them and loads a BPF program: run it as root (sudo make demo)")
	}
	if err := bpf.CheckCaps(); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, t := range tools {
		p, err := lookTool(t.name)
		if err != nil {
			return nil, fmt.Errorf("the demo needs %s, which is not installed: run `make deps` (scripts/install-deps.sh) or apt-get install %s", t.name, t.pkg)
		}
		paths[t.name] = p
	}
	return paths, nil
}

// lookTool finds a tool on PATH, then in the sbin directories a non-login root shell (sudo,
// go test) may lack on its PATH: nginx and dnsmasq live there.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}
