package bpf

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/packetlake/packetlake/record"
)

// TestLoadPassesVerifier loads the object (XDP, TC and the empty yardstick program) and logs the
// verifier's work per program.
func TestLoadPassesVerifier(t *testing.T) {
	if err := CheckCaps(); err != nil {
		t.Fatal(err)
	}
	spec, err := loadPl()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats},
	})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	defer coll.Close()
	for _, name := range []string{plProgPlXdp, plProgPlXdpLinear, plProgPlTc, plProgPlXdpRecord, plProgPlFlush, plProgPlXdpPass} {
		p := coll.Programs[name]
		if p == nil {
			t.Fatalf("program %s missing", name)
		}
		log := strings.TrimSpace(p.VerifierLog)
		t.Logf("%s (%s): %s", name, p.Type(), log[strings.LastIndex(log, "\n")+1:])
	}
	if got := spec.Programs[plProgPlXdp].Flags; got&(1<<5) == 0 { // BPF_F_XDP_HAS_FRAGS
		t.Errorf("pl_xdp is not frags-aware (flags %#x)", got)
	}
	if got := spec.Programs[plProgPlXdpLinear].Flags; got&(1<<5) != 0 {
		t.Errorf("pl_xdp_linear is frags-aware (flags %#x): data_end - data would not be the frame length", got)
	}

	o, err := Load(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := o.Events().MaxEntries(); got != DefaultRingBytes {
		t.Errorf("ring of %d bytes, want %d", got, DefaultRingBytes)
	}
	st, err := o.ReadStats()
	if err != nil || len(st) != record.StatSlots {
		t.Errorf("ReadStats: %d slots, %v; want %d", len(st), err, record.StatSlots)
	}
}

// TestBTFHasRecord: the lead's schema test reads struct pl_record from the object's BTF; its
// layout, and the tunnel trailer's, must be the generated ones.
func TestBTFHasRecord(t *testing.T) {
	spec, err := loadPl()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		size    int
		members []struct {
			Name   string
			Offset int
			Size   int
		}
	}{{"pl_record", record.KernelRecordSize, record.KernelMembers}, {"pl_record_tunnel", record.KernelTunnelSize, record.KernelTunnelMembers}} {
		var s *btf.Struct
		if err := spec.Types.TypeByName(c.name, &s); err != nil {
			t.Fatalf("struct %s not in BTF: %v", c.name, err)
		}
		if int(s.Size) != c.size || len(s.Members) != len(c.members) {
			t.Fatalf("%s: %d bytes, %d members; want %d, %d", c.name, s.Size, len(s.Members), c.size, len(c.members))
		}
		for i, m := range s.Members {
			w := c.members[i]
			if m.Name != w.Name || int(m.Offset.Bytes()) != w.Offset {
				t.Errorf("%s member %d: %s at %d, want %s at %d", c.name, i, m.Name, m.Offset.Bytes(), w.Name, w.Offset)
			}
		}
	}
}

func TestConfigAndAttachErrors(t *testing.T) {
	for _, c := range []Config{{RingBytes: 3000}, {RingBytes: 1 << 20, WakeupBytes: 2 << 20}, {RingBytes: 1024},
		{BatchRecords: -1}, {BatchRecords: 1 << 20}, {BatchAge: -time.Second}} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if c, _ := (Config{RingBytes: 4096}).withDefaults(); c.WakeupBytes != 1024 {
		t.Errorf("default wake-up for a 4 KiB ring: %d", c.WakeupBytes)
	}
	// A batch never exceeds a quarter of the ring (nor the 16 KiB stage): a 4 KiB ring writes
	// every record at once, the default ring stages up to 16 KiB.
	for ring, want := range map[int]uint32{4096: 0, 64 << 10: 16384 - recordMax, DefaultRingBytes: 16384 - recordMax} {
		c, _ := (Config{RingBytes: ring}).withDefaults()
		if got := c.batchLimit(); got != want {
			t.Errorf("batch limit for a %d-byte ring: %d, want %d", ring, got, want)
		}
		if c.BatchRecords != DefaultBatchRecords || c.BatchAge != DefaultBatchAge {
			t.Errorf("batch defaults: %+v", c)
		}
	}
	o, err := Load(Config{RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for name, attach := range map[string]func() error{
		"xdp": func() error { _, err := o.AttachXDP(1<<30, XDPAuto); return err },
		"tc":  func() error { _, err := o.AttachTC(1 << 30); return err },
	} {
		err := attach()
		if err == nil || !strings.Contains(err.Error(), "no interface with index") || !strings.Contains(err.Error(), "hint") {
			t.Errorf("%s on a missing interface: %v", name, err)
		}
	}
}

// TestRefusesWithoutCapabilities re-runs itself as user nobody, without capabilities.
func TestRefusesWithoutCapabilities(t *testing.T) {
	if os.Getenv("PL_BPF_NOCAPS_CHILD") == "1" {
		_, err := Load(Config{})
		if err == nil || !strings.Contains(err.Error(), "CAP_BPF") {
			t.Fatalf("Load without capabilities: %v", err)
		}
		return
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) is needed to drop privileges")
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		os.Args[0], "-test.run=^TestRefusesWithoutCapabilities$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PL_BPF_NOCAPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
