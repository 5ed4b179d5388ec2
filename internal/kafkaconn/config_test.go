package kafkaconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/testkit/tlscerts"
	"github.com/packetlake/packetlake/internal/tlsconf"
)

// A real round trip through a broker that demands TLS and SASL: kfake, a Kafka-protocol test
// broker, speaks both. Wrong credentials and an untrusted certificate must fail.
func TestTLSAndSASLAgainstBroker(t *testing.T) {
	serverTLS, ca := tlscerts.SelfSigned(t, "kfake")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "ingest", "s3cret"), kfake.Superuser("PLAIN", "collect", "pl41n"),
		kfake.SeedTopics(1, "packets"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]

	roundTrip := func(c Config) error {
		c.Brokers = []string{addr}
		cl, err := c.NewClient(Deps{}, kgo.DefaultProduceTopic("packets"),
			kgo.RequestRetries(1), kgo.RetryTimeout(3*time.Second))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("frame")}).FirstErr()
	}
	good := []Config{
		{TLS: tlsconf.Files{Enable: true, CAFile: ca}, SASLMechanism: "SCRAM-SHA-512", Username: "ingest", Password: "s3cret"},
		{TLS: tlsconf.Files{Enable: true, CAFile: ca}, SASLMechanism: "PLAIN", Username: "collect", Password: "pl41n"},
	}
	for _, c := range good {
		if err := roundTrip(c); err != nil {
			t.Errorf("%s: %v", c.SASLMechanism, err)
		}
	}
	bad := map[string]Config{
		"wrong password":       {TLS: tlsconf.Files{Enable: true, CAFile: ca}, SASLMechanism: "SCRAM-SHA-512", Username: "ingest", Password: "nope"},
		"untrusted cert":       {TLS: tlsconf.Files{Enable: true}, SASLMechanism: "SCRAM-SHA-512", Username: "ingest", Password: "s3cret"},
		"no tls to a tls port": {SASLMechanism: "SCRAM-SHA-512", Username: "ingest", Password: "s3cret"},
	}
	for name, c := range bad {
		if err := roundTrip(c); err == nil {
			t.Errorf("%s: produce succeeded", name)
		}
	}
}

func TestValidateNamesTheFix(t *testing.T) {
	brokers := []string{"127.0.0.1:9092"}
	for name, tc := range map[string]struct {
		c    Config
		want string
	}{
		"no brokers":        {Config{}, "--brokers"},
		"plain in clear":    {Config{Brokers: brokers, SASLMechanism: "PLAIN", Username: "u", Password: "p"}, "in clear"},
		"no mechanism":      {Config{Brokers: brokers, Username: "u"}, "no --kafka-sasl"},
		"bad mechanism":     {Config{Brokers: brokers, SASLMechanism: "GSSAPI", Username: "u"}, "want PLAIN"},
		"no user":           {Config{Brokers: brokers, SASLMechanism: "SCRAM-SHA-256"}, "needs --kafka-user"},
		"cert without key":  {Config{Brokers: brokers, TLS: tlsconf.Files{Enable: true, CertFile: "c.pem"}}, "both"},
		"files without tls": {Config{Brokers: brokers, TLS: tlsconf.Files{CAFile: "ca.pem"}}, "--kafka-tls is off"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if err := (Config{Brokers: brokers}).Validate(); err != nil {
		t.Errorf("plaintext config: %v", err)
	}
}
