package nettest

import (
	"github.com/gopacket/gopacket/layers"

	"github.com/packetlake/packetlake/internal/pcapfile"
)

// Frame is one captured packet (see package pcapfile).
type Frame = pcapfile.Frame

// ReadPcap reads every frame of a pcap or pcapng file and returns them with its link type.
func ReadPcap(path string) ([]Frame, layers.LinkType, error) { return pcapfile.ReadAll(path) }

// ToEthernet returns data as an Ethernet frame (see pcapfile.ToEthernet).
func ToEthernet(lt layers.LinkType, data []byte) ([]byte, bool) { return pcapfile.ToEthernet(lt, data) }
