package bpf

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// BenchmarkDropLedgerCost measures what keeping the drop exporter exact across restarts adds
// to one export, against what an export cost before: reading the kernel's counters (Read: the
// per-CPU (reason, flow) map, the unseen reasons, the stats) is what every export did; writing
// that reading into the spare snapshot and the ledger twice (pending, then acknowledged) is new.
// Both run alternately in the same loop over a full map (4096 (reason, flow) keys, every one
// grown since the last export). Reported: read-us/export, ledger-us/export and ledger/read.
func BenchmarkDropLedgerCost(b *testing.B) {
	d, err := LoadDrops(DropsConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		b.Fatal(err)
	}
	const keys = 4096
	per := make([]dropsPlDropCount, ncpu)
	bump := func(n uint64) {
		for i := range keys {
			k := DropKey{Reason: 2 + uint32(i%7), Ifindex: 3, SrcPort: uint16(i), DstPort: 53, IpProto: 17, IpVersion: 4}
			k.SrcAddr[15], k.DstAddr[15] = byte(i), 1
			for c := range per {
				per[c] = dropsPlDropCount{Packets: n, Bytes: 100 * n}
			}
			if err := d.objs.PlDrops.Put(k, per); err != nil {
				b.Fatal(err)
			}
		}
	}
	var read, ledger time.Duration
	l := DropLedger{Run: 1}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		bump(uint64(i + 1))
		b.StartTimer()
		t0 := time.Now()
		now, err := d.Read()
		if err != nil || len(now.Seen) != keys {
			b.Fatalf("read %d keys: %v", len(now.Seen), err)
		}
		t1 := time.Now()
		l.Seq++
		l.PendingSeq = l.Seq
		if err := d.WriteSnapshot(1-l.Base, now); err != nil {
			b.Fatal(err)
		}
		if err := d.SetLedger(l); err != nil {
			b.Fatal(err)
		}
		l.Base, l.PendingSeq = 1-l.Base, 0
		if err := d.SetLedger(l); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		read += t1.Sub(t0)
		ledger += t2.Sub(t1)
	}
	b.ReportMetric(float64(read.Microseconds())/float64(b.N), "read-us/export")
	b.ReportMetric(float64(ledger.Microseconds())/float64(b.N), "ledger-us/export")
	b.ReportMetric(float64(ledger)/float64(read), "ledger/read")
}
