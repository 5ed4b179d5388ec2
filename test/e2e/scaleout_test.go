package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
)

// Scale-out on one machine: two collectors on two veths (two "hosts"), a topic with several
// partitions, three ingester processes in one consumer group, one ClickHouse. Every record the
// collectors had acknowledged by Kafka is stored exactly once, and the group spread the
// partitions over all three members.
func TestScaleOutExactlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	topic, stats, flows := env.Topic(t, 6), env.Topic(t, 1), env.Topic(t, 1)
	db := strings.ReplaceAll(env.Topic(t, 1), "-", "_")
	group := "scaleout-" + db

	start := time.Now()
	for range 3 {
		startIngest(t, ctx, topic, stats, flows, group, db)
	}
	// Traffic starts at once, while the group is still forming: records arrive during the
	// first assignments and the rebalances that follow (generations 1-3 within ~1 s).
	var collectors []*collector.Collector
	var veths []*nettest.Veth
	for i, host := range []string{"node-a", "node-b"} {
		v := nettest.NewVethPair(t)
		cfg := collector.DefaultConfig()
		cfg.Iface, cfg.NetNS, cfg.Host = v.Name, v.NS, host
		cfg.Kafka.Brokers, cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = []string{env.Kafka.Addr()}, topic, stats, flows
		cfg.RingBytes = 4 << 20
		c, err := collector.New(cfg, collector.Dependencies{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatalf("collector %d: %v", i, err)
		}
		t.Cleanup(func() { c.Stop() })
		collectors, veths = append(collectors, c), append(veths, v)
	}

	// Real captures, looped, from each peer into its collector's interface at the same time.
	done := make(chan error, len(veths))
	for _, v := range veths {
		go func() {
			_, err := nettest.Exec(ctx, v.PeerNS, "tcpreplay", "--intf1="+v.PeerName, "--pps=4000", "--loop=25",
				testpcaps.Path("ja4/v6.pcap"))
			done <- err
		}()
	}
	for range veths {
		if err := <-done; err != nil {
			t.Fatalf("tcpreplay: %v", err)
		}
	}
	var acked uint64
	seen := map[string]uint64{}
	for i, c := range collectors {
		if err := c.Stop(); err != nil {
			t.Fatalf("stop collector %d: %v", i, err)
		}
		s := c.Stats()
		if s.RecordsShed != 0 || s.RecordsFailed != 0 || s.KernelRingFull != 0 {
			t.Fatalf("collector %d lost records: %+v", i, s)
		}
		acked += s.RecordsAcked
		seen[[]string{"node-a", "node-b"}[i]] = s.KernelSeen
	}
	if acked < 2*25*150 {
		t.Fatalf("collectors acknowledged only %d records", acked)
	}
	waitRows(t, ctx, db, acked)

	ch := env.CH(t)
	var hosts uint64
	var dups int64
	if err := ch.QueryRow(ctx, "SELECT uniqExact(host), count() - uniqExact(host, collector_id, seq) FROM "+db+".packets").Scan(&hosts, &dups); err != nil {
		t.Fatal(err)
	}
	if hosts != 2 || dups != 0 {
		t.Errorf("hosts %d, duplicate (host, collector_id, seq) %d; want 2 and 0", hosts, dups)
	}

	checkLossBudget(t, ctx, db, start, seen)

	if members, busy, desc := groupAssignment(t, ctx, group, topic); members != 3 || busy != 3 {
		t.Errorf("group %s: %d members, %d with partitions of %s; want 3 and 3 (%s)", group, members, busy, topic, desc)
	}
	t.Logf("%d records from 2 collectors stored exactly once by 3 ingesters", acked)
}

// groupAssignment counts the group's members and those holding partitions of topic.
func groupAssignment(t *testing.T, ctx context.Context, group, topic string) (members, busy int, desc string) {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	groups, err := kadm.NewClient(adm).DescribeGroups(ctx, group)
	if err != nil {
		return 0, 0, err.Error() // e.g. the coordinator is still loading: ask again
	}
	g := groups[group]
	if g.State != "Stable" {
		return 0, 0, "state " + g.State
	}
	assigned := 0
	for _, m := range g.Members {
		if a, ok := m.Assigned.AsConsumer(); ok {
			n := 0
			for _, tp := range a.Topics {
				if tp.Topic == topic {
					n += len(tp.Partitions)
				}
			}
			if n > 0 {
				busy++
			}
			assigned += n
		}
	}
	return len(g.Members), busy, fmt.Sprintf("%d partitions assigned; %s", assigned, describeGroup(g))
}

func describeGroup(g kadm.DescribedGroup) string {
	var b strings.Builder
	for _, m := range g.Members {
		fmt.Fprintf(&b, "%s ", m.MemberID)
	}
	return b.String()
}
