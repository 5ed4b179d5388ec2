package bpf

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestDropReasonNames: names lose their prefix, the enum's bounds are no reasons, a subsystem's
// reason (bits above 16) and a value the enum lacks get names of their own; and the running
// kernel's BTF has the reasons the live tests induce.
func TestDropReasonNames(t *testing.T) {
	r, err := dropReasonsOf(&btf.Enum{Name: "skb_drop_reason", Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_NOT_DROPPED_YET", Value: 0}, {Name: "SKB_CONSUMED", Value: 1},
		{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 2}, {Name: "SKB_DROP_REASON_NO_SOCKET", Value: 3},
		{Name: "SKB_DROP_REASON_MAX", Value: 4}, {Name: "SKB_DROP_REASON_SUBSYS_MASK", Value: 0xffff0000},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[uint32]string{0: "NOT_DROPPED_YET", 1: "CONSUMED", 2: "NOT_SPECIFIED", 3: "NO_SOCKET",
		4: "REASON_4", 0xffff0000: "SUBSYS_65535_0", 3<<16 | 5: "SUBSYS_3_5"} {
		if got := r.Name(v); got != want {
			t.Errorf("Name(%#x) = %q, want %q", v, got, want)
		}
	}
	kernel, err := LoadDropReasons()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"NO_SOCKET", "NETFILTER_DROP", "UDP_CSUM", "SOCKET_RCVBUFF"} {
		v, ok := kernel.Value(name)
		if !ok || kernel.Name(v) != name {
			t.Errorf("kernel BTF: reason %s missing (value %d, %v)", name, v, ok)
		}
	}
}
