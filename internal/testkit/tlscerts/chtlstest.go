// Package chtlstest fronts a plaintext ClickHouse with a TLS-terminating proxy for tests: a
// self-signed certificate made in Go, a crypto/tls listener per port, bytes copied both ways.
package tlscerts

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a running TLS proxy. Its certificate is valid for 127.0.0.1 and "localhost".
type Proxy struct {
	CAFile string // PEM of the self-signed certificate (it is its own CA)
	Native string // TLS address forwarding to the native-protocol port
	HTTP   string // TLS address forwarding to the HTTP port
}

// Start proxies TLS on two loopback ports to nativeAddr and httpAddr; stopped at t's cleanup.
func Start(t testing.TB, nativeAddr, httpAddr string) *Proxy {
	t.Helper()
	cfg, ca := SelfSigned(t, "packetlake test clickhouse")
	p := &Proxy{CAFile: ca}
	p.Native = listen(t, cfg, nativeAddr)
	p.HTTP = listen(t, cfg, httpAddr)
	return p
}

func listen(t testing.TB, cfg *tls.Config, backend string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false
		}
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
		return true
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b, err := net.DialTimeout("tcp", backend, 5*time.Second)
				if err != nil {
					return
				}
				defer b.Close()
				if !track(c, true) || !track(b, true) {
					return
				}
				defer track(c, false)
				defer track(b, false)
				done := make(chan struct{}, 2)
				go func() { io.Copy(b, c); done <- struct{}{} }()
				go func() { io.Copy(c, b); done <- struct{}{} }()
				<-done // one side closed: close both, the other copy ends
				c.Close()
				b.Close()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}
