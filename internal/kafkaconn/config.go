// Package kafkaconn is the one way packetlake makes a Kafka client: the brokers, TLS and SASL
// settings (so the collector and the ingester connect to a secured cluster the same way and say
// the same thing when they cannot), franz-go's log sent to the component's slog logger, a hook
// that counts broker connections and their failures, and the startup check that names the
// topics the brokers lack.
package kafkaconn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/packetlake/packetlake/internal/tlsconf"
)

// tlsFlag is the prefix of the Kafka TLS flags, named in TLS errors.
const tlsFlag = "--kafka-tls"

// Config is how to reach Kafka. Only Brokers is required; the rest zero is plaintext without
// authentication.
type Config struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers []string
	// TLS to the brokers (zero: plaintext).
	TLS tlsconf.Files
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512". Username and Password
	// are its credentials; PLAIN without TLS sends the password in clear, which Validate refuses.
	SASLMechanism string
	Username      string
	Password      string
}

// Validate reports the first setting that cannot work, naming the setting and the fix.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers: set --brokers")
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
		if c.Username != "" || c.Password != "" {
			return errors.New("kafka: a SASL username or password is set but no --kafka-sasl mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Username == "" {
			return fmt.Errorf("kafka: SASL %s needs --kafka-user", c.SASLMechanism)
		}
		if strings.EqualFold(c.SASLMechanism, "PLAIN") && !c.TLS.Enable {
			return errors.New("kafka: SASL PLAIN without --kafka-tls would send the password in clear: add --kafka-tls or use SCRAM")
		}
	default:
		return fmt.Errorf("kafka: SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	if err := c.TLS.Validate(tlsFlag); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}
