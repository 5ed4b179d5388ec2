package ingester

// Bigger batches while a partition is behind (issue #18). With every rollup view, each INSERT
// costs ClickHouse a fixed price whatever its size: a part per view table and every view's
// query planned again (BenchmarkInsertFixedCost). A backlog or a high rate can be stored in
// fewer, bigger INSERTs; a trickle cannot (its rows are not there yet) and keeps FlushAge's
// latency. So once a batch reaches FlushRows or FlushBytes it is cut only if its partition has
// nothing more to give now; while the fetch's high watermark is past the batch's last record
// it keeps growing, up to MaxBatchRows rows, for as long as the Kafka bytes all partitions'
// batches hold past their FlushRows/FlushBytes stay within GrowBudget. FlushAge still cuts a
// growing batch, so no row waits for its cut longer than today (a bigger INSERT itself takes
// longer: only where rows were already waiting in Kafka). A replay is unaffected: it cuts where
// the claim committed before the first attempt's INSERT says (claim.go), whatever this decides.

const (
	cutCap    cut = "cap"    // grew while behind, up to MaxBatchRows
	cutBudget cut = "budget" // grew while behind until GrowBudget was spent
)

// full reports whether the batch reached FlushRows or FlushBytes.
func (w *partitionWorker) full() bool {
	return w.rows >= w.ing.cfg.FlushRows || w.bytes >= w.ing.cfg.FlushBytes
}

// behind reports whether records past the batch's last one were already in Kafka at the last
// fetch. A high watermark past a transaction's control record (never delivered) also reads as
// behind: such a batch is cut by FlushAge, as a trickle is.
func (w *partitionWorker) behind() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hwm > w.last+1
}

// grow decides for a full batch whose last record has n bytes whether it grows on (zero cut)
// or is cut now, and why. A growing batch reserves its record's bytes on the shared budget;
// flush and the worker's exit give them back (ungrow).
func (w *partitionWorker) grow(more bool, n int) cut {
	cfg := &w.ing.cfg
	switch {
	case cfg.MaxBatchRows <= cfg.FlushRows || !more && !w.behind():
		return cutSize
	case w.rows >= cfg.MaxBatchRows:
		return cutCap
	}
	if !w.ing.reserve(int64(n), int64(cfg.GrowBudget)) {
		// The budget binds: the partitions are behind by more than it holds. Worth seeing
		// when sizing --grow-budget, too frequent for Info.
		w.log.Debug("batch cut by the grow budget", "rows", w.rows, "bytes", w.bytes, "budget", cfg.GrowBudget)
		return cutBudget
	}
	w.grown += n
	return ""
}

// reserve adds n bytes to the shared budget's use if that stays within budget. A compare and
// swap, not an add undone on overshoot: the counter never reads above the budget, not even
// for a moment (TestGrowBudget samples it).
func (ing *Ingester) reserve(n, budget int64) bool {
	for {
		cur := ing.grown.Load()
		if cur+n > budget {
			return false
		}
		if ing.grown.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// ungrow gives the batch's reservation back to the shared budget.
func (w *partitionWorker) ungrow() {
	w.ing.grown.Add(-int64(w.grown))
	w.grown = 0
}
