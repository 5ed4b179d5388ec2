package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"
)

// What the client asks for. Exported so the test checks the stored columns against them.
const (
	Zone     = "packetlake.test"      // every name under it that is not in DNSNames is NXDOMAIN
	ShopHost = "shop.packetlake.test" // HTTP Host and TLS SNI of curl's requests
	APIHost  = "api.packetlake.test"  // HTTP Host over IPv6, and SNI of openssl s_client
)

var (
	// DNSNames are the names dnsmasq answers (with the server's addresses); all are queried.
	DNSNames = []string{ShopHost, APIHost, "www.packetlake.test", "cdn.packetlake.test"}
	// NXNames are queried too and answered NXDOMAIN; random DGA-like names are added each round.
	NXNames = []string{"intranet.packetlake.test", "old-login.packetlake.test"}
)

// Runs counts the runs of one traffic tool.
type Runs struct{ OK, Failed int }

// traffic drives real clients in the client namespace against the lab's servers.
type traffic struct {
	p   *procs
	lab *lab
	log *slog.Logger
	// probe sends one datagram a round to a closed UDP port (a NO_SOCKET drop).
	probe *closedPortProbe

	mu   sync.Mutex
	runs map[string]*Runs
}

// run sends traffic for d: a round of curl, dig, openssl and nping every second, and one nmap
// SYN scan early on. Every command has its own timeout and the number of rounds is bounded by
// d, so the volume stays a few thousand packets whatever the machine. It returns the counts.
func (t *traffic) run(ctx context.Context, d time.Duration) map[string]Runs {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t.runs = map[string]*Runs{}
	var wg sync.WaitGroup
	wg.Go(func() {
		// After a couple of rounds, so the progress lines show normal traffic first.
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(3*time.Second, d/4)):
		}
		t.do(ctx, 60*time.Second, "nmap", "-n", "-Pn", "-sS", "-p", "1-1000", "--max-rate", "2000",
			"--max-retries", "1", "--host-timeout", "30s", t.lab.srv4.String())
	})
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for round := 0; ctx.Err() == nil; round++ {
		t.round(ctx, round)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	wg.Wait()
	out := map[string]Runs{}
	for k, v := range t.runs {
		out[k] = *v
	}
	return out
}

// round is one second of a small site's life: DNS lookups (some for names that do not exist),
// page loads over HTTP and HTTPS, an API call over IPv6, a TLS handshake and a ping.
func (t *traffic) round(ctx context.Context, i int) {
	srv4, srv6 := t.lab.srv4.String(), t.lab.srv6.String()
	dnsServer := srv4
	if i%2 == 1 {
		dnsServer = srv6
	}
	t.do(ctx, 5*time.Second, "dig", "+time=1", "+tries=1", "@"+dnsServer,
		DNSNames[i%len(DNSNames)], "A", DNSNames[(i+1)%len(DNSNames)], "AAAA",
		NXNames[i%len(NXNames)], "A", randomName(), "A")
	shop := "http://" + ShopHost
	t.do(ctx, 5*time.Second, "curl", "-sS", "--max-time", "3", "--resolve", ShopHost+":80:"+srv4,
		shop+"/", shop+"/products?id="+strconv.Itoa(i%17), shop+"/cart")
	t.do(ctx, 5*time.Second, "curl", "-ksS", "--max-time", "3", "--resolve", ShopHost+":443:"+srv4,
		"https://"+ShopHost+"/checkout")
	t.do(ctx, 5*time.Second, "curl", "-sS", "--max-time", "3", "--resolve", APIHost+":80:["+srv6+"]",
		"-H", "Accept: application/json", "http://"+APIHost+"/v1/orders/"+strconv.Itoa(1000+i))
	t.do(ctx, 5*time.Second, "openssl", "s_client", "-connect", net.JoinHostPort(srv4, "443"),
		"-servername", APIHost, "-brief")
	t.do(ctx, 5*time.Second, "nping", "--icmp", "-c", "2", "--delay", "100ms", "-q", srv4)
	if err := t.probe.send(t.lab); err != nil {
		t.log.Warn("datagram to the closed port", "err", err)
	}
}

// do runs one client command in the client namespace and counts the outcome. A command cut
// short by the end of the traffic period is not counted at all.
func (t *traffic) do(ctx context.Context, timeout time.Duration, tool string, args ...string) {
	_, err := t.p.run(ctx, timeout, t.lab.cliNS, tool, args...)
	if ctx.Err() != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.runs[tool]
	if r == nil {
		r = &Runs{}
		t.runs[tool] = r
	}
	if err != nil {
		r.Failed++
		t.log.Debug("traffic command failed", "tool", tool, "err", err)
		return
	}
	r.OK++
}

// randomName looks like a domain-generation algorithm's output: the NXDOMAIN noise malware makes.
func randomName() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10+rand.IntN(6))
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b) + "." + Zone
}

// formatRuns prints the counts as "curl 120 ok, dig 60 ok (2 failed), ...".
func formatRuns(runs map[string]Runs) string {
	names := make([]string, 0, len(runs))
	for n := range runs {
		names = append(names, n)
	}
	sort.Strings(names)
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d ok", n, runs[n].OK)
		if f := runs[n].Failed; f > 0 {
			s += fmt.Sprintf(" (%d failed)", f)
		}
	}
	return s
}
