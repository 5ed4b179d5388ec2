package kafkalocal

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/packetlake/packetlake/internal/local/cache"
)

// KafkaVersion is the Apache Kafka release fetched and run by StartApache. It must match
// kafka.version in deployments/kafka/pom.xml: the fetch checks that the broker jar it got has
// this version, so a bump in one place only fails loudly.
const KafkaVersion = "3.9.1"

// pomRelPath is where the committed pom lives, relative to the repository root.
const pomRelPath = "deployments/kafka/pom.xml"

// manifestName lists the jars of a complete fetch with their sizes. It is written last, inside
// the temp dir, before the atomic rename: a libs dir without a matching manifest was not made by
// EnsureKafka and is reported as broken instead of being used.
const manifestName = "MANIFEST"

// EnsureKafka returns the directory holding the Apache Kafka jars (<cache>/kafka/<version>/libs),
// fetching them from Maven Central with mvn and the committed pom the first time. Concurrent
// callers, also in other processes (go test runs packages in parallel), serialize on a flock so
// only one downloads; the others find the finished directory. cacheDir "" means cache.Dir().
func EnsureKafka(ctx context.Context, cacheDir string, logger *slog.Logger) (string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cacheDir == "" {
		var err error
		if cacheDir, err = cache.Dir(); err != nil {
			return "", err
		}
	}
	base := filepath.Join(cacheDir, "kafka")
	final := filepath.Join(base, KafkaVersion)
	libs := filepath.Join(final, "libs")

	if _, err := os.Stat(final); err == nil {
		return libs, checkLibs(final)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("create kafka cache dir: %w", err)
	}
	unlock, err := cache.Lock(ctx, filepath.Join(base, KafkaVersion+".lock"), nil)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have finished the fetch while we waited for the lock.
	if _, err := os.Stat(final); err == nil {
		return libs, checkLibs(final)
	}
	// Temp dirs left by a fetch that died: nobody else can be writing them while we hold the lock.
	stale, _ := filepath.Glob(filepath.Join(base, KafkaVersion+".tmp-*"))
	for _, s := range stale {
		_ = os.RemoveAll(s)
	}

	pom, err := findPom()
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(base, KafkaVersion+".tmp-")
	if err != nil {
		return "", fmt.Errorf("create temp dir for kafka jars: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	start := time.Now()
	logger.Info("fetching Apache Kafka jars from Maven Central", "version", KafkaVersion, "pom", pom, "into", final)
	if err := mvnCopyDeps(ctx, pom, filepath.Join(tmp, "libs")); err != nil {
		return "", err
	}
	if err := writeManifest(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("move fetched kafka jars into place: %w", err)
	}
	logger.Info("fetched Apache Kafka jars", "version", KafkaVersion, "dir", libs, "took", time.Since(start).Round(time.Millisecond))
	return libs, nil
}

// mvnCopyDeps runs Maven's dependency plugin on the committed pom: Maven resolves Kafka's
// transitive runtime dependencies exactly as Kafka's own distribution declares them.
func mvnCopyDeps(ctx context.Context, pom, outDir string) error {
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return fmt.Errorf("fetch Apache Kafka jars: mvn not found in PATH (install Maven, e.g. apt-get install maven): %w", err)
	}
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B", "-f", pom, "dependency:copy-dependencies", "-DoutputDirectory="+outDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("fetch Apache Kafka jars: %s: %w\n%s", strings.Join(cmd.Args, " "), err, tail(string(out), 30))
	}
	want := filepath.Join(outDir, "kafka_2.13-"+KafkaVersion+".jar")
	if _, err := os.Stat(want); err != nil {
		return fmt.Errorf("fetch Apache Kafka jars: %s has no %s: kafka.version in the pom must equal kafkalocal.KafkaVersion", pom, filepath.Base(want))
	}
	return nil
}

// findPom locates deployments/kafka/pom.xml by walking up from the working directory, so it works
// from the repository root (the binary) and from a package directory (go test).
func findPom() (string, error) {
	if p := os.Getenv("PACKETLAKE_KAFKA_POM"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", pomRelPath, err)
	}
	for {
		p := filepath.Join(dir, pomRelPath)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find %s: not found above the working directory; run from the packetlake tree or set PACKETLAKE_KAFKA_POM", pomRelPath)
		}
		dir = parent
	}
}

func writeManifest(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "libs"))
	if err != nil {
		return fmt.Errorf("list fetched kafka jars: %w", err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat fetched jar: %w", err)
		}
		fmt.Fprintf(&b, "%s %d\n", e.Name(), info.Size())
	}
	if err := os.WriteFile(filepath.Join(dir, manifestName), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write kafka jar manifest: %w", err)
	}
	return nil
}

// checkLibs verifies a cached fetch against its manifest: a half-deleted or hand-edited cache
// otherwise surfaces much later as a ClassNotFoundException in the broker log.
func checkLibs(final string) error {
	broken := func(why string) error {
		return fmt.Errorf("kafka jar cache %s is broken (%s): remove it with `rm -rf %s` and run again to re-fetch", final, why, final)
	}
	f, err := os.Open(filepath.Join(final, manifestName))
	if err != nil {
		return broken("no " + manifestName)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, size, ok := strings.Cut(sc.Text(), " ")
		want, err := strconv.ParseInt(size, 10, 64)
		if !ok || err != nil {
			return broken("bad manifest line " + strconv.Quote(sc.Text()))
		}
		info, err := os.Stat(filepath.Join(final, "libs", name))
		if err != nil {
			return broken("missing " + name)
		}
		if info.Size() != want {
			return broken(fmt.Sprintf("%s is %d bytes, expected %d", name, info.Size(), want))
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return broken(err.Error())
	}
	if n == 0 {
		return broken("empty manifest")
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
