package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigFile: any bytes as a config file. The loader must not panic, `config check` and a
// real run must agree (a file check passes starts every subcommand's flag parsing without
// error), and a secret's value never appears in what check prints. Seeded with the committed
// deployment configs.
//
//	go test -run '^$' -fuzz '^FuzzConfigFile$' -fuzztime 60s ./cmd/packetlake/
func FuzzConfigFile(f *testing.F) {
	for _, p := range []string{"compose/packetlake.yaml", "systemd/packetlake.yaml"} {
		b, err := os.ReadFile(filepath.Join(deployments, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("metrics-addr: 127.0.0.1:1\ningest:\n  metrics-addr: 127.0.0.1:2\n  password: hunter2\n"))
	f.Add([]byte("brokers: [a:1, b:2]\ncollect: {ring-bytes: 64M, iface: eth0}\nquery: {limit: 3}\n"))
	f.Add([]byte("detect:\n  webhook: https://h.example/T0K3N\n  webhook-secret: s3cr3t\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		problems, effective, err := checkConfig(path)
		if err != nil || len(problems) > 0 {
			return
		}
		for _, line := range effective {
			name, value, _ := strings.Cut(line, " = ")
			flag := name[strings.Index(name, ".")+1:]
			if (secretFlags[flag] && value != "(set, redacted)") || (urlFlags[flag] && strings.Count(value, "/") > 2 && !strings.HasSuffix(value, "/(redacted)")) {
				t.Fatalf("config check printed %q", line)
			}
		}
		for _, name := range configurable() {
			fs, _ := subcommands[name].flags()
			fs.SetOutput(io.Discard)
			if err := parseFlags(fs, []string{"--config", path}); err != nil {
				t.Fatalf("config check passed %q, but %s refuses it: %v", b, name, err)
			}
		}
	})
}
