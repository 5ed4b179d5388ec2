// Package kafkasec turns packetlake's Kafka security settings (TLS, SASL PLAIN and SCRAM) into
// franz-go client options, so the collector and the ingester connect to a secured cluster the
// same way and say the same thing when they cannot.
package kafkasec

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config is how to reach a secured Kafka. The zero value is plaintext without authentication.
type Config struct {
	// TLS turns on TLS to the brokers. CAFile, when set, replaces the system roots; CertFile and
	// KeyFile add a client certificate (mutual TLS). ServerName overrides the name checked in the
	// brokers' certificates. InsecureSkipVerify is for tests only.
	TLS                bool
	CAFile             string
	CertFile, KeyFile  string
	ServerName         string
	InsecureSkipVerify bool
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512". Username and Password
	// are its credentials; PLAIN without TLS sends the password in clear, which Validate refuses.
	SASLMechanism string
	Username      string
	Password      string
}

// Validate reports the first setting that cannot work, naming the setting and the fix.
func (c Config) Validate() error {
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
		if c.Username != "" || c.Password != "" {
			return errors.New("kafka: a SASL username or password is set but no --kafka-sasl mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Username == "" {
			return fmt.Errorf("kafka: SASL %s needs --kafka-user", c.SASLMechanism)
		}
		if strings.EqualFold(c.SASLMechanism, "PLAIN") && !c.TLS {
			return errors.New("kafka: SASL PLAIN without --kafka-tls would send the password in clear: add --kafka-tls or use SCRAM")
		}
	default:
		return fmt.Errorf("kafka: SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	if !c.TLS && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "") {
		return errors.New("kafka: TLS files are set but --kafka-tls is off")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("kafka: a client certificate needs both --kafka-tls-cert and --kafka-tls-key")
	}
	return nil
}

// Opts returns the franz-go options for c (none for the zero value).
func (c Config) Opts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if c.TLS {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.Dialer((&tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tc}).DialContext))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism()))
	}
	return opts, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: --kafka-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: --kafka-tls-ca %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
