package ingester

// ipcBody is an encoded Arrow IPC stream held as the list of slices the IPC writer wrote,
// without joining them: the column values, most of the stream, stay in the batch's own buffers
// and are sent from there (chconn.SendParts). Copying them into one body cost a tenth of the
// ingester's Go time per row (BENCH.md, ingcpu), and a second copy of every batch in memory.
//
// Keeping a write by reference is safe because nothing the IPC writer (arrow/go/v15
// ipc.writeIPCPayload) hands to Write is changed before the batch's Reset, which also drops the
// body: the column values are the batch's own buffers, which arrowBatch.array wraps without
// copying and which stay untouched once sealed; everything else (each message's metadata from a
// new flatbuffers builder, rebased offsets) is memory allocated for that message. Writes below
// ipcAliasMin (metadata, padding) are copied all the same, only to keep the list of parts short.
// TestIPCBodySameBytes checks that the parts join into the very bytes the IPC writer produces
// into a plain buffer.
type ipcBody struct {
	parts [][]byte
	small []byte // copies of the small writes; parts refer to it
}

const ipcAliasMin = 4096

func (b *ipcBody) Write(p []byte) (int, error) {
	if len(p) >= ipcAliasMin {
		b.parts = append(b.parts, p)
		return len(p), nil
	}
	at := len(b.small)
	b.small = append(b.small, p...)
	// When small grows into a new array, the parts made before keep the old one: still valid.
	b.parts = append(b.parts, b.small[at:len(b.small):len(b.small)])
	return len(p), nil
}

func (b *ipcBody) reset() {
	clear(b.parts) // the column buffers are the batch's own, but let them go with the body
	b.parts, b.small = b.parts[:0], b.small[:0]
}
