package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

func init() {
	register(subcommand{
		name:    "config",
		summary: "config check FILE: validate a YAML configuration against every subcommand's settings",
		run:     runConfig,
	})
}

const configUsage = `Usage: packetlake config check FILE

Applies the YAML file to every subcommand's settings exactly as a run would (top-level keys
to every subcommand that has the setting, a section named after a subcommand to it alone,
winning over the top level) and prints the effective settings, secrets and webhook URLs
redacted. Each unknown key is named with the nearest real one; the exit status is 1 when
there is a problem.
`

func runConfig(_ context.Context, args []string) error {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "help" {
			fmt.Fprint(os.Stderr, configUsage)
			return flag.ErrHelp
		}
	}
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprint(os.Stderr, configUsage)
		return fmt.Errorf("usage: packetlake config check FILE")
	}
	problems, effective, err := checkConfig(args[1])
	if err != nil {
		return err
	}
	for _, line := range effective {
		fmt.Println(line)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, p)
		}
		return fmt.Errorf("%s: %d problem(s)", args[1], len(problems))
	}
	fmt.Printf("%s: ok\n", args[1])
	return nil
}

// checkConfig applies the file to every subcommand's flags exactly as a run would, and returns
// one message per problem, plus the effective settings (secrets redacted).
func checkConfig(path string) (problems, effective []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("config %s: not valid YAML: %w", path, err)
	}
	for k, v := range doc {
		if _, isSection := v.(map[string]any); !isSection {
			continue
		}
		if c, ok := subcommands[k]; !ok || c.setup == nil {
			problems = append(problems, fmt.Sprintf("config %s: section %q names no configurable subcommand (%s)", path, k, strings.Join(configurable(), ", ")))
		}
	}
	for _, name := range configurable() {
		fs, _ := subcommands[name].flags()
		values, err := loadConfig(path, name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if err := applyValues(fs, values, "config "+path); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		fs.Visit(func(f *flag.Flag) {
			v := shownValue(f.Name, f.Value.String())
			effective = append(effective, fmt.Sprintf("%s.%s = %s", name, f.Name, v))
		})
	}
	sort.Strings(effective)
	return problems, effective, nil
}

func configurable() []string {
	var names []string
	for n, c := range subcommands {
		if c.setup != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
