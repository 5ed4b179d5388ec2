package query

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/testkit/tlscerts"
	"github.com/packetlake/packetlake/internal/tlsconf"
)

// RunSQL reaches ClickHouse over https through a TLS-terminating proxy: with the proxy's CA it
// succeeds; without it the certificate is refused.
func TestRunSQLOverTLS(t *testing.T) {
	px := tlscerts.Start(t, env.ClickHouse.TCPAddr(), env.ClickHouse.HTTPAddr())
	p := Params{Since: time.Now().Add(-time.Hour), Until: time.Now(), Limit: 3}
	sql := "SELECT number FROM system.numbers LIMIT {limit:UInt32}"

	cfg := Config{ClickHouse: chconn.Config{HTTPAddr: px.HTTP, Database: "default", TLS: tlsconf.Files{Enable: true, CAFile: px.CAFile}}}
	var out bytes.Buffer
	if err := RunSQL(t.Context(), cfg, sql, p, "CSV", &out); err != nil {
		t.Fatalf("RunSQL over TLS with the CA: %v", err)
	}
	if got := out.String(); got != "0\n1\n2\n" {
		t.Fatalf("RunSQL over TLS: got %q, want 0..2", got)
	}

	cfg.ClickHouse.TLS.CAFile = ""
	err := RunSQL(t.Context(), cfg, sql, p, "CSV", &out)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("RunSQL over TLS without the CA: got %v, want an unknown-authority error", err)
	}

	// Plain http to the TLS port does not pass either.
	if err := RunSQL(t.Context(), Config{ClickHouse: chconn.Config{HTTPAddr: px.HTTP, Database: "default"}}, sql, p, "CSV", &out); err == nil {
		t.Fatal("plain http to the TLS port succeeded")
	}
}
