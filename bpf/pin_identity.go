package bpf

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/packetlake/packetlake/schema"
)

// Attachment is where and how a program is attached: part of what a pinned program must match
// to be adopted.
type Attachment struct {
	Hook    string // "xdp" or "tc"
	XDPMode XDPMode
	Ifindex int
}

// Identity is what a binary would load with a Config, as three fingerprints compared with a
// pinned program's. The record layout is the one that must never be crossed: records in the ring
// are read as this binary's struct pl_record, so a pin of another layout is replaced, never read.
// A different object (another parser) or different settings (ring size, flow entries,
// sampling, hook) are replaced too: a pin is adopted only when it is exactly what this binary
// would load, so what runs in the kernel is always what the running binary was built and
// configured with.
type Identity struct {
	Layout   [32]byte // struct pl_record, the snippet bound and the pl_stats indices (schema)
	Object   [32]byte // the BPF object this binary embeds (pl_bpfel.o)
	Settings [32]byte // Config (after defaults) and the hook and XDP mode
}

// Identity returns what Load(cfg) attached with att would be.
func (c Config) Identity(att Attachment) (Identity, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return Identity{}, err
	}
	var id Identity
	id.Layout = LayoutFingerprint()
	id.Object = sha256.Sum256(_PlBytes)
	id.Settings = sha256.Sum256(fmt.Appendf(nil, "ring=%d wakeup=%d batch=%d age=%d flows=%d noflows=%t sample=%d frags=%t hook=%s mode=%s notlscont=%t",
		cfg.RingBytes, cfg.WakeupBytes, cfg.BatchRecords, cfg.BatchAge.Nanoseconds(), cfg.FlowEntries, cfg.NoFlows,
		cfg.SampleMax, cfg.XDPFrags, att.Hook, att.XDPMode, cfg.NoTLSCont))
	return id, nil
}

// LayoutFingerprint hashes the record layout the kernel and this binary share: every member of
// struct pl_record and of its tunnel trailer with type and offset, the snippet bound, and the
// kernel counters' order.
func LayoutFingerprint() [32]byte {
	members, size, err := schema.Layout()
	if err != nil {
		panic(err) // schema's own tests fail first
	}
	tmembers, tsize, err := schema.TunnelLayout()
	if err != nil {
		panic(err)
	}
	b := fmt.Appendf(nil, "record=%d snippet=%d\n", size, schema.SnippetMax)
	for _, m := range members {
		b = fmt.Appendf(b, "%s %s[%d] @%d\n", m.Name, m.CType, m.Array, m.Offset)
	}
	b = fmt.Appendf(b, "tunnel trailer=%d\n", tsize)
	for _, m := range tmembers {
		b = fmt.Appendf(b, "%s %s[%d] @%d\n", m.Name, m.CType, m.Array, m.Offset)
	}
	b = fmt.Appendf(b, "counters=%q parse_errors@%d slots=%d\n", schema.KernelCounters,
		schema.KernelCounterParseErrorBase, schema.KernelCounterSlots)
	return sha256.Sum256(b)
}

// pinnedCounters are the kernel counters whose pl_stats index a pin records, so that a binary
// of another layout still reads a replaced program's final counts right.
var pinnedCounters = [nPinnedCounters]string{"seen", "emitted", "ring_full", "sampled_out", "flow_counted", "flow_failed"}

const nPinnedCounters = 6

// counterIndex is the pl_stats index of a named counter in this binary's layout.
func counterIndex(name string) uint32 {
	i := slices.Index(schema.KernelCounters, name)
	if i < 0 {
		panic("bpf: no kernel counter " + name)
	}
	return uint32(i)
}
