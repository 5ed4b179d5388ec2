// Command packetlake is the single binary of the pipeline. Each subcommand lives in its own
// cmd_<name>.go file and registers itself in init(), so adding one touches no shared file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// subcommand is one verb of the packetlake binary.
type subcommand struct {
	name    string
	summary string
	// setup defines the subcommand's flags and returns them with the function that runs it once
	// they are parsed (config file, environment, command line: see config.go). It must not act:
	// `packetlake config check` and the manifest tests call it to learn the flags.
	setup func() (*flag.FlagSet, func(ctx context.Context) error)
	// run is for subcommands that parse their own arguments (none of the config layers apply).
	run func(ctx context.Context, args []string) error
}

var subcommands = map[string]subcommand{}

func register(c subcommand) {
	if _, dup := subcommands[c.name]; dup {
		panic("duplicate subcommand " + c.name)
	}
	subcommands[c.name] = c
}

func usage() {
	fmt.Fprintf(os.Stderr, "packetlake: eBPF packet telemetry into ClickHouse\n\nUsage: packetlake <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-18s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'packetlake <command> -h' for the flags of a command.\n")
}

func runSubcommand(ctx context.Context, c subcommand, args []string) error {
	if c.setup == nil {
		return c.run(ctx, args)
	}
	fs, run := c.flags()
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return run(ctx)
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		os.Exit(2)
	}
	c, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "packetlake: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runSubcommand(ctx, c, os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "packetlake %s: %v\n", c.name, err)
		os.Exit(1)
	}
}
