package main

import (
	"flag"

	"github.com/packetlake/packetlake/internal/kafkaconn"
)

// addKafkaFlags defines the brokers and the Kafka TLS and SASL settings shared by every
// subcommand that talks to Kafka. Pass the password through $PACKETLAKE_KAFKA_PASSWORD, not the
// command line.
func addKafkaFlags(fs *flag.FlagSet) *kafkaconn.Config {
	c := &kafkaconn.Config{}
	fs.Var((*listFlag)(&c.Brokers), "brokers", "Kafka bootstrap brokers, comma-separated (required)")
	fs.BoolVar(&c.TLS.Enable, "kafka-tls", false, "connect to Kafka over TLS")
	fs.StringVar(&c.TLS.CAFile, "kafka-tls-ca", "", "PEM file of the CA that signed the brokers' certificates (default: system roots)")
	fs.StringVar(&c.TLS.CertFile, "kafka-tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&c.TLS.KeyFile, "kafka-tls-key", "", "PEM key of --kafka-tls-cert")
	fs.StringVar(&c.TLS.ServerName, "kafka-tls-server-name", "", "name to verify in the brokers' certificates (default: the address's host)")
	fs.StringVar(&c.SASLMechanism, "kafka-sasl", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: none)")
	fs.StringVar(&c.Username, "kafka-user", "", "SASL user")
	fs.StringVar(&c.Password, "kafka-password", "", "SASL password (prefer $PACKETLAKE_KAFKA_PASSWORD: the command line shows in ps)")
	return c
}
