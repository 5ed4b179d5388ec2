package ingester

import (
	"context"

	"github.com/packetlake/packetlake/record"
	"github.com/twmb/franz-go/pkg/kgo"
)

// packetSink decodes packet frames into a writer's batch.
type packetSink struct {
	w       Writer
	batch   Batch
	l7      *record.L7State // ClientHellos spread over several QUIC Initials or TCP segments
	scratch []record.Packet // one frame's packets, appended only once the whole frame decoded
	decoded func(n int)
	quic    func(delta record.L7Stats) // nil: not counted
	quicWas record.L7Stats
}

func newPacketSink(w Writer, decoded func(n int)) *packetSink {
	return &packetSink{w: w, batch: w.NewBatch(), decoded: decoded, l7: record.NewL7State()}
}

func (s *packetSink) add(r *kgo.Record) (int, error) {
	h, samples, err := record.ParseFrame(r.Value)
	if err != nil {
		return 0, err
	}
	// ParseFrame checked every sample, so decoding should not fail; if it ever does, the frame
	// must still go to dead letters whole rather than half into packets: hence the scratch.
	s.scratch, err = record.AppendFrame(s.scratch[:0], h, samples, s.l7)
	if err != nil {
		return 0, err
	}
	s.batch.Append(s.scratch)
	s.decoded(len(s.scratch))
	if now := s.l7.Stats; s.quic != nil && now != s.quicWas {
		s.quic(now.Sub(s.quicWas))
		s.quicWas = now
	}
	return len(s.scratch), nil
}

func (s *packetSink) len() int { return s.batch.Len() }

func (s *packetSink) insert(ctx context.Context, token string) error {
	return s.w.Insert(ctx, s.batch, token)
}

func (s *packetSink) reset() {
	s.batch.Reset()
	clear(s.scratch) // drop the strings of the last frame
}

func (s *packetSink) table() string { return "packets" }

func (s *packetSink) fresh() sink { return newPacketSink(s.w, func(int) {}) }
