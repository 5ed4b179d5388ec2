package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "packetlake.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigLayersFileEnvFlags(t *testing.T) {
	path := writeConfig(t, "database: fromfile\nquery:\n  limit: 7\n  format: csv\n")
	t.Setenv("PACKETLAKE_FORMAT", "json")
	fs, _ := subcommands["query"].flags()
	if err := parseFlags(fs, []string{"--config", path, "--limit", "9", "top_talkers"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"database": "fromfile", // file, top level
		"format":   "json",     // environment beats file
		"limit":    "9",        // command line beats file
	} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if fs.Arg(0) != "top_talkers" {
		t.Errorf("positional argument lost: %v", fs.Args())
	}
}

func TestConfigErrorsNameKeyAndFix(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"misspelt key":       {"query:\n  limmit: 5\n", `query has no setting "limmit" (did you mean "limit"?)`},
		"bad value":          {"query:\n  limit: lots\n", "query.limit: invalid value"},
		"unknown everywhere": {"colour: blue\n", `no subcommand has a setting "colour"`},
		"not yaml":           {"query: [\n", "not valid YAML"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, tc.yaml)
			fs, _ := subcommands["query"].flags()
			err := parseFlags(fs, []string{"--config=" + path, "top_talkers"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	path := writeConfig(t, "password: hunter2\nquery:\n  limit: 3\ncolect:\n  iface: eth0\n")
	problems, effective, err := checkConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], `section "colect"`) {
		t.Errorf("problems = %q, want one about section colect", problems)
	}
	joined := strings.Join(effective, "\n")
	if strings.Contains(joined, "hunter2") {
		t.Errorf("secret printed: %s", joined)
	}
	if !strings.Contains(joined, "query.limit = 3") || !strings.Contains(joined, "query.password = (set, redacted)") {
		t.Errorf("effective settings:\n%s", joined)
	}
}

func TestFlagsAfterPositionalArguments(t *testing.T) {
	fs, _ := subcommands["query"].flags()
	if err := parseFlags(fs, []string{"top_talkers", "--since", "24h", "--limit=3"}); err != nil {
		t.Fatal(err)
	}
	if fs.Lookup("since").Value.String() != "24h0m0s" || fs.Lookup("limit").Value.String() != "3" || fs.Arg(0) != "top_talkers" || fs.NArg() != 1 {
		t.Errorf("since=%s limit=%s args=%q", fs.Lookup("since").Value, fs.Lookup("limit").Value, fs.Args())
	}
}

// TestConfigSectionBeatsTopLevel: a subcommand's own section wins over a top-level key of the
// same name whichever comes first in the file (keys used to apply in alphabetical order, so
// "metrics-addr" at the top beat "ingest: {metrics-addr}").
func TestConfigSectionBeatsTopLevel(t *testing.T) {
	for name, text := range map[string]string{
		"top level first":                        "metrics-addr: 127.0.0.1:1\ningest:\n  metrics-addr: 127.0.0.1:2\n",
		"section first":                          "ingest:\n  metrics-addr: 127.0.0.1:2\nmetrics-addr: 127.0.0.1:1\n",
		"query, a key sorting after the section": "query:\n  database: fromsection\ndatabase: fromtop\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, text)
			cmd, key, want := "ingest", "metrics-addr", "127.0.0.1:2"
			if strings.Contains(text, "database") {
				cmd, key, want = "query", "database", "fromsection"
			}
			fs, _ := subcommands[cmd].flags()
			args := []string{"--config", path}
			if cmd == "query" {
				args = append(args, "top_talkers")
			}
			if err := parseFlags(fs, args); err != nil {
				t.Fatal(err)
			}
			if got := fs.Lookup(key).Value.String(); got != want {
				t.Errorf("%s %s = %q, want the section's %q", cmd, key, got, want)
			}
			// config check reports the same effective value.
			_, effective, err := checkConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(effective, cmd+"."+key+" = "+want) {
				t.Errorf("config check effective settings lack %s.%s = %s:\n%s", cmd, key, want, strings.Join(effective, "\n"))
			}
		})
	}
}

// TestConfigCheckRedactsWebhook: config check shows the webhook's scheme and host only, and
// never the webhook's HMAC key.
func TestConfigCheckRedactsWebhook(t *testing.T) {
	path := writeConfig(t, "detect:\n  webhook: https://hooks.example.com/services/T0K3N?sig=T0K3N\n  webhook-secret: hm4c-k3y\n")
	problems, effective, err := checkConfig(path)
	if err != nil || len(problems) > 0 {
		t.Fatalf("%v %q", err, problems)
	}
	joined := strings.Join(effective, "\n")
	if strings.Contains(joined, "T0K3N") || strings.Contains(joined, "hm4c-k3y") ||
		!strings.Contains(joined, "detect.webhook = https://hooks.example.com/(redacted)") ||
		!strings.Contains(joined, "detect.webhook-secret = (set, redacted)") {
		t.Errorf("effective settings:\n%s", joined)
	}
}
