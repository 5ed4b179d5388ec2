package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/collector"
)

func init() {
	register(subcommand{
		name:    "decode",
		summary: "print a capture's packets as the pipeline records them, one JSON object per line",
		setup:   setupDecode,
	})
}

// runDecode shows what packetlake would store for a capture, with no Kafka or ClickHouse: the
// capture runs through the BPF program (BPF_PROG_TEST_RUN) and the ingester's decoder.
func setupDecode() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake decode FILE.pcap\n\n"+
			"Runs every packet of FILE (pcap or pcapng, Ethernet) through the BPF program and prints\n"+
			"one JSON object per recorded packet: keys are the packets table's columns, in order.\n"+
			"Needs root (or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN) to load the program.\n")
	}
	return fs, func(_ context.Context) error {
		if fs.NArg() != 1 {
			fs.Usage()
			return errors.New("exactly one capture file is required")
		}
		if err := bpf.CheckCaps(); err != nil {
			return err
		}
		st, err := collector.DecodeCapture(fs.Arg(0), os.Stdout)
		for _, d := range st.Damaged {
			fmt.Fprintf(os.Stderr, "packetlake decode: skipped damaged %s\n", d)
		}
		if len(st.Damaged) > 0 {
			fmt.Fprintf(os.Stderr, "packetlake decode: %d damaged records skipped, %d packets read\n", len(st.Damaged), st.Packets)
		}
		if err != nil {
			return err
		}
		if st.Refused > 0 {
			fmt.Fprintf(os.Stderr, "packetlake decode: %d of %d packets refused by BPF_PROG_TEST_RUN (too big?)\n", st.Refused, st.Packets)
		}
		return nil
	}
}
