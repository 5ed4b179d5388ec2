package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// containers returns every container spec (kind, name, map) of the Kubernetes manifests.
func k8sContainers(t *testing.T) (map[string]map[string]any, []any) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(deployments, "kubernetes", "*.yaml"))
	out := map[string]map[string]any{}
	var docs []any
	for _, f := range files {
		for _, doc := range yamlDocs(t, f) {
			docs = append(docs, doc)
			cs, _ := path(doc, "spec", "template", "spec", "containers").([]any)
			for _, c := range cs {
				m := c.(map[string]any)
				out[m["name"].(string)] = m
			}
		}
	}
	return out, docs
}

// TestManifestsLeastPrivilege: what a security review checks in deployments/: no committed
// Secret, images pinned to versions, the collector a non-root user with exactly CAP_BPF,
// CAP_NET_ADMIN and CAP_PERFMON from the binary's file capabilities and a read-only root; the
// other components with no capability at all.
func TestManifestsLeastPrivilege(t *testing.T) {
	cs, docs := k8sContainers(t)
	for _, d := range docs {
		if path(d, "kind") == "Secret" {
			t.Errorf("deployments/kubernetes commits a Secret (%v): document how to create it instead", path(d, "metadata", "name"))
		}
	}
	if len(cs) != 3 {
		t.Fatalf("found containers %v, want collector, ingester, detector", cs)
	}
	pinned := regexp.MustCompile(`^[^:@]+(:[0-9][^:]*|@sha256:[0-9a-f]{64})$`)
	for name, c := range cs {
		img, _ := c["image"].(string)
		if !pinned.MatchString(img) {
			t.Errorf("%s: image %q is not pinned to a version", name, img)
		}
		sc, _ := c["securityContext"].(map[string]any)
		if sc["runAsNonRoot"] != true || sc["runAsUser"] == 0 || sc["readOnlyRootFilesystem"] != true || sc["privileged"] == true {
			t.Errorf("%s: securityContext %v: want runAsNonRoot, a non-zero runAsUser, readOnlyRootFilesystem, not privileged", name, sc)
		}
		drop := strs(asList(path(sc, "capabilities", "drop")))
		add := strs(asList(path(sc, "capabilities", "add")))
		slices.Sort(add)
		if !slices.Equal(drop, []string{"ALL"}) {
			t.Errorf("%s: capabilities drop %v, want [ALL]", name, drop)
		}
		if name == "collector" {
			if !slices.Equal(add, []string{"BPF", "NET_ADMIN", "PERFMON"}) {
				t.Errorf("collector: capabilities add %v, want exactly BPF, NET_ADMIN, PERFMON", add)
			}
			// File capabilities need exec without no_new_privs.
			if sc["allowPrivilegeEscalation"] != true {
				t.Errorf("collector: allowPrivilegeEscalation %v: the kernel ignores file capabilities under no_new_privs", sc["allowPrivilegeEscalation"])
			}
			if cmd := strs(asList(c["command"])); !slices.Equal(cmd, []string{"/usr/local/bin/packetlake-collector"}) {
				t.Errorf("collector: command %v, want the image's binary with file capabilities", cmd)
			}
		} else if len(add) > 0 || sc["allowPrivilegeEscalation"] != false {
			t.Errorf("%s: capabilities add %v, allowPrivilegeEscalation %v: want none and false", name, add, sc["allowPrivilegeEscalation"])
		}
	}

	df, err := os.ReadFile(filepath.Join(deployments, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(df)
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "FROM" {
			if tag := f[1][strings.LastIndex(f[1], ":")+1:]; !strings.Contains(f[1], ":") || tag == "latest" {
				t.Errorf("Dockerfile: %q is not pinned", line)
			}
		}
	}
	for _, want := range []string{"setcap cap_bpf,cap_net_admin,cap_perfmon=ep /packetlake-collector",
		"COPY --from=build /packetlake-collector /usr/local/bin/packetlake-collector", "USER 65532:65532"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, f := range []string{"compose/compose.yaml"} {
		for _, doc := range yamlDocs(t, filepath.Join(deployments, f)) {
			walkImages(doc, func(img string) {
				if !pinned.MatchString(img) {
					t.Errorf("%s: image %q is not pinned to a version", f, img)
				}
			})
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func walkImages(n any, fn func(string)) {
	switch x := n.(type) {
	case map[string]any:
		for k, v := range x {
			if s, ok := v.(string); ok && k == "image" {
				fn(s)
			}
			walkImages(v, fn)
		}
	case []any:
		for _, v := range x {
			walkImages(v, fn)
		}
	}
}
