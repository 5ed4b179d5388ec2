package chconn_test

import (
	"strings"
	"testing"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/tlsconf"
)

// Validate and TLSConfig name the --clickhouse-tls flag to fix; the zero Config is plaintext.
func TestTLSConfigValidate(t *testing.T) {
	for _, c := range []struct {
		tls  tlsconf.Files
		want string
	}{
		{tlsconf.Files{CAFile: "ca.pem"}, "clickhouse: --clickhouse-tls-* options are set but --clickhouse-tls is off"},
		{tlsconf.Files{Enable: true, CertFile: "c.pem"}, "--clickhouse-tls-key"},
		{tlsconf.Files{Enable: true, CAFile: "/nonexistent.pem"}, "--clickhouse-tls-ca"},
	} {
		_, err := chconn.Config{TLS: c.tls}.TLSConfig()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error naming %s", c.tls, err, c.want)
		}
	}
	if err := (chconn.Config{TLS: tlsconf.Files{KeyFile: "k.pem"}}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "clickhouse: ") {
		t.Errorf("Validate: got %v, want a clickhouse: error", err)
	}
	if tc, err := (chconn.Config{}).TLSConfig(); tc != nil || err != nil {
		t.Errorf("zero config: got %v, %v; want nil, nil", tc, err)
	}
	if _, err := (chconn.Config{}).Client(); err == nil || !strings.Contains(err.Error(), "no HTTP address") {
		t.Errorf("Client without an HTTP address: got %v", err)
	}
}
