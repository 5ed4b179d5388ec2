package collector

import (
	"fmt"

	"github.com/packetlake/packetlake/bpf"
)

// xdpMode maps Config.XDPMode to the bpf package's attach mode.
func xdpMode(s string) (bpf.XDPMode, error) {
	switch s {
	case "auto":
		return bpf.XDPAuto, nil
	case "native":
		return bpf.XDPNative, nil
	case "generic":
		return bpf.XDPGeneric, nil
	}
	return 0, fmt.Errorf("xdp mode %q: want auto, native or generic", s)
}
