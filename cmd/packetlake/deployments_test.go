package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const deployments = "../../deployments"

// Every packetlake command line in the manifests (Kubernetes, compose, systemd) must name a real
// subcommand and only flags it really has; every packetlake.yaml must pass `config check`.
func TestManifestsUseRealFlags(t *testing.T) {
	var lines [][]string
	files, _ := filepath.Glob(filepath.Join(deployments, "kubernetes", "*.yaml"))
	files = append(files, filepath.Join(deployments, "compose", "compose.yaml"))
	for _, f := range files {
		for _, doc := range yamlDocs(t, f) {
			walk(doc, func(key string, list []any) {
				if key == "args" || key == "command" {
					lines = append(lines, strs(list))
				}
			})
			if data, ok := path(doc, "data", "packetlake.yaml").(string); ok {
				checkConfigText(t, f+" (ConfigMap)", data)
			}
		}
	}
	units, _ := filepath.Glob(filepath.Join(deployments, "systemd", "*.service"))
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
				lines = append(lines, strings.Fields(v)[1:])
			}
		}
	}
	for _, f := range []string{"compose/packetlake.yaml", "systemd/packetlake.yaml"} {
		b, err := os.ReadFile(filepath.Join(deployments, f))
		if err != nil {
			t.Fatal(err)
		}
		checkConfigText(t, f, string(b))
	}
	checked := 0
	for _, args := range lines {
		if len(args) == 0 {
			continue
		}
		c, ok := subcommands[args[0]]
		if !ok {
			continue // not a packetlake command line (e.g. kafka-topics.sh)
		}
		if c.setup == nil {
			t.Errorf("%v: subcommand %s takes no configuration flags", args, args[0])
			continue
		}
		fs, _ := c.flags()
		for _, a := range args[1:] {
			if !strings.HasPrefix(a, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if fs.Lookup(name) == nil {
				t.Errorf("%v: %s has no flag --%s", args, args[0], name)
			}
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("found only %d packetlake command lines in deployments/: the walker is broken", checked)
	}
}

func checkConfigText(t *testing.T, where, text string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "packetlake.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	problems, _, err := checkConfig(p)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	for _, pr := range problems {
		t.Errorf("%s: %s", where, pr)
	}
}

func yamlDocs(t *testing.T, file string) []any {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []any
	dec := yaml.NewDecoder(f)
	for {
		var d any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		docs = append(docs, d)
	}
}

func walk(n any, fn func(key string, list []any)) {
	switch x := n.(type) {
	case map[string]any:
		for k, v := range x {
			if l, ok := v.([]any); ok {
				fn(k, l)
			}
			walk(v, fn)
		}
	case []any:
		for _, v := range x {
			walk(v, fn)
		}
	}
}

func path(n any, keys ...string) any {
	for _, k := range keys {
		m, ok := n.(map[string]any)
		if !ok {
			return nil
		}
		n = m[k]
	}
	return n
}

func strs(l []any) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
