package ingester

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/record"
)

// metrics are the ingester's counters; every way a record can go (row, dead letter, retry,
// replay) moves one of them.
type metrics struct {
	kafkaRecords     *prometheus.CounterVec   // topic: Kafka records (frames, stats messages) consumed
	packets          prometheus.Counter       // packets decoded from frames
	rowsInserted     *prometheus.CounterVec   // table
	insertDuration   *prometheus.HistogramVec // table
	insertRetries    *prometheus.CounterVec   // table: failed inserts that will be retried
	batches          *prometheus.CounterVec   // topic, cut: size, age, cap, budget (grow.go), revoke, replayed (a claimed range)
	deadLetters      *prometheus.CounterVec   // topic
	flowDuplicates   prometheus.Counter       // flow messages whose identity was already stored
	dropDuplicates   prometheus.Counter       // kernel drop messages whose identity was already stored (sink_drops.go)
	commits          prometheus.Counter
	commitRetries    prometheus.Counter
	commitsRefused   *prometheus.CounterVec // error: commits after an INSERT the group refused (claim.go)
	claims           prometheus.Counter     // batches claimed in Kafka before their INSERT
	claimsRefused    *prometheus.CounterVec // error: claims the group refused (the member was fenced)
	staleCommits     *prometheus.CounterVec // topic: committed offsets of a deleted topic instance, ignored
	topicRecreations *prometheus.CounterVec // topic: re-created topics re-subscribed to
	kafkaErrors      *prometheus.CounterVec // kind: fetch, connect
	lag              *prometheus.GaugeVec   // topic, partition: high watermark − next offset to commit
	paused           prometheus.Gauge       // partitions whose fetching is paused (backpressure)
	bisected         *prometheus.CounterVec // topic: batches ClickHouse refused for their data, bisected
	rejected         *prometheus.CounterVec // topic: records ClickHouse refused, stored in dead_letters
	expired          *prometheus.CounterVec // topic: records Kafka deleted (retention) before they were ingested
	quicHellos       *prometheus.CounterVec // outcome: QUIC ClientHello reassembly (record.L7Stats)
	tlsHellos        *prometheus.CounterVec // outcome: TLS-over-TCP ClientHello reassembly (record.L7Stats)
}

func newMetrics() *metrics {
	const ns, sub = "packetlake", "ingester"
	m := &metrics{
		kafkaRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "kafka_records_total", Help: "Kafka records consumed (packet frames, stats messages)."}, []string{"topic"}),
		packets: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "packets_decoded_total", Help: "Packets decoded from frames."}),
		rowsInserted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rows_inserted_total", Help: "Rows acknowledged by ClickHouse (a deduplicated replay counts again)."}, []string{"table"}),
		insertDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "insert_duration_seconds", Help: "Duration of successful INSERTs.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}, []string{"table"}),
		insertRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "insert_retries_total", Help: "Failed INSERTs, retried with backoff."}, []string{"table"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "batches_total", Help: "Batches inserted and committed, by what cut them."}, []string{"topic", "cut"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dead_letters_total", Help: "Kafka records that could not be decoded, stored in dead_letters."}, []string{"topic"}),
		flowDuplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "flow_messages_duplicate_total", Help: "Flow messages not inserted: their identity (host, collector_id, export_seq, chunk) was already stored."}),
		dropDuplicates: newDropDuplicates(),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "commits_total", Help: "Offset commits acknowledged by Kafka."}),
		commitRetries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "commit_retries_total", Help: "Failed offset commits, retried with backoff."}),
		commitsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "commits_refused_total", Help: "Offset commits after an INSERT refused by the group: the partition had moved to another member."}, []string{"error"}),
		claims: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "batch_claims_total", Help: "Batches claimed in Kafka (fenced by the group generation) before their INSERT."}),
		claimsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "batch_claims_refused_total", Help: "Batch claims refused by the group: this member no longer owned the partition, the batch was not inserted."}, []string{"error"}),
		staleCommits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "stale_commits_total", Help: "Committed offsets written for a deleted instance of a topic, ignored: the partition started at its beginning."}, []string{"topic"}),
		topicRecreations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "topic_recreations_total", Help: "Topics found deleted and re-created while consumed, re-subscribed to."}, []string{"topic"}),
		kafkaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "kafka_errors_total", Help: "Kafka errors (the client reconnects by itself)."}, []string{"kind"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "consumer_lag", Help: "Records between the partition's high watermark and the last commit."}, []string{"topic", "partition"}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "paused_partitions", Help: "Partitions whose fetching is paused because their worker is behind."}),
		bisected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "bisected_batches_total", Help: "Batches ClickHouse refused for their data (parse, type, constraint errors), bisected to isolate the records it refuses."}, []string{"topic"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "rejected_records_total", Help: "Kafka records that decoded but whose rows ClickHouse refuses, stored in dead_letters with the server's error."}, []string{"topic"}),
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "kafka_expired_records_total", Help: "Kafka records deleted by the topic's retention before the ingester read them (recorded in ingest_gaps)."}, []string{"topic"}),
		quicHellos: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "quic_hellos_total", Help: "QUIC ClientHellos: parsed, reassembled (over several Initials), or given up: expired, evicted, too_large."}, []string{"outcome"}),
		tlsHellos: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "tls_split_hellos_total", Help: "TLS ClientHello records over several TCP segments: reassembled, or given up: expired, orphaned (no first segment), evicted, too_large, conflict (copies of a byte differed), replaced (another record began)."}, []string{"outcome"}),
	}
	return m
}

// register puts the metrics on reg (nil: nowhere), once New can no longer fail.
func (m *metrics) register(reg prometheus.Registerer) {
	if reg != nil {
		reg.MustRegister(m.kafkaRecords, m.packets, m.rowsInserted, m.insertDuration, m.insertRetries,
			m.batches, m.deadLetters, m.flowDuplicates, m.dropDuplicates, m.commits, m.commitRetries, m.commitsRefused, m.claims, m.claimsRefused,
			m.staleCommits, m.topicRecreations, m.kafkaErrors, m.lag, m.paused, m.bisected, m.rejected, m.expired,
			m.quicHellos, m.tlsHellos)
	}
}

// addQUIC counts the QUIC and TLS-over-TCP ClientHello reassemblies' outcomes since the previous call.
func (m *metrics) addQUIC(d record.L7Stats) {
	for _, c := range []struct {
		outcome string
		n       uint64
	}{{"parsed", d.QUICHellos}, {"reassembled", d.QUICReassembled}, {"expired", d.QUICExpired}, {"evicted", d.QUICEvicted}, {"too_large", d.QUICTooLarge}} {
		if c.n > 0 {
			m.quicHellos.WithLabelValues(c.outcome).Add(float64(c.n))
		}
	}
	for _, c := range []struct {
		outcome string
		n       uint64
	}{{"reassembled", d.TLSReassembled}, {"expired", d.TLSExpired}, {"orphaned", d.TLSOrphaned}, {"evicted", d.TLSEvicted},
		{"too_large", d.TLSTooLarge}, {"conflict", d.TLSConflict}, {"replaced", d.TLSReplaced}} {
		if c.n > 0 {
			m.tlsHellos.WithLabelValues(c.outcome).Add(float64(c.n))
		}
	}
}
