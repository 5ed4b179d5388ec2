// Package nettest gives tests a private piece of network to run real kernel traffic through:
// a veth pair whose ends live in two fresh network namespaces made by the test, helpers to run
// commands or Go code inside a namespace, tcpreplay of captures into an interface, a user-space
// Geneve endpoint over TAP (for kernels without a geneve driver), and a reader for pcap/pcapng
// files.
//
// Network rules: tests send traffic only inside namespaces they made (or on loopback). Both veth
// ends are created directly inside the test's namespaces -- nothing is ever added to, or sent
// from, the root namespace -- and addresses come from 198.18.0.0/15 (RFC 2544 benchmarking) and
// 2001:db8::/32 (documentation). Everything is deleted by t.Cleanup, also when the test fails.
//
// Tests using this package need root (CAP_NET_ADMIN and CAP_SYS_ADMIN for setns) and iproute2;
// Replay needs tcpreplay. A missing prerequisite fails the test with a clear message: it never
// skips.
package nettest
