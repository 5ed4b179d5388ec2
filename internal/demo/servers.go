package demo

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/packetlake/packetlake/internal/netns"
)

// startServers runs the lab's real servers in the server namespace: nginx (HTTP on 80, HTTPS on
// 443 with a fresh self-signed certificate) and dnsmasq (DNS on 53), each stopped by its PID on
// unwind. It returns once all three ports answer.
func startServers(ctx context.Context, p *procs, l *lab, dir string, cl *cleanups) error {
	if err := os.MkdirAll(filepath.Join(dir, "nginx-tmp"), 0o755); err != nil {
		return err
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	san := "subjectAltName=DNS:" + strings.Join(DNSNames, ",DNS:")
	if _, err := p.run(ctx, 30*time.Second, "", "openssl", "req", "-x509", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
		"-days", "30", "-subj", "/CN="+ShopHost, "-addext", san); err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, cert, key)), 0o644); err != nil {
		return err
	}
	nginx, err := p.start(l.srvNS, filepath.Join(dir, "nginx.log"), "nginx",
		"-e", filepath.Join(dir, "nginx-error.log"), "-p", dir, "-c", conf)
	if err != nil {
		return err
	}
	cl.push("stop nginx", func() error { return nginx.stop(5 * time.Second) })

	dns, err := p.start(l.srvNS, filepath.Join(dir, "dnsmasq.log"), "dnsmasq", dnsmasqArgs(l)...)
	if err != nil {
		return err
	}
	cl.push("stop dnsmasq", func() error { return dns.stop(5 * time.Second) })
	return waitServers(ctx, l, nginx, dns)
}

// nginxConf serves every name on 80 and 443 with a one-line answer. One process
// (master_process off) so that the PID the demo holds is the whole server; every path nginx
// would otherwise write under /var is redirected into the lab directory.
func nginxConf(dir, cert, key string) string {
	tmp := filepath.Join(dir, "nginx-tmp")
	return fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 512; }
http {
    access_log %[1]s/nginx-access.log;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    default_type text/plain;
    server {
        listen 80 default_server;
        listen [::]:80 default_server;
        listen 443 ssl default_server;
        listen [::]:443 ssl default_server;
        ssl_certificate %[3]s;
        ssl_certificate_key %[4]s;
        location / { return 200 "packetlake demo: $host $request_uri\n"; }
    }
}
`, dir, tmp, cert, key)
}

// dnsmasqArgs answers DNSNames with the server's addresses and NXDOMAIN for every other name
// under packetlake.test. No upstream, no /etc/hosts, no config file, no PID file: it knows only
// what is on this command line. It stays root:root because any change of its user or group
// would clear the parent-death signal that ends it if the demo is killed outright.
func dnsmasqArgs(l *lab) []string {
	args := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--pid-file", "--user=root", "--group=root", "--port=53", "--bind-interfaces",
		"--listen-address=" + l.srv4.String(), "--listen-address=" + l.srv6.String(),
		"--log-facility=-", "--log-queries", "--address=/" + Zone + "/"}
	for _, n := range DNSNames {
		args = append(args, "--address=/"+n+"/"+l.srv4.String(), "--address=/"+n+"/"+l.srv6.String())
	}
	return args
}

// waitServers polls from inside the server namespace (over its loopback, so nothing crosses
// the veth) until HTTP, HTTPS and DNS answer, a server exits, or 15 s pass.
func waitServers(ctx context.Context, l *lab, ds ...*daemon) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var last error
	for {
		for _, d := range ds {
			select {
			case <-d.exited:
				return fmt.Errorf("%s exited at start (%v): %s", d.name, d.err, d.logTail())
			default:
			}
		}
		if last = probeServers(ctx, l); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("servers not ready: %w (last probe: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func probeServers(ctx context.Context, l *lab) error {
	return netns.Do(l.srvNS, func() error {
		for _, port := range []string{"80", "443"} {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(l.srv4.String(), port), time.Second)
			if err != nil {
				return err
			}
			c.Close()
		}
		// The resolver dials from its own goroutine, outside this namespace: hand it a
		// connection made here instead (a socket stays in the namespace it was made in).
		conn, err := net.DialTimeout("udp", net.JoinHostPort(l.srv4.String(), "53"), time.Second)
		if err != nil {
			return err
		}
		r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		addrs, err := r.LookupIP(qctx, "ip4", ShopHost)
		if err != nil {
			return fmt.Errorf("dns: %w", err)
		}
		if len(addrs) != 1 || !addrs[0].Equal(net.IP(l.srv4.AsSlice())) {
			return fmt.Errorf("dns: %s is %v, want %s", ShopHost, addrs, l.srv4)
		}
		return nil
	})
}
