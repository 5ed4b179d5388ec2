package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/packetlake/packetlake/detector"
	"github.com/packetlake/packetlake/internal/suggest"
)

// Configuration has three sources with the same names everywhere, applied in this order so that
// the more specific wins:
//
//  1. a YAML file (--config FILE or $PACKETLAKE_CONFIG): top-level keys apply to every
//     subcommand that has a flag of that name; a section named after a subcommand applies to it
//     alone:
//
//     brokers: kafka-1:9092,kafka-2:9092
//     collect:
//     iface: eth0
//     ingest:
//     clickhouse: ch-1:9000
//
//  2. environment variables PACKETLAKE_<FLAG>, the flag name upper-cased with - as _
//     (PACKETLAKE_CLICKHOUSE_HTTP=...);
//  3. the command line.
//
// A key that is no flag of the subcommand is an error naming the key and the nearest flag, so a
// typo never silently leaves a default in place.

// secretFlags are never printed back (config check, logs).
var secretFlags = map[string]bool{"password": true, "sasl-password": true, "kafka-password": true, "webhook-secret": true}

// urlFlags are printed with only their scheme and host (a webhook URL often is a credential).
var urlFlags = map[string]bool{"webhook": true}

// shownValue is a flag's value as config check and error messages may print it.
func shownValue(name, value string) string {
	switch {
	case secretFlags[name]:
		return "(set, redacted)"
	case urlFlags[name] && value != "":
		return detector.RedactURL(value)
	}
	return value
}

// parseFlags is fs.Parse with the config file and environment applied first. It returns
// flag.ErrHelp for -h like fs.Parse.
func parseFlags(fs *flag.FlagSet, args []string) error {
	configPath := os.Getenv("PACKETLAKE_CONFIG")
	addConfigFlag(fs)
	// The file is named on the command line, which is parsed last: find it first.
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			configPath = v
		} else if v, ok := strings.CutPrefix(a, "-config="); ok {
			configPath = v
		} else if (a == "--config" || a == "-config") && i+1 < len(args) {
			configPath = args[i+1]
		}
	}
	if configPath != "" {
		values, err := loadConfig(configPath, fs.Name())
		if err != nil {
			return err
		}
		if err := applyValues(fs, values, "config "+configPath); err != nil {
			return err
		}
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if err := parseInterspersed(fs, args); err != nil {
		return err
	}
	for _, w := range cmdlineSecretWarnings(args) {
		fmt.Fprintln(fs.Output(), "packetlake "+fs.Name()+": warning: "+w)
	}
	return nil
}

// cmdlineSecretWarnings names each secret given on the command line: every local user sees it
// in ps and /proc/PID/cmdline (and shell history keeps it), where the environment and a
// config file readable by packetlake alone do not expose it.
func cmdlineSecretWarnings(args []string) []string {
	var out []string
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && secretFlags[name] {
			out = append(out, fmt.Sprintf("--%s on the command line is visible to every local user in ps and /proc/PID/cmdline; set %s in the environment instead", name, envName(name)))
		}
	}
	return out
}

// parseInterspersed parses like fs.Parse but also takes flags after positional arguments
// (`packetlake query top_talkers --since 24h`), which the flag package alone stops at. "--" ends
// flag parsing as usual.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// addConfigFlag defines --config, so that -h lists it and manifests may use it. parseFlags reads
// its value itself, before everything else.
func addConfigFlag(fs *flag.FlagSet) {
	if fs.Lookup("config") == nil {
		fs.String("config", os.Getenv("PACKETLAKE_CONFIG"), "YAML configuration file: keys are flag names, top level or under a section named after the subcommand")
	}
}

// flags returns a subcommand's complete flag set (its own and --config) and its run function.
func (c subcommand) flags() (*flag.FlagSet, func(context.Context) error) {
	fs, run := c.setup()
	addConfigFlag(fs)
	return fs, run
}

// loadConfig reads the YAML file and returns the keys that apply to subcommand cmd.
func loadConfig(path, cmd string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config %s: not valid YAML: %w", path, err)
	}
	out := map[string]string{}
	for k, v := range doc {
		if _, isSection := v.(map[string]any); isSection {
			continue
		}
		s, err := scalar(v)
		if err != nil {
			return nil, fmt.Errorf("config %s: key %q: %w", path, k, err)
		}
		out[k] = s
	}
	if sec, ok := doc[cmd].(map[string]any); ok {
		for k, v := range sec {
			s, err := scalar(v)
			if err != nil {
				return nil, fmt.Errorf("config %s: key %s.%s: %w", path, cmd, k, err)
			}
			out[cmd+"."+k] = s
		}
	}
	return out, nil
}

// scalar turns a YAML value into the text a flag takes; a list becomes comma-separated.
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := scalar(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("want a string, number, boolean or list, got %T", v)
}

// applyValues sets flags from config keys. Top-level keys that name no flag of this subcommand
// belong to another subcommand and are ignored; keys of this subcommand's own section must exist.
func applyValues(fs *flag.FlagSet, values map[string]string, source string) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	// Top-level keys first, then the subcommand's own section, so that the section always wins
	// (a plain sort would put "ingest.metrics-addr" before "metrics-addr").
	sort.Slice(keys, func(i, j int) bool {
		si, sj := strings.HasPrefix(keys[i], fs.Name()+"."), strings.HasPrefix(keys[j], fs.Name()+".")
		if si != sj {
			return sj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		name, inSection := strings.CutPrefix(k, fs.Name()+".")
		if fs.Lookup(name) == nil || name == "config" {
			if inSection {
				return fmt.Errorf("%s: %s has no setting %q%s", source, fs.Name(), name, suggestFlag(fs, name))
			}
			if !knownAnywhere(name) {
				return fmt.Errorf("%s: no subcommand has a setting %q", source, name)
			}
			continue
		}
		if err := fs.Set(name, values[k]); err != nil {
			return badValue(source+": "+k, fs.Lookup(name), values[k], err)
		}
	}
	return nil
}

// applyEnv sets flags from PACKETLAKE_<NAME> variables.
func applyEnv(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || f.Name == "config" {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = badValue("environment "+env, f, v, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "PACKETLAKE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// suggestFlag names the flag closest to a misspelt key.
func suggestFlag(fs *flag.FlagSet, name string) string {
	best, bestD := "", 1<<30
	fs.VisitAll(func(f *flag.Flag) {
		if d := suggest.Distance(name, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best != "" && bestD <= max(2, len(name)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (`packetlake " + fs.Name() + " -h` lists them)"
}

// knownAnywhere reports whether some subcommand has a flag of that name; filled by flagCatalog.
func knownAnywhere(name string) bool {
	_, ok := flagCatalog()[name]
	return ok
}

// flagCatalog maps every flag name of every subcommand to the subcommands that have it, by
// running each subcommand's setup (which only defines flags).
func flagCatalog() map[string][]string {
	catalog := map[string][]string{}
	for name, c := range subcommands {
		if c.setup == nil {
			continue
		}
		fs, _ := c.flags()
		fs.VisitAll(func(f *flag.Flag) { catalog[f.Name] = append(catalog[f.Name], name) })
	}
	return catalog
}

// badValue explains a value a flag refused, with what the flag wants.
func badValue(where string, f *flag.Flag, value string, err error) error {
	v := fmt.Sprintf("%q", value)
	if secretFlags[f.Name] || urlFlags[f.Name] {
		v = shownValue(f.Name, value)
	}
	return fmt.Errorf("%s: invalid value %s (%v); wanted: %s", where, v, err, f.Usage)
}
