package bpf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// DropReasons names the kernel's drop reasons: the values of enum skb_drop_reason in the running
// kernel's BTF, read at load time because the enum gains, loses and renumbers values between
// kernels (6.18 has 130). A name loses its SKB_DROP_REASON_ prefix: "NO_SOCKET",
// "NETFILTER_DROP". Reasons of a subsystem (the value's bits above SKB_DROP_REASON_SUBSYS_SHIFT,
// 16) are not in the enum; Name gives them "SUBSYS_<n>_<code>".
type DropReasons struct {
	names map[uint32]string
}

const dropReasonSubsysShift = 16

// LoadDropReasons reads enum skb_drop_reason from the kernel's BTF.
func LoadDropReasons() (*DropReasons, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("kernel BTF: %w", err)
	}
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		return nil, fmt.Errorf("kernel BTF: enum skb_drop_reason: %w", err)
	}
	return dropReasonsOf(e)
}

func dropReasonsOf(e *btf.Enum) (*DropReasons, error) {
	r := &DropReasons{names: make(map[uint32]string, len(e.Values))}
	for _, v := range e.Values {
		name, ok := strings.CutPrefix(v.Name, "SKB_DROP_REASON_")
		if !ok {
			name = strings.TrimPrefix(v.Name, "SKB_") // SKB_NOT_DROPPED_YET, SKB_CONSUMED
		}
		// MAX and SUBSYS_MASK are bounds, not reasons a packet is dropped for.
		if name == "MAX" || name == "SUBSYS_MASK" {
			continue
		}
		if _, dup := r.names[uint32(v.Value)]; !dup {
			r.names[uint32(v.Value)] = name
		}
	}
	if len(r.names) == 0 {
		return nil, errors.New("kernel BTF: enum skb_drop_reason has no values")
	}
	return r, nil
}

// Name returns the name of reason value v.
func (r *DropReasons) Name(v uint32) string {
	if n, ok := r.names[v]; ok {
		return n
	}
	if sub := v >> dropReasonSubsysShift; sub != 0 {
		return fmt.Sprintf("SUBSYS_%d_%d", sub, v&(1<<dropReasonSubsysShift-1))
	}
	return fmt.Sprintf("REASON_%d", v)
}

// Value returns the value of the reason named name (without the prefix), and whether this kernel
// has it.
func (r *DropReasons) Value(name string) (uint32, bool) {
	for v, n := range r.names {
		if n == name {
			return v, true
		}
	}
	return 0, false
}
