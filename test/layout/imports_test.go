// Package layout keeps the repository's shape: data flows one way through the pipeline, and
// test support never leaks into what ships. It reads the module's import graph with `go list`,
// so a new import that breaks the rules fails here instead of in review.
package layout

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/packetlake/packetlake"

// stages lists the pipeline in the order the data flows. A package may import an earlier stage
// (or its own), never a later one. record holds the wire formats both ends share, so it comes
// right after the schema that defines them.
var stages = []string{"schema", "record", "bpf", "collector", "ingester", "enrich", "query", "detector", "console"}

// onlyImports pins the few packages whose whole component dependency set is part of the design.
var onlyImports = map[string][]string{
	"bpf":       {"schema"},           // the kernel side depends on the one record schema alone
	"record":    {"schema", "record"}, // wire formats import no component
	"record/l7": {},                   // the L7 parsers are pure functions of bytes
	"schema":    {"schema"},
}

// testSupport are the packages that exist for tests only.
var testSupport = []string{"internal/testkit", "test"}

// deps returns, for every package of the module, its transitive non-test dependencies inside the
// module, both relative to the module root ("" for none).
func deps(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	graph := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := rel(fields[0])
		var own []string
		for _, d := range fields[1:] {
			if r, ok := strings.CutPrefix(d, module+"/"); ok {
				own = append(own, r)
			}
		}
		graph[pkg] = own
	}
	if len(graph) < 10 {
		t.Fatalf("go list found %d packages: the module was not read", len(graph))
	}
	return graph
}

func rel(importPath string) string {
	if importPath == module {
		return ""
	}
	return strings.TrimPrefix(importPath, module+"/")
}

// under reports whether pkg is dir or inside it.
func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// stageOf returns the index of pkg's pipeline stage, or -1 for plumbing, commands and tests.
func stageOf(pkg string) int {
	for i, s := range stages {
		if under(pkg, s) {
			return i
		}
	}
	return -1
}

func TestPipelineImportsPointDown(t *testing.T) {
	for pkg, ds := range deps(t) {
		st := stageOf(pkg)
		if st < 0 {
			continue
		}
		for _, d := range ds {
			if ds := stageOf(d); ds > st {
				t.Errorf("%s (stage %s) imports %s, a later stage (%s): data flows %s",
					pkg, stages[st], d, stages[ds], strings.Join(stages, " → "))
			}
			for _, ts := range testSupport {
				if under(d, ts) {
					t.Errorf("pipeline package %s imports test support %s", pkg, d)
				}
			}
		}
	}
}

func TestPinnedDependencies(t *testing.T) {
	graph := deps(t)
	for pkg, allowed := range onlyImports {
		ds, ok := graph[pkg]
		if !ok {
			t.Errorf("package %s is gone: update onlyImports", pkg)
			continue
		}
		for _, d := range ds {
			if stageOf(d) < 0 && !under(d, "internal") {
				continue // nothing else of the module is reachable, but say so if it ever is
			}
			okDep := false
			for _, a := range allowed {
				okDep = okDep || under(d, a)
			}
			if !okDep {
				t.Errorf("%s imports %s; it may import only %v of packetlake", pkg, d, allowed)
			}
		}
	}
}

func TestTestSupportStaysInTests(t *testing.T) {
	for pkg, ds := range deps(t) {
		if under(pkg, "internal/testkit") || under(pkg, "test") {
			continue
		}
		for _, d := range ds {
			if under(d, "internal/testkit") || under(d, "test") {
				t.Errorf("%s (shipped code) imports test support %s: only _test.go files may", pkg, d)
			}
		}
	}
}

// TestGraphIsRead guards the tests above against passing on an empty or misread graph.
func TestGraphIsRead(t *testing.T) {
	graph := deps(t)
	for _, want := range []string{"bpf", "collector", "ingester", "record", "schema", "query", "detector", "cmd/packetlake"} {
		if _, ok := graph[want]; !ok {
			t.Errorf("package %s missing from go list's graph", want)
		}
	}
	found := false
	for _, d := range graph["collector"] {
		found = found || d == "bpf"
	}
	if !found {
		t.Error("collector's dependencies lack bpf: the graph is not what the layout tests assume")
	}
}
