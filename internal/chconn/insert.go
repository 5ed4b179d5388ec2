package chconn

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
)

// PreparedInsert is one INSERT ... FORMAT F whose URL (statement and settings) is built once,
// so sending a body costs no more than the request itself: the ingester's hot path.
type PreparedInsert struct {
	c   *Client
	url string
}

// PrepareInsert prepares sql with settings for SendParts.
func (c *Client) PrepareInsert(sql string, settings map[string]string) *PreparedInsert {
	return &PreparedInsert{c: c, url: c.url(sql, nil, settings)}
}

// SendParts posts the data in the statement's format under the deduplication token ("" for
// none): ClickHouse drops a retry of a block it already has with the same token. The body comes
// in parts that go out one after the other, never joined: the ingester's Arrow stream refers to
// its column buffers instead of copying them into one body (a tenth of its Go time per row,
// ingester/BENCH.md, ingcpu). The request has its Content-Length and can be resent by the HTTP
// transport (GetBody), as a []byte body would.
func (p *PreparedInsert) SendParts(ctx context.Context, parts [][]byte, token string) error {
	size := 0
	for _, b := range parts {
		size += len(b)
	}
	// net.Buffers consumes the slice it reads from: each reader gets its own copy of the list.
	reader := func() io.Reader { bufs := net.Buffers(slices.Clone(parts)); return &bufs }
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.tokenURL(token), reader())
	if err != nil {
		return fmt.Errorf("clickhouse at %s: %w", p.c.addr, err)
	}
	req.ContentLength = int64(size)
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(reader()), nil }
	resp, err := p.c.do(req)
	if err != nil {
		return err
	}
	return p.c.drain(resp)
}

func (p *PreparedInsert) tokenURL(token string) string {
	if token == "" {
		return p.url
	}
	return p.url + "&insert_deduplication_token=" + url.QueryEscape(token)
}
