package nettest

import (
	"fmt"
	"github.com/packetlake/packetlake/internal/netns"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// Veth is a veth pair: Name lives in namespace NS (the end a test observes: attach programs
// here), PeerName in PeerNS (the end a test sends from). Both namespaces are private to the test.
type Veth struct {
	NS, PeerNS       string     // network namespace names (ip netns)
	Name, PeerName   string     // interface names inside their namespaces
	Index, PeerIndex int        // ifindex of each end inside its own namespace
	Addr, PeerAddr   netip.Addr // IPv4 of each end (/24)
	Addr6, PeerAddr6 netip.Addr // IPv6 of each end (/64); valid only WithIPv6
	MAC, PeerMAC     net.HardwareAddr
}

type options struct {
	mtu  int
	ipv6 bool
}

// Option changes how NewVethPair sets the pair up.
type Option func(*options)

// WithMTU sets both ends' MTU (default 1500). Replaying captures with jumbo frames needs more;
// above ~3.5 KB native XDP needs a frags-aware program.
func WithMTU(mtu int) Option { return func(o *options) { o.mtu = mtu } }

// WithIPv6 keeps IPv6 enabled and adds Addr6/PeerAddr6 (no DAD, no link-local address, no router
// solicitations). Off by default so that the pair is silent: with IPv6 on, the kernel still
// sends MLD reports for the address's multicast groups, which tests counting packets would see.
func WithIPv6() Option { return func(o *options) { o.ipv6 = true } }

var pairs atomic.Int64

// NewVethPair creates namespaces pl-test-<pid>-<n> and pl-test-<pid>-<n>-peer with veth "pl0"
// in the first and "pl1" in the second, addressed 198.18.0.1/24 and 198.18.0.2/24, all links up.
// t.Cleanup deletes both namespaces, which destroys the pair.
func NewVethPair(t testing.TB, opts ...Option) *Veth {
	t.Helper()
	o := options{mtu: 1500}
	for _, f := range opts {
		f(&o)
	}
	requireTools(t, "ip")
	n := pairs.Add(1)
	v := &Veth{
		NS:        fmt.Sprintf("pl-test-%d-%d", os.Getpid(), n),
		Name:      "pl0",
		PeerName:  "pl1",
		Addr:      netip.MustParseAddr("198.18.0.1"),
		PeerAddr:  netip.MustParseAddr("198.18.0.2"),
		Addr6:     netip.MustParseAddr("2001:db8::1"),
		PeerAddr6: netip.MustParseAddr("2001:db8::2"),
	}
	v.PeerNS = v.NS + "-peer"
	removeStale(t)

	for _, ns := range []string{v.NS, v.PeerNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("nettest: delete netns %s: %v: %s", ns, err, out)
			}
		})
	}
	// Created directly inside the namespaces: the root namespace never holds either end.
	run(t, "ip", "link", "add", v.Name, "netns", v.NS, "mtu", strconv.Itoa(o.mtu), "type", "veth",
		"peer", "name", v.PeerName, "netns", v.PeerNS, "mtu", strconv.Itoa(o.mtu))
	v.setup(t, v.NS, v.Name, v.Addr, v.Addr6, o)
	v.setup(t, v.PeerNS, v.PeerName, v.PeerAddr, v.PeerAddr6, o)

	v.Index, v.MAC = linkInfo(t, v.NS, v.Name)
	v.PeerIndex, v.PeerMAC = linkInfo(t, v.PeerNS, v.PeerName)
	return v
}

func (v *Veth) setup(t testing.TB, ns, dev string, a4, a6 netip.Addr, o options) {
	in := func(args ...string) { run(t, append([]string{"ip", "netns", "exec", ns}, args...)...) }
	in("ip", "link", "set", "lo", "up")
	if o.ipv6 {
		in("sysctl", "-q", "-w", "net.ipv6.conf."+dev+".accept_ra=0")
		in("sysctl", "-q", "-w", "net.ipv6.conf."+dev+".addr_gen_mode=1") // no link-local address
		in("ip", "addr", "add", a6.String()+"/64", "dev", dev, "nodad")
	} else {
		in("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
		in("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
		in("sysctl", "-q", "-w", "net.ipv6.conf."+dev+".disable_ipv6=1")
	}
	in("ip", "addr", "add", a4.String()+"/24", "dev", dev)
	in("ip", "link", "set", dev, "up")
}

func linkInfo(t testing.TB, ns, dev string) (int, net.HardwareAddr) {
	var idx int
	var mac net.HardwareAddr
	err := Do(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		idx, mac = ifc.Index, ifc.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatalf("nettest: look up %s in netns %s: %v", dev, ns, err)
	}
	return idx, mac
}

// removeStale deletes namespaces left by an earlier test process that was killed before its
// cleanup ran (pl-test-<pid>-* whose pid is gone). Other namespaces are never touched.
func removeStale(t testing.TB) {
	names, _ := filepath.Glob("/run/netns/pl-test-*")
	for _, p := range names {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(p), "pl-test-"), "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue // its owner still runs
		}
		if out, err := exec.Command("ip", "netns", "del", filepath.Base(p)).CombinedOutput(); err != nil {
			t.Logf("nettest: remove stale netns %s: %v: %s", filepath.Base(p), err, out)
		}
	}
}

// Do runs fn on an OS thread switched into network namespace ns (see package netns).
func Do(ns string, fn func() error) error { return netns.Do(ns, fn) }

// Do runs fn inside the observed end's namespace (v.NS).
func (v *Veth) Do(fn func() error) error { return Do(v.NS, fn) }
