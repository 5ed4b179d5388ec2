package chconn

import (
	"context"
	"io"
	"net"
	"net/http"
)

// partsBody is SendParts' request body: its parts, never joined. A type of its own (an
// io.ReadCloser, so net/http does not wrap it) lets partsConn recognise it.
type partsBody struct {
	bufs net.Buffers
	size int64 // bytes not yet read
}

func (b *partsBody) Read(p []byte) (int, error) {
	n, err := b.bufs.Read(p)
	b.size -= int64(n)
	return n, err
}

func (b *partsBody) Close() error { return nil }

// partsConn lets a partsBody go to the socket as it is, with writev, part after part. net/http
// hands a body with a Content-Length to the connection's ReadFrom as an io.LimitedReader;
// *net.TCPConn can do nothing better with a reader that is not a file or a socket than copy it
// through a 32 KiB buffer, one write(2) per 32 KiB: for an ingester batch of 100k rows (~25 MB),
// ~750 system calls and a copy of every byte in user space before the kernel's own
// (ingester/BENCH.md, issue 18 session 10). Other bodies go the usual way.
type partsConn struct{ *net.TCPConn }

func (c partsConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if b, ok := lr.R.(*partsBody); ok && b.size <= lr.N {
			n, err := b.bufs.WriteTo(c.TCPConn)
			b.size -= n
			lr.N -= n
			return n, err
		}
	}
	return c.TCPConn.ReadFrom(r)
}

// dialParts wraps the plain TCP connections of t's dialer as partsConn.
func dialParts(t *http.Transport) {
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok && err == nil {
			return partsConn{tc}, nil
		}
		return conn, err
	}
}
