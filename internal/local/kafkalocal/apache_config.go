package kafkalocal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// nodeProps is what differs between the nodes of a cluster and a single broker.
type nodeProps struct {
	port, cport int    // client and controller ports on 127.0.0.1
	logDirs     string // Kafka's log.dirs
	nodeID      int    // 1 for a single broker
	voters      string // controller.quorum.voters: "1@127.0.0.1:cport" for a single broker
	replicas    int    // replication factor of new and internal topics: 1 or the cluster size
}

// brokerProperties is server.properties for a KRaft node that is broker and controller at once.
// Besides the settings a node needs (replication factors of 1 alone, 3 with min ISR 2 in a
// three-node cluster), it trims what only slows a test broker down: 50-partition internal
// topics, the rebalance delay, thread pools sized for big machines and the log cleaner's 128 MiB
// dedupe buffer (taken from the heap).
// The short broker session matters most: after kill -9 the restarted broker is refused
// (DUPLICATE_BROKER_REGISTRATION) until its old incarnation's session expires, 14 s with the
// default 9 s session and backoff; with 3 s it rejoins in about 4 s, and a dead partition leader
// is replaced after about 3 s. The short quorum timeouts do the same for a dead active controller.
func brokerProperties(n nodeProps) string {
	minISR := min(2, n.replicas)
	return fmt.Sprintf(`# Written by packetlake kafkalocal; rewritten on every start.
process.roles=broker,controller
node.id=%[4]d
controller.quorum.voters=%[5]s
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=%[3]s
num.partitions=1
default.replication.factor=%[6]d
min.insync.replicas=%[7]d
auto.create.topics.enable=false
offsets.topic.replication.factor=%[6]d
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=%[6]d
transaction.state.log.min.isr=%[7]d
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.replica.fetchers=1
background.threads=2
num.recovery.threads.per.data.dir=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
auto.leader.rebalance.enable=false
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
controller.quorum.election.timeout.ms=1000
controller.quorum.fetch.timeout.ms=2000
`, n.port, n.cport, n.logDirs, n.nodeID, n.voters, n.replicas, minISR)
}

// extraProperties renders overrides as server.properties lines, in key order; Java's
// Properties keeps the last of repeated keys, so they win over brokerProperties.
func extraProperties(props map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	return b.String()
}

// secureProperties adds the SASL_SSL listener of s on sport (the listeners of brokerProperties
// restated with it: the later keys win) (nothing when s is nil): TLS from a PEM key
// store, SCRAM-SHA-256/512, and optionally the StandardAuthorizer with the PLAINTEXT principal
// (controller, broker, administration) as super user.
func secureProperties(port, cport, sport int, s *SecureListener) string {
	if s == nil {
		return ""
	}
	p := fmt.Sprintf(`# SASL_SSL listener (SecureListener)
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d,SASL_SSL://127.0.0.1:%[3]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,SASL_SSL://127.0.0.1:%[3]d
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=%[4]s
listener.name.sasl_ssl.ssl.enabled.protocols=TLSv1.3,TLSv1.2
`, port, cport, sport, s.KeyStore)
	if s.Authorizer {
		p += `authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=false
`
	}
	return p
}

// log4jProperties sends the broker's log to stdout, which StartApache points at LogPath. Without
// a configuration reload4j prints only "no appenders" warnings and the log is lost.
const log4jProperties = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
`

// jvmOptions keep the broker modest on the 2-core test machines: a 512 MiB heap is plenty for
// one test broker, 256 MiB for each node of a cluster (three share the machine), and G1 with a
// short pause target avoids stalls that look like broker hangs.
func jvmOptions(dataDir string, heapMiB int) []string {
	return []string{
		fmt.Sprintf("-Xms%dm", heapMiB/2), fmt.Sprintf("-Xmx%dm", heapMiB),
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
		"-XX:MetaspaceSize=96m",
		"-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true",
		"-Dlog4j.configuration=file:" + filepath.Join(dataDir, "log4j.properties"),
		"-Dkafka.logs.dir=" + filepath.Join(dataDir, "logs"),
	}
}

// javaPath prefers $JAVA_HOME, as Kafka's own scripts do.
func javaPath() (string, error) {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		return filepath.Join(h, "bin", "java"), nil
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", fmt.Errorf("java not found in PATH and JAVA_HOME unset (Apache Kafka %s needs Java 17, e.g. apt-get install openjdk-17-jre-headless): %w", KafkaVersion, err)
	}
	return p, nil
}

// formatStorage writes meta.properties and the bootstrap metadata once per data dir; KRaft
// refuses to start on an unformatted log dir. Later starts keep the existing cluster. Every node
// of a cluster must be formatted with the same cluster id.
func formatStorage(ctx context.Context, java, libs, dataDir, logDirs, id string) error {
	if _, err := os.Stat(filepath.Join(logDirs, "meta.properties")); err == nil {
		return nil
	}
	args := append(jvmOptions(dataDir, 256), "-cp", filepath.Join(libs, "*"), "kafka.tools.StorageTool",
		"format", "-t", id, "-c", filepath.Join(dataDir, "server.properties"))
	cmd := exec.CommandContext(ctx, java, args...)
	cmd.Dir = dataDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("format kafka storage in %s: %w\n%s", logDirs, err, tail(string(out), 20))
	}
	return nil
}

// kafkaUUID makes a cluster id the way kafka.tools.StorageTool random-uuid does (16 random bytes,
// unpadded URL-safe base64, never starting with '-'), saving a JVM start.
func kafkaUUID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("make kafka cluster id: %w", err)
		}
		s := base64.RawURLEncoding.EncodeToString(b[:])
		if !strings.HasPrefix(s, "-") {
			return s, nil
		}
	}
}

// freePort asks the kernel for an unused loopback port. Another process can take it before the
// broker binds; the broker then dies with a BindException that StartApache reports.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkPortFree turns "port taken" into an error before a JVM start, instead of a stack trace in
// the broker log 3 s later.
func checkPortFree(port int, what string) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s port 127.0.0.1:%d is already in use (another broker still running? choose another port, or 0 for a free one)", what, port)
		}
		return fmt.Errorf("check %s port 127.0.0.1:%d: %w", what, port, err)
	}
	return l.Close()
}
