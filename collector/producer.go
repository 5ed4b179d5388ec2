package collector

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/kafkaconn"
)

// recordOverhead is charged per frame on top of its buffer: the kgo.Record, the promise closure
// and the client's batch bookkeeping. Without it a quiet interface (tiny frames) could queue
// hundreds of thousands of frames under the byte cap while Kafka is down.
const recordOverhead = 512

// statsHeadroom is client buffer space kept free of frames, so stats messages still fit (and
// the client's own cap never sheds a frame that ours admitted).
const statsHeadroom = 1 << 20

// recordAbortWait bounds the safe abort after a timed-out flush: the client waits for answers to
// requests in flight before failing their frames (idempotency), and a dead broker never answers.
const recordAbortWait = 2 * time.Second

// producer hands frames to Kafka without ever blocking the caller.
type producer struct {
	cl    *kgo.Client
	key   []byte // host/iface: one partition per collector and interface keeps its frames in order
	limit int64  // MaxBufferedBytes
	n     *counters
	st    *runState // its ack mark: what Kafka acknowledged, for a restarted process's reckoning
	ackMu sync.Mutex
	bufs  *frameBufs // frame copies, released by the promise
	// frames whose promise has not run yet: the client delivers promises from its own
	// goroutine, also after Close returns, and Stop's final counts must include them.
	inflight sync.WaitGroup
}

func newProducer(cfg Config, iface string, n *counters, deps kafkaconn.Deps) (*producer, error) {
	comp := kgo.Lz4Compression()
	if cfg.Compression == "zstd" {
		comp = kgo.ZstdCompression()
	}
	limit := int64(cfg.MaxBufferedBytes)
	cl, err := cfg.Kafka.NewClient(deps,
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerBatchCompression(comp),
		// Idempotent writes with acks=all (franz-go's defaults, said here so nobody trades them
		// away): a retried frame is never stored twice or out of order, and an acknowledged one
		// is on every in-sync replica — with RF 3 and min.insync.replicas=2 it survives a
		// broker's death. No delivery timeout: frames wait for the broker until Stop or
		// until the byte cap sheds new ones, so an outage costs the newest records, counted.
		kgo.MaxBufferedBytes(int(limit)+statsHeadroom),
		// The record-count cap must never bind before our byte cap does.
		kgo.MaxBufferedRecords(int(limit/recordOverhead)+1024),
		// Frames are already big batches; lingering would only add latency.
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return nil, err
	}
	return &producer{
		cl:    cl,
		key:   []byte(cfg.Host + "/" + iface),
		limit: limit,
		n:     n,
		bufs:  newFrameBufs(cfg.FrameMaxBytes),
	}, nil
}

// produce copies frame (the builder reuses its buffer) and hands it to the client, or sheds it
// when the frames already waiting for Kafka would exceed the cap. It never blocks. A frame is
// charged the memory it really holds: its copy's buffer (frameBufs), the key and the client's
// per-record overhead. endSeq is the seq after the frame's last record.
func (p *producer) produce(frame []byte, records int, endSeq uint64) {
	charge := int64(p.bufs.capFor(len(frame))+len(p.key)) + recordOverhead
	if p.n.buffered.Add(charge) > p.limit {
		p.n.buffered.Add(-charge)
		p.n.framesShed.Add(1)
		p.n.recordsShed.Add(uint64(records))
		return
	}
	bp := p.bufs.copy(frame)
	p.n.framesProduced.Add(1)
	p.n.recordsProduced.Add(uint64(records))
	r := &kgo.Record{Key: p.key, Value: *bp}
	p.inflight.Add(1)
	p.cl.TryProduce(context.Background(), r, func(_ *kgo.Record, err error) {
		defer p.inflight.Done()
		p.n.buffered.Add(-charge)
		p.bufs.release(bp)
		if err == nil {
			p.acked(r, records, endSeq)
			return
		}
		p.n.recordsFailed.Add(uint64(records))
		p.n.produceError(errorReason(err))
	})
}

// acked counts an acknowledged frame and moves the run's ack mark past it. Frames of one
// collector go to one partition and are acknowledged in order (idempotent producer), so the
// mark's offset and seq only move forward; a process killed before the mark moved leaves the
// frame to the next process's search of the partition (reconcile.go).
func (p *producer) acked(r *kgo.Record, records int, endSeq uint64) {
	p.ackMu.Lock()
	defer p.ackMu.Unlock()
	p.n.framesAcked.Add(1)
	p.n.recordsAcked.Add(uint64(records))
	a := p.st.ack()
	a.Records, a.Frames = p.n.recordsAcked.Load(), p.n.framesAcked.Load()
	a.Partition, a.NextOffset = uint64(r.Partition)+1, uint64(r.Offset)+1
	a.Through = max(a.Through, endSeq)
	p.st.markAck(a)
}

// flush waits for every buffered frame to be acknowledged, up to ctx; what is still waiting
// then is aborted (its promises count it failed, reason "aborted").
func (p *producer) flush(ctx context.Context) error {
	err := p.cl.Flush(ctx)
	if err != nil {
		abortCtx, cancel := context.WithTimeout(context.Background(), recordAbortWait)
		defer cancel()
		_ = p.cl.AbortBufferedRecords(abortCtx)
	}
	return err
}

// close closes the client, which fails what is still buffered, and waits (bounded) until every
// frame's promise has counted it. Only after the source has stopped producing.
func (p *producer) close() {
	p.cl.Close()
	done := make(chan struct{})
	go func() { p.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(recordAbortWait):
	}
}

// errorReason turns a produce error into a short, bounded label.
func errorReason(err error) string {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return strings.ToLower(ke.Message)
	case errors.Is(err, kgo.ErrMaxBuffered):
		return "max_buffered"
	case errors.Is(err, kgo.ErrAborting):
		return "aborted"
	case errors.Is(err, kgo.ErrClientClosed):
		return "client_closed"
	case errors.Is(err, kgo.ErrRecordTimeout):
		return "record_timeout"
	case errors.Is(err, kgo.ErrRecordRetries):
		return "record_retries"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}
