package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nsPrefix marks the namespaces the demo makes; stale ones are found (and only ever removed) by it.
const nsPrefix = "pl-demo-"

// lab is the throwaway network: a server and a client namespace joined by a veth pair. Nothing
// is made or changed in the root namespace, and the addresses are from ranges reserved for
// benchmarks (198.18.0.0/15) and documentation (2001:db8::/32), so no traffic can leave.
type lab struct {
	srvNS, cliNS string
	srvIf, cliIf string // veth ends; the collector attaches to srvIf
	srv4, cli4   netip.Addr
	srv6, cli6   netip.Addr
}

// newLab names the lab after this process, so a later demo can tell ours from a live one's.
func newLab(pid int) *lab {
	return &lab{
		srvNS: fmt.Sprintf("%ssrv-%d", nsPrefix, pid),
		cliNS: fmt.Sprintf("%scli-%d", nsPrefix, pid),
		srvIf: "pl-srv0", cliIf: "pl-cli0",
		srv4: netip.MustParseAddr("198.18.0.1"), cli4: netip.MustParseAddr("198.18.0.2"),
		srv6: netip.MustParseAddr("2001:db8::1"), cli6: netip.MustParseAddr("2001:db8::2"),
	}
}

// create makes both namespaces and the veth pair, addressed and up. The deletion of each
// namespace is pushed before it is made; deleting a namespace destroys its veth end and with it
// anything attached to it.
func (l *lab) create(ctx context.Context, p *procs, cl *cleanups, log *slog.Logger) error {
	ipc := func(args ...string) error {
		_, err := p.run(ctx, 10*time.Second, "", "ip", args...)
		return err
	}
	for _, ns := range []string{l.srvNS, l.cliNS} {
		cl.push("delete netns "+ns, func() error { return deleteNS(p, ns, log) })
		if err := ipc("netns", "add", ns); err != nil {
			return err
		}
	}
	// Created directly inside the namespaces: neither end ever exists in the root namespace.
	if err := ipc("link", "add", l.srvIf, "netns", l.srvNS, "type", "veth", "peer", "name", l.cliIf, "netns", l.cliNS); err != nil {
		return err
	}
	for _, end := range []struct {
		ns, dev string
		a4, a6  netip.Addr
	}{{l.srvNS, l.srvIf, l.srv4, l.srv6}, {l.cliNS, l.cliIf, l.cli4, l.cli6}} {
		for _, args := range [][]string{
			{"link", "set", "lo", "up"},
			{"addr", "add", end.a4.String() + "/24", "dev", end.dev},
			// nodad: usable at once, instead of after a second of duplicate detection.
			{"addr", "add", end.a6.String() + "/64", "dev", end.dev, "nodad"},
			{"link", "set", end.dev, "up"},
		} {
			if err := ipc(append([]string{"-n", end.ns}, args...)...); err != nil {
				return err
			}
		}
	}
	log.Info("lab ready", "server_netns", l.srvNS, "client_netns", l.cliNS,
		"server", l.srv4.String()+" "+l.srv6.String(), "client", l.cli4.String()+" "+l.cli6.String())
	return nil
}

// xdpProgID is the id of the XDP program on the server's veth end (0 if none), as the kernel
// reports it: the test later proves that this very program is gone.
func (l *lab) xdpProgID(ctx context.Context, p *procs) (uint32, error) {
	out, err := p.run(ctx, 5*time.Second, "", "ip", "-j", "-d", "-n", l.srvNS, "link", "show", "dev", l.srvIf)
	if err != nil {
		return 0, err
	}
	var links []struct {
		XDP struct {
			Prog struct {
				ID uint32 `json:"id"`
			} `json:"prog"`
		} `json:"xdp"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("parse `ip -j link show %s`: %v: %s", l.srvIf, err, tail(string(out), 300))
	}
	return links[0].XDP.Prog.ID, nil
}

// deleteNS removes one of our namespaces. Every process the demo started was stopped before
// this runs, so a process still inside is a stray of ours (a tool's orphaned child): it is
// killed, because it would keep the namespace, and its veth, alive after the name is gone.
func deleteNS(p *procs, ns string, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, os.ErrNotExist) {
		return nil // never made, or already gone
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if out, err := p.run(ctx, 5*time.Second, "", "ip", "netns", "pids", ns); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				log.Warn("killing a stray process inside the demo's namespace", "netns", ns, "pid", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, err := p.run(ctx, 10*time.Second, "", "ip", "netns", "del", ns)
	return err
}

// removeStaleLabs deletes namespaces left by a demo that died without unwinding (kill -9,
// power loss): ours by prefix, and only those whose owning process is gone.
func removeStaleLabs(p *procs, log *slog.Logger) error {
	paths, _ := filepath.Glob(filepath.Join("/run/netns", nsPrefix+"*"))
	var errs []error
	for _, path := range paths {
		name := filepath.Base(path)
		pid, err := strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
		if err != nil || (pid != os.Getpid() && syscall.Kill(pid, 0) == nil) {
			continue // not named by a demo, or its demo is still running
		}
		log.Info("removing a namespace left by an earlier demo", "netns", name)
		if err := deleteNS(p, name, log); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
