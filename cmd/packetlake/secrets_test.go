package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestPasswordOnCommandLineWarns: a secret flag on the command line works but warns that ps
// shows it and names the environment variable to use; from the environment it is silent.
func TestPasswordOnCommandLineWarns(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		args []string
		want []string
	}{
		{"query", []string{"--password=hunter2", "top_talkers"}, []string{"--password on the command line", "PACKETLAKE_PASSWORD"}},
		{"ingest", []string{"--kafka-password", "hunter2"}, []string{"--kafka-password on the command line", "PACKETLAKE_KAFKA_PASSWORD"}},
		{"detect", []string{"-webhook-secret", "hunter2"}, []string{"--webhook-secret on the command line", "PACKETLAKE_WEBHOOK_SECRET"}},
		{"query", []string{"top_talkers", "--", "--password=x"}, nil},
	} {
		fs, _ := subcommands[c.cmd].flags()
		var out bytes.Buffer
		fs.SetOutput(&out)
		if err := parseFlags(fs, c.args); err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) || !strings.Contains(out.String(), "ps") {
				t.Errorf("%s %q: output %q lacks %q", c.cmd, c.args, out.String(), w)
			}
		}
		if c.want == nil && out.Len() > 0 {
			t.Errorf("%s %q: unexpected output %q", c.cmd, c.args, out.String())
		}
		if strings.Contains(out.String(), "hunter2") {
			t.Errorf("the warning repeats the secret: %q", out.String())
		}
	}
	t.Setenv("PACKETLAKE_PASSWORD", "hunter2")
	fs, _ := subcommands["query"].flags()
	var out bytes.Buffer
	fs.SetOutput(&out)
	if err := parseFlags(fs, []string{"top_talkers"}); err != nil || out.Len() > 0 || fs.Lookup("password").Value.String() != "hunter2" {
		t.Errorf("password from the environment: err %v, output %q", err, out.String())
	}
}

// TestClickHousePasswordWithoutTLSWarns: a password sent in clear to anything but loopback
// warns; TLS, no password or a loopback server do not.
func TestClickHousePasswordWithoutTLSWarns(t *testing.T) {
	for _, c := range []struct {
		password string
		tls      bool
		addrs    []string
		warn     bool
	}{
		{"pw", false, []string{"ch-1.example:9000"}, true},
		{"pw", false, []string{"127.0.0.1:9000", "10.1.2.3:8123"}, true},
		{"pw", false, []string{"[2001:db8::1]:8123"}, true},
		{"pw", false, []string{"127.0.0.1:9000", "localhost:8123", "[::1]:8123", "127.8.9.10:1"}, false},
		{"pw", true, []string{"ch-1.example:9440"}, false},
		{"", false, []string{"ch-1.example:9000"}, false},
	} {
		w := clickHousePasswordWarning(c.password, c.tls, c.addrs...)
		if (w != "") != c.warn || (w != "" && (!strings.Contains(w, "--clickhouse-tls") || strings.Contains(w, c.password+" "))) {
			t.Errorf("%+v: warning %q", c, w)
		}
	}
}
