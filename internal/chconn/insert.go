package chconn

import (
	"bytes"
	"context"
	"net/url"
)

// PreparedInsert is one INSERT ... FORMAT F whose URL (statement and settings) is built once,
// so sending a body costs no more than the request itself: the ingester's hot path.
type PreparedInsert struct {
	c   *Client
	url string
}

// PrepareInsert prepares sql with settings for Send.
func (c *Client) PrepareInsert(sql string, settings map[string]string) *PreparedInsert {
	return &PreparedInsert{c: c, url: c.url(sql, nil, settings)}
}

// Send posts body, the data in the statement's format, under the deduplication token ("" for
// none): ClickHouse drops a retry of a block it already has with the same token.
func (p *PreparedInsert) Send(ctx context.Context, body []byte, token string) error {
	u := p.url
	if token != "" {
		u += "&insert_deduplication_token=" + url.QueryEscape(token)
	}
	resp, err := p.c.send(ctx, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	return p.c.drain(resp)
}
