package schema_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// The generated files are committed so that `go build` needs no generator; this fails when
// schema/columns.go changed and `make generate` was not run.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	for path, gen := range map[string]func() ([]byte, error){
		"../bpf/pl_record.h":      schema.GenerateCHeader,
		"../record/kernel_gen.go": schema.GenerateGoDecoder,
	} {
		want, err := gen()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make generate`", path)
		}
	}
}

func TestKernelRecordFeedsKnownColumns(t *testing.T) {
	cols := map[string]schema.Column{}
	for _, c := range schema.Columns {
		if _, dup := cols[c.Name]; dup {
			t.Errorf("column %s defined twice", c.Name)
		}
		cols[c.Name] = c
	}
	fed := map[string]bool{}
	for _, f := range append(append([]schema.CField(nil), schema.KernelRecord...), schema.KernelTunnel...) {
		name := f.ColumnOf()
		if name == "" {
			continue
		}
		c, ok := cols[name]
		if !ok {
			t.Errorf("pl_record.%s feeds unknown column %s", f.Name, name)
			continue
		}
		if c.Source != schema.Kernel && c.Source != schema.Derived {
			t.Errorf("pl_record.%s feeds column %s whose source is not the kernel", f.Name, name)
		}
		fed[name] = true
	}
	for _, c := range schema.Columns {
		if c.Source == schema.Kernel && !fed[c.Name] {
			t.Errorf("kernel column %s has no pl_record member", c.Name)
		}
	}
}

func TestLayoutHasNoPadding(t *testing.T) {
	for name, layout := range map[string]func() ([]schema.Member, int, error){
		"pl_record": schema.Layout, "pl_record_tunnel": schema.TunnelLayout} {
		members, size, err := layout()
		if err != nil {
			t.Fatal(err)
		}
		end := 0
		for _, m := range members {
			if m.Offset != end {
				t.Errorf("%s: gap before %s: offset %d, previous member ends at %d", name, m.Name, m.Offset, end)
			}
			end = m.Offset + m.Size
		}
		if end != size {
			t.Errorf("%s: members end at %d, struct size %d", name, end, size)
		}
		// A record's trailer and snippet, and the next record of a batch, start 8-aligned when the
		// structs are multiples of 8 (the BPF program's word stores rely on it).
		if size%8 != 0 {
			t.Errorf("%s is %d bytes, not a multiple of 8", name, size)
		}
	}
	// Issue 17 priced every byte of pl_record on every packet: it may not outgrow pre-17's 112 by
	// more than the one word the always-present tunnel columns need.
	if schema.KernelRecordSize > 120 {
		t.Errorf("pl_record is %d bytes, more than 120", schema.KernelRecordSize)
	}
}

// The columns the issue names; more are welcome, none may go missing.
func TestRequiredColumnsPresent(t *testing.T) {
	required := []string{"ts", "host", "iface", "ifindex", "pkt_len", "src_mac", "dst_mac", "eth_type",
		"vlan_id", "inner_vlan_id", "ip_version", "src_addr", "dst_addr", "ip_proto", "ttl", "tos", "ip_id",
		"ip_flags", "frag_offset", "flow_label", "src_port", "dst_port", "tcp_flags", "tcp_seq", "tcp_ack",
		"tcp_window", "icmp_type", "icmp_code", "payload_len", "dns_id", "dns_is_response", "dns_qname",
		"dns_qtype", "dns_rcode", "dns_answers", "tls_sni", "http_method", "http_host", "http_path",
		"sample_rate", "parse_error"}
	have := map[string]string{}
	for _, c := range schema.Columns {
		have[c.Name] = c.CHType
	}
	for _, name := range required {
		if _, ok := have[name]; !ok {
			t.Errorf("required column %s missing", name)
		}
	}
	for name, typ := range map[string]string{"ts": "DateTime64(9)", "src_addr": "IPv6", "dst_addr": "IPv6"} {
		if have[name] != typ {
			t.Errorf("column %s is %s, want %s", name, have[name], typ)
		}
	}
}
