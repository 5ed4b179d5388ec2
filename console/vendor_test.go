package console

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The vendored ECharts is exactly the file of the pinned npm release: its sha256 is recorded
// in assets/vendor/echarts.json (checked offline), and the record is checked against the npm
// tarball itself (npm pack, verified against the registry's integrity).
type vendorRecord struct {
	Package, Version, Integrity, File, Sha256 string
}

func readVendorRecord(t *testing.T) (vendorRecord, []byte) {
	t.Helper()
	var rec vendorRecord
	b, err := assets.ReadFile("assets/vendor/echarts.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	js, err := assets.ReadFile("assets/vendor/echarts.min.js")
	if err != nil {
		t.Fatal(err)
	}
	return rec, js
}

func TestVendoredEChartsMatchesRecord(t *testing.T) {
	rec, js := readVendorRecord(t)
	sum := sha256.Sum256(js)
	if got := hex.EncodeToString(sum[:]); got != rec.Sha256 {
		t.Fatalf("assets/vendor/echarts.min.js has sha256 %s, echarts.json records %s: re-vendor %s@%s (README, Console)", got, rec.Sha256, rec.Package, rec.Version)
	}
}

func TestVendoredEChartsIsNPMRelease(t *testing.T) {
	rec, js := readVendorRecord(t)
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed to check the vendored ECharts against its npm release (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(npm, "pack", rec.Package+"@"+rec.Version, "--json", "--pack-destination", dir)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("npm pack %s@%s: %v", rec.Package, rec.Version, err)
	}
	var packed []struct{ Integrity, Filename string }
	if err := json.Unmarshal(out, &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack output: %v\n%s", err, out)
	}
	if packed[0].Integrity != rec.Integrity {
		t.Fatalf("npm's integrity of %s@%s is %s, echarts.json records %s", rec.Package, rec.Version, packed[0].Integrity, rec.Integrity)
	}
	tgz, err := os.ReadFile(filepath.Join(dir, packed[0].Filename))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(tgz)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != rec.Integrity {
		t.Fatalf("the tarball's sha512 is %s, the registry's integrity %s", got, rec.Integrity)
	}
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the tarball: %v", rec.File, err)
		}
		if h.Name != rec.File {
			continue
		}
		want, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, js) {
			t.Fatalf("assets/vendor/echarts.min.js differs from %s of %s@%s", rec.File, rec.Package, rec.Version)
		}
		return
	}
}
