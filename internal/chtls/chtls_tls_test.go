package chtls

import (
	"strings"
	"testing"
)

// Validate and TLSConfig name the flag to fix; the zero Config is plaintext.
func TestTLSConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{CAFile: "ca.pem"}, "--clickhouse-tls is off"},
		{Config{Enabled: true, CertFile: "c.pem"}, "--clickhouse-tls-key"},
		{Config{Enabled: true, CAFile: "/nonexistent.pem"}, "--clickhouse-tls-ca"},
	} {
		_, err := c.cfg.TLSConfig()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
	if tc, err := (Config{}).TLSConfig(); tc != nil || err != nil {
		t.Errorf("zero config: got %v, %v; want nil, nil", tc, err)
	}
	if s := (Config{Enabled: true}).Scheme(); s != "https" {
		t.Errorf("scheme %q", s)
	}
}
