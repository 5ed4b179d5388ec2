package bpf

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// TestReceiversKnowListeners: a TCP listener is recorded at listen(2) under its bound address,
// before anything is read, naming this process; a connection accepted but not read yet is not
// (its flows fall back to the listener's key in the collector).
func TestReceiversKnowListeners(t *testing.T) {
	r, err := LoadReceivers(0)
	if err != nil {
		t.Fatalf("load receiver tracer: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	v := nettest.NewVethPair(t)
	var srvNS, peerNS uint32
	var listener, client, server netip.AddrPort
	nsInode := func() (uint32, error) {
		var st unix.Stat_t
		err := unix.Stat("/proc/thread-self/ns/net", &st)
		return uint32(st.Ino), err
	}
	err = v.Do(func() (err error) {
		if srvNS, err = nsInode(); err != nil {
			return err
		}
		ln, err := net.Listen("tcp4", v.Addr.String()+":0")
		if err != nil {
			return err
		}
		defer ln.Close()
		listener = ln.Addr().(*net.TCPAddr).AddrPort()
		return nettest.Do(v.PeerNS, func() (err error) {
			if peerNS, err = nsInode(); err != nil {
				return err
			}
			c, err := net.Dial("tcp4", listener.String())
			if err != nil {
				return err
			}
			defer c.Close()
			client, server = c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[RecvKey]Receiver{}
	if err := r.Read(func(k RecvKey, v Receiver) { got[k] = v }); err != nil {
		t.Fatal(err)
	}
	if v, ok := got[NewRecvKey(srvNS, 6, netip.AddrPort{}, listener)]; !ok || v.PID != uint32(os.Getpid()) {
		t.Errorf("listener %s: %+v, %v; want this process", listener, v, ok)
	}
	// The client's socket was never read: not recorded (SYN_SENT comes before its port).
	if v, ok := got[NewRecvKey(peerNS, 6, server, client)]; ok {
		t.Errorf("client socket recorded without a read: %+v", v)
	}
}

// TestReceiversEveryShortConnection: 30 connections accepted, read and closed one after the
// other (the kernel reuses a freed socket's memory for the next one, which the fast path keys
// on) are each in the map under their own 4-tuple after they closed.
func TestReceiversEveryShortConnection(t *testing.T) {
	r, err := LoadReceivers(0)
	if err != nil {
		t.Fatalf("load receiver tracer: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	v := nettest.NewVethPair(t)
	var ns uint32
	var keys []RecvKey
	err = v.Do(func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		ns = uint32(st.Ino)
		ln, err := net.Listen("tcp4", v.Addr.String()+":0")
		if err != nil {
			return err
		}
		defer ln.Close()
		for range 30 {
			errc := make(chan error, 1)
			go func() {
				errc <- nettest.Do(v.PeerNS, func() error {
					c, err := net.Dial("tcp4", ln.Addr().String())
					if err != nil {
						return err
					}
					defer c.Close()
					_, err = c.Write([]byte("x"))
					return err
				})
			}()
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			if _, err := c.Read(make([]byte, 1)); err != nil {
				return err
			}
			keys = append(keys, NewRecvKey(ns, 6, c.RemoteAddr().(*net.TCPAddr).AddrPort(), c.LocalAddr().(*net.TCPAddr).AddrPort()))
			c.Close()
			if err := <-errc; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[RecvKey]Receiver{}
	if err := r.Read(func(k RecvKey, v Receiver) { got[k] = v }); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if v, ok := got[k]; !ok || v.PID != uint32(os.Getpid()) {
			t.Errorf("connection %d (%+v): %+v, %v; want this process", i, k, v, ok)
		}
	}
}

// TestReceiversRecordReadingProcess: sockets of this test process inside a test namespace, read
// over the veth (TCP accepted and read, UDP connected and not, IPv4 and IPv6): the tracer keys
// each by the addresses the kernel gave the sockets and names this process, its command, its
// cgroup v2 id (stat of the cgroup's directory) and the namespace's inode.
func TestReceiversRecordReadingProcess(t *testing.T) {
	r, err := LoadReceivers(0)
	if err != nil {
		t.Fatalf("load receiver tracer (needs root and a kernel with BTF and fentry): %v", err)
	}
	t.Cleanup(func() { r.Close() })
	v := nettest.NewVethPair(t, nettest.WithIPv6())
	var ns uint32
	var tcpLocal, tcpRemote, udpLocal, udp6Local netip.AddrPort
	err = v.Do(func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		ns = uint32(st.Ino)
		ln, err := net.Listen("tcp4", v.Addr.String()+":0")
		if err != nil {
			return err
		}
		defer ln.Close()
		u, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 0}) // wildcard, not connected
		if err != nil {
			return err
		}
		defer u.Close()
		u6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: v.Addr6.AsSlice()})
		if err != nil {
			return err
		}
		defer u6.Close()
		tcpLocal = ln.Addr().(*net.TCPAddr).AddrPort()
		udpLocal = u.LocalAddr().(*net.UDPAddr).AddrPort()
		udp6Local = u6.LocalAddr().(*net.UDPAddr).AddrPort()
		errc := make(chan error, 1)
		go func() { // the peer side, from the peer namespace
			errc <- nettest.Do(v.PeerNS, func() error {
				c, err := net.Dial("tcp4", tcpLocal.String())
				if err != nil {
					return err
				}
				defer c.Close()
				if _, err := c.Write([]byte("hello")); err != nil {
					return err
				}
				for _, dst := range []string{net.JoinHostPort(v.Addr.String(), itoa(udpLocal.Port())), net.JoinHostPort(v.Addr6.String(), itoa(udp6Local.Port()))} {
					d, err := net.Dial("udp", dst)
					if err != nil {
						return err
					}
					_, err = d.Write([]byte("dns?"))
					d.Close()
					if err != nil {
						return err
					}
				}
				return nil
			})
		}()
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		tcpRemote = c.RemoteAddr().(*net.TCPAddr).AddrPort()
		buf := make([]byte, 16)
		if _, err := c.Read(buf); err != nil {
			return err
		}
		if _, _, err := u.ReadFromUDPAddrPort(buf); err != nil {
			return err
		}
		if _, _, err := u6.ReadFromUDPAddrPort(buf); err != nil {
			return err
		}
		return <-errc
	})
	if err != nil {
		t.Fatal(err)
	}

	got := map[RecvKey]Receiver{}
	if err := r.Read(func(k RecvKey, v Receiver) { got[k] = v }); err != nil {
		t.Fatal(err)
	}
	cg := ownCgroupID(t)
	comm, _ := os.ReadFile("/proc/self/comm")
	want := []struct {
		name string
		key  RecvKey
	}{
		{"tcp accepted and read", NewRecvKey(ns, 6, tcpRemote, tcpLocal)},
		{"udp4 wildcard, not connected", NewRecvKey(ns, 17, netip.AddrPort{}, netip.AddrPortFrom(netip.Addr{}, udpLocal.Port()))},
		{"udp6 bound, not connected", NewRecvKey(ns, 17, netip.AddrPort{}, udp6Local)},
	}
	for _, w := range want {
		v, ok := got[w.key]
		if !ok {
			t.Errorf("%s: no entry for %+v among %d", w.name, w.key, len(got))
			continue
		}
		if v.PID != uint32(os.Getpid()) || v.CgroupID != cg || v.Comm != strings.TrimSpace(string(comm)) {
			t.Errorf("%s: %+v, want pid %d comm %q cgroup %d", w.name, v, os.Getpid(), strings.TrimSpace(string(comm)), cg)
		}
	}
	seen, written, err := r.Counts()
	if err != nil || seen < 3 || written < 3 {
		t.Errorf("counters: seen %d written %d (%v), want at least 3 each", seen, written, err)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// ownCgroupID is the inode of this process's cgroup v2 directory: the id the kernel's
// bpf_get_current_cgroup_id returns, read independently through /proc and the cgroup2 mount.
func ownCgroupID(t testing.TB) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var path string
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			path = p
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 8 && strings.Contains(l, " - cgroup2 ") {
			var st unix.Stat_t
			if err := unix.Stat(f[4]+path, &st); err != nil {
				t.Fatal(err)
			}
			return st.Ino
		}
	}
	t.Fatal("no cgroup2 mount in /proc/self/mountinfo")
	return 0
}
