package bpf

import (
	"testing"

	"github.com/packetlake/packetlake/record"
)

// TestCostYardsticks: pl.c's pl_cost_* programs (BenchmarkParserCaptures' per-operation prices)
// load with the object, pass every packet, and the ring yardstick leaves nothing a reader sees:
// its reservations are discarded, so a collector sharing the ring would read no stray sample.
func TestCostYardsticks(t *testing.T) {
	e := newEnv(t, Config{})
	frame := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(tcp{sport: 1, dport: 2, flags: 0x002}.build(nil)))
	for _, o := range newOpCosts(e) {
		ret, _, err := o.p.Benchmark(frame, 100, nil)
		if err != nil || ret != xdpPass {
			t.Fatalf("%s: %d, %v", o.name, ret, err)
		}
	}
	if got := e.drainSamples(t); len(got) != 0 {
		t.Fatalf("the yardsticks left %d samples in the ring", len(got))
	}
	st := readStats(t, e)
	if st[record.StatSeen] != 0 { // no yardstick is a packet of the parser
		t.Fatalf("seen = %d after the yardsticks", st[record.StatSeen])
	}
}
