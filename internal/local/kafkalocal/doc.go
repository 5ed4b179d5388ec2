// Package kafkalocal runs Kafka-protocol brokers on this machine for packetlake: a real Apache Kafka
// (KRaft, one node, a JVM child process) for integration and crash tests, and kfake, a
// Kafka-protocol test broker from franz-go, in-process for the demo.
package kafkalocal
