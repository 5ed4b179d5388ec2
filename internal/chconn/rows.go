package chconn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Rows runs a SELECT with params bound and calls fn with each row, its columns by name
// (JSONEachRow, 64-bit integers as numbers).
func (c *Client) Rows(ctx context.Context, sql string, params map[string]string, fn func(map[string]json.RawMessage) error) error {
	body, err := c.Query(ctx, sql, params, map[string]string{
		"default_format": "JSONEachRow",
		"output_format_json_quote_64bit_integers": "0",
	})
	if err != nil {
		return err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		row := map[string]json.RawMessage{}
		if err := json.Unmarshal(line, &row); err != nil {
			return fmt.Errorf("clickhouse at %s: decode row %.200q: %w", c.addr, line, err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("clickhouse at %s: read rows: %w", c.addr, err)
	}
	return nil
}
