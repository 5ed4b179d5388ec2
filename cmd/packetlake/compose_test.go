package main

import (
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestComposeInvariants checks what `docker compose up` relies on and no unit test would see:
// every packetlake container's Kafka and ClickHouse addresses (flags and the mounted config
// file, as the binary resolves them) are reachable from its network mode, and Kafka advertises
// exactly the address each client bootstraps from (clients reconnect to the advertised one).
// A host-network container reaches only ports published on 127.0.0.1; a compose-network one
// reaches services by name on their container ports.
func TestComposeInvariants(t *testing.T) {
	dir := filepath.Join(deployments, "compose")
	doc := yamlDocs(t, filepath.Join(dir, "compose.yaml"))[0]
	services, _ := path(doc, "services").(map[string]any)
	env := func(svc, key string) string {
		s, _ := path(services, svc, "environment", key).(string)
		return s
	}
	// Kafka's listeners: container port -> advertised host:port.
	ports := map[string]string{}
	for _, l := range strings.Split(env("kafka", "KAFKA_LISTENERS"), ",") {
		name, hp, _ := strings.Cut(l, "://")
		_, p, _ := net.SplitHostPort(hp)
		ports[name] = p
	}
	advertised := map[string]string{} // advertised address -> container port of its listener
	for _, l := range strings.Split(env("kafka", "KAFKA_ADVERTISED_LISTENERS"), ",") {
		name, hp, _ := strings.Cut(l, "://")
		if ports[name] == "" {
			t.Errorf("kafka advertises %s for listener %s, which KAFKA_LISTENERS lacks", hp, name)
		}
		advertised[hp] = ports[name]
	}
	published := map[string]map[string]string{} // service -> "127.0.0.1:hostport" -> container port
	for name := range services {
		published[name] = map[string]string{}
		for _, p := range strs(asList(path(services, name, "ports"))) {
			parts := strings.Split(p, ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("%s publishes %q: want 127.0.0.1:HOSTPORT:PORT (nothing beyond loopback)", name, p)
				continue
			}
			published[name]["127.0.0.1:"+parts[1]] = parts[2]
		}
	}
	// reachable says whether a container in network mode hostNet reaches addr, and which
	// service and container port it lands on.
	reachable := func(hostNet bool, addr string) (svc, port string, ok bool) {
		host, p, err := net.SplitHostPort(addr)
		if err != nil {
			return "", "", false
		}
		if hostNet {
			for s, m := range published {
				if cp, ok := m[addr]; ok {
					return s, cp, true
				}
			}
			return "", "", false
		}
		if _, ok := services[host]; ok && path(services, host, "network_mode") == nil {
			return host, p, true
		}
		return "", "", false
	}

	clients := 0
	for name := range services {
		cmd := strs(asList(path(services, name, "command")))
		if len(cmd) == 0 {
			continue
		}
		c, ok := subcommands[cmd[0]]
		if !ok || c.setup == nil {
			continue
		}
		// Resolve the flags as the binary does; the config file's path inside the container
		// maps to the file beside compose.yaml through the service's volumes.
		fs, _ := c.flags()
		fs.SetOutput(new(strings.Builder))
		args := slices.Clone(cmd[1:])
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "--config="); ok {
				args[i] = "--config=" + hostPath(t, dir, services, name, v)
			}
			args[i] = strings.ReplaceAll(args[i], "${PACKETLAKE_IFACE:-eth0}", "eth0")
		}
		if err := parseFlags(fs, args); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		hostNet := path(services, name, "network_mode") == "host"
		val := func(f string) string {
			if fl := fs.Lookup(f); fl != nil {
				return fl.Value.String()
			}
			return ""
		}
		if b := val("brokers"); b != "" {
			clients++
			for _, addr := range strings.Split(b, ",") {
				svc, port, ok := reachable(hostNet, addr)
				if !ok || svc != "kafka" {
					t.Errorf("%s (host network %v): broker %s is not reachable from its network", name, hostNet, addr)
					continue
				}
				if advertised[addr] != port {
					t.Errorf("%s: bootstraps from %s (kafka's port %s), but kafka advertises %v: the client would reconnect elsewhere", name, addr, port, keys(advertised))
				}
			}
			if !dependsOn(services, name, "kafka", "topics") {
				t.Errorf("%s uses Kafka but starts before it (depends_on kafka or topics)", name)
			}
		}
		for _, f := range []string{"clickhouse", "clickhouse-http"} {
			if addr := val(f); addr != "" && fs.Lookup(f) != nil && (f != "clickhouse-http" || cmd[0] != "query") {
				if svc, port, ok := reachable(hostNet, addr); !ok || svc != "clickhouse" || (port != "9000" && port != "8123") {
					t.Errorf("%s: --%s %s does not reach clickhouse's native (9000) or HTTP (8123) port from its network", name, f, addr)
				}
			}
		}
	}
	if clients < 3 {
		t.Fatalf("only %d Kafka clients found in compose.yaml (topics, collector, ingester): the walker is broken", clients)
	}
}

// hostPath maps a path inside service svc's container to the file in the repository its
// volumes mount there.
func hostPath(t *testing.T, dir string, services map[string]any, svc, inContainer string) string {
	t.Helper()
	for _, v := range strs(asList(path(services, svc, "volumes"))) {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == inContainer {
			return filepath.Join(dir, parts[0])
		}
	}
	t.Fatalf("%s: nothing mounted at %s", svc, inContainer)
	return ""
}

func dependsOn(services map[string]any, svc string, on ...string) bool {
	d := path(services, svc, "depends_on")
	var names []string
	switch x := d.(type) {
	case []any:
		names = strs(x)
	case map[string]any:
		for k := range x {
			names = append(names, k)
		}
	}
	for _, n := range names {
		if slices.Contains(on, n) || dependsOn(services, n, on...) {
			return true
		}
	}
	return false
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
