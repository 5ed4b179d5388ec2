package collector

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/record"
)

// reconcile settles, for a run a process died carrying, the records it had read from the ring
// but never saw the fate of (runState.unconfirmed): those in the frame it was building or
// buffered in its Kafka client are lost; those in flight may have reached the broker anyway.
// It looks for them in the frames topic, after the last offset the run saw acknowledged: every
// frame of the run found there counts as acknowledged, the rest as records_lost_restart, so
// that seen == stored + counted losses holds exactly across the restart. Nothing is produced
// before it returns, and the dead process's requests were all answered by the time this one
// got here (its connections closed when it died).
//
// If Kafka cannot be asked within FlushTimeout they all count as lost, logged as an error: a
// collector must start even then, and an overstated loss is visible where an uncounted one is not.
func (c *Collector) reconcile(ctx context.Context, st *runState) error {
	u, err := st.unconfirmed()
	if err != nil {
		c.log.Error("run state: counting no restart loss", "err", err)
		return nil
	}
	if u == 0 {
		return nil
	}
	a, r := st.ack(), st.read()
	found, err := c.findLanded(ctx, st, a, r.Seq)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Error("cannot tell which records of the previous process reached Kafka: counting them all lost",
			"records", u, "err", err)
		found = landed{}
	}
	found.records = min(found.records, u)
	a.Records += found.records
	a.Frames += found.frames
	a.LostRestart += u - found.records
	a.Through = r.Seq
	if found.next > 0 {
		a.Partition, a.NextOffset = uint64(found.partition)+1, uint64(found.next)
	}
	st.markAck(a)
	st.settle()
	c.log.Warn("records the previous process had read: reconciled with Kafka", "unconfirmed", u,
		"found_in_kafka", found.records, "lost", u-found.records, "records_lost_restart", a.LostRestart)
	return nil
}

// landed is what findLanded found.
type landed struct {
	records, frames uint64
	partition       int32
	next            int64 // the partition's end offset when searched; 0 if not searched
}

// findLanded searches the partition the run's frames go to, from the offset after the last one
// acknowledged (or, if none was, from the run's start time), for frames of st's run with seq in
// [a.Through, seqEnd): in Kafka, though no process counted them acknowledged.
func (c *Collector) findLanded(ctx context.Context, st *runState, a ackMark, seqEnd uint64) (landed, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.FlushTimeout)
	defer cancel()
	topic := c.cfg.Topic
	cl, err := c.cfg.Kafka.NewClient(c.kafkaDeps())
	if err != nil {
		return landed{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return landed{}, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	var out landed
	if a.Partition > 0 {
		out.partition = int32(a.Partition - 1)
	} else { // never acknowledged: where the producer's key hashing sends this run's frames
		n := len(ends[topic])
		out.partition = int32(kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: c.prod.key}, n))
	}
	end, ok := ends.Lookup(topic, out.partition)
	if !ok {
		return landed{}, fmt.Errorf("topic %s has no partition %d", topic, out.partition)
	}
	out.next = end.Offset
	start := int64(a.NextOffset) - 1
	if a.NextOffset == 0 {
		// Producer timestamps are this host's clock; a minute covers any step it took since.
		after, err := adm.ListOffsetsAfterMilli(ctx, st.startedNs/1e6-60_000, topic)
		if err == nil {
			err = after.Error()
		}
		if err != nil {
			return landed{}, fmt.Errorf("find %s's offset at the run's start: %w", topic, err)
		}
		o, _ := after.Lookup(topic, out.partition)
		start = o.Offset
	} else {
		start++
	}
	if start < 0 || start >= end.Offset {
		return out, nil
	}
	rd, err := c.cfg.Kafka.NewClient(c.kafkaDeps(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {out.partition: kgo.NewOffset().At(start)}}))
	if err != nil {
		return landed{}, err
	}
	defer rd.Close()
	for last := start - 1; last < end.Offset-1; {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return landed{}, fmt.Errorf("read %s partition %d from %d to %d: %w", topic, out.partition, start, end.Offset, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return landed{}, fmt.Errorf("read %s partition %d: %w", topic, out.partition, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			last = max(last, r.Offset)
			if r.Offset >= end.Offset {
				return
			}
			h, _, err := record.ParseFrame(r.Value)
			if err != nil || h.CollectorID != st.collectorID || h.Host != c.cfg.Host || h.Iface != c.iface ||
				h.FirstSeq < a.Through || h.FirstSeq >= seqEnd {
				return // another collector's frame (they share partitions), or one already settled
			}
			out.records += uint64(h.Count)
			out.frames++
		})
	}
	return out, nil
}
