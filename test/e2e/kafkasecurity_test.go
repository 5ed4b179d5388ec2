package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/kafkaconn"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/packetlake/packetlake/internal/testkit/tlscerts"
	"github.com/packetlake/packetlake/internal/tlsconf"
)

// Kafka users of README's Security section, one per role.
const (
	adminUser     = "packetlake-admin"
	collectorUser = "packetlake-collector"
	ingesterUser  = "packetlake-ingester"
)

// roleACLs are the ACLs README's Security section gives each role (kafka-acls.sh lines there).
func roleACLs(topics []string, group string) []*kadm.ACLBuilder {
	return []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:"+adminUser).Topics(topics...).
			Operations(kadm.OpCreate, kadm.OpDescribe, kadm.OpDescribeConfigs, kadm.OpAlterConfigs),
		kadm.NewACLs().Allow("User:"+collectorUser).Topics(topics...).Operations(kadm.OpWrite, kadm.OpDescribe),
		kadm.NewACLs().Allow("User:" + collectorUser).Clusters().Operations(kadm.OpIdempotentWrite),
		kadm.NewACLs().Allow("User:"+ingesterUser).Topics(topics...).Operations(kadm.OpRead, kadm.OpDescribe),
		kadm.NewACLs().Allow("User:"+ingesterUser).Groups(group).Operations(kadm.OpRead, kadm.OpDescribe),
	}
}

// TestKafkaSCRAMOverTLSWithRoleACLs runs the pipeline against Apache Kafka reached only over
// SASL_SSL (TLS + SCRAM-SHA-512) with the authorizer on and README's per-role ACLs:
// `topics create` as the admin user, `collect --pcap` as the collector user, `ingest` as the
// ingester user, rows in ClickHouse. Then what the ACLs are for: the collector cannot read the
// packets, the ingester cannot write (forge) them, a wrong password and a client without TLS
// get nothing.
func TestKafkaSCRAMOverTLSWithRoleACLs(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srvTLS, caFile := tlscerts.SelfSigned(t, "kafka-test")
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvTLS.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyStore := filepath.Join(dir, "keystore.pem")
	os.WriteFile(keyStore, append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvTLS.Certificates[0].Certificate[0]})...), 0o600)
	pw := map[string]string{adminUser: "admin-pw-1", collectorUser: "collector-pw-2", ingesterUser: "ingester-pw-3"}
	k, err := kafkalocal.StartApache(ctx, kafkalocal.ApacheConfig{
		DataDir: filepath.Join(dir, "kafka"),
		Secure:  &kafkalocal.SecureListener{KeyStore: keyStore, Users: pw, Authorizer: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()

	const group = "packetlake-ingester"
	topics := []string{"packets", "packetlake-stats", "packetlake-flows", "packetlake-drops"}
	super, err := kgo.NewClient(kgo.SeedBrokers(k.Addr())) // PLAINTEXT: User:ANONYMOUS, a super user
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close()
	for _, b := range roleACLs(topics, group) {
		res, err := kadm.NewClient(super).CreateACLs(ctx, b)
		for _, r := range res {
			err = errors.Join(err, r.Err)
		}
		if err != nil {
			t.Fatalf("create ACLs: %v", err)
		}
	}

	secure := func(user string) []string {
		return []string{"--brokers", k.SecureAddr(), "--kafka-tls", "--kafka-tls-ca", caFile,
			"--kafka-sasl", "SCRAM-SHA-512", "--kafka-user", user}
	}
	run := func(user string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, env.Bin, append(args, secure(user)...)...)
		cmd.Env = append(os.Environ(), "PACKETLAKE_KAFKA_PASSWORD="+pw[user])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("packetlake %s as %s: %v\n%s", args[0], user, err, out)
		}
	}
	run(adminUser, "topics", "create", "--partitions", "2", "--replication-factor", "1")
	capture := filepath.Join(sharedPcaps, "tcpdump", "dns_udp.pcap")
	run(collectorUser, "collect", "--pcap", capture, "--metrics-addr", "", "--host", "scram-test")

	ingestUntilStored(t, ctx, capture, env.Database(t), []string{"PACKETLAKE_KAFKA_PASSWORD=" + pw[ingesterUser]},
		append([]string{"--group", group}, secure(ingesterUser)...)...)

	// What the ACLs refuse, each over the same SASL_SSL listener.
	client := func(user, pass string, tls bool, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		c := kafkaconn.Config{Brokers: []string{k.SecureAddr()}, SASLMechanism: "SCRAM-SHA-512", Username: user, Password: pass}
		if tls {
			c.TLS = tlsconf.Files{Enable: true, CAFile: caFile}
		}
		cl, err := c.NewClient(kafkaconn.Deps{}, append(opts, kgo.RequestRetries(0), kgo.RetryTimeout(3*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	produce := func(cl *kgo.Client) error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cl.ProduceSync(pctx, &kgo.Record{Topic: "packets", Value: []byte("forged")}).FirstErr()
	}
	// Idempotent (as the collector produces): refused at the cluster; plain: refused at the topic.
	if err := produce(client(ingesterUser, pw[ingesterUser], true)); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("the ingester user produced idempotently: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	if err := produce(client(ingesterUser, pw[ingesterUser], true, kgo.DisableIdempotentWrite())); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("the ingester user produced to packets: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := produce(client(collectorUser, pw[collectorUser], true)); err != nil {
		t.Errorf("the collector user cannot produce: %v", err)
	}
	consumer := client(collectorUser, pw[collectorUser], true, kgo.ConsumeTopics("packets"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	fetches := consumer.PollFetches(fctx)
	fcancel()
	var fetchErr error
	fetches.EachError(func(_ string, _ int32, err error) { fetchErr = errors.Join(fetchErr, err) })
	if fetches.NumRecords() > 0 || !errors.Is(fetchErr, kerr.TopicAuthorizationFailed) {
		t.Errorf("the collector user read %d packet records (errors %v), want TOPIC_AUTHORIZATION_FAILED", fetches.NumRecords(), fetchErr)
	}
	// franz-go retries a failed authentication until the deadline: the point is nothing lands.
	if err := produce(client(collectorUser, "wrong", true)); err == nil {
		t.Errorf("a wrong password produced")
	}
	if err := produce(client(collectorUser, pw[collectorUser], false)); err == nil {
		t.Errorf("a client without TLS produced through the SASL_SSL listener")
	}
}
