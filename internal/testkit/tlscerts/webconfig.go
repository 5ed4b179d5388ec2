package tlscerts

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// WebConfig writes an exporter-toolkit web config file (the --web-config of packetlake's
// daemons and console) serving TLS with a fresh SelfSigned certificate named commonName and
// admitting one basic-auth user. It returns the config file and the PEM file a client trusts.
func WebConfig(t testing.TB, commonName, user, password string) (webConfig, caFile string) {
	t.Helper()
	srv, caFile := SelfSigned(t, commonName)
	cert := srv.Certificates[0]
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	webConfig = filepath.Join(dir, "web.yml")
	for _, f := range []struct {
		path string
		data []byte
	}{
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})},
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})},
		{webConfig, []byte("tls_server_config:\n  cert_file: " + certFile + "\n  key_file: " + keyFile +
			"\nbasic_auth_users:\n  " + user + ": " + string(hash) + "\n")},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return webConfig, caFile
}
