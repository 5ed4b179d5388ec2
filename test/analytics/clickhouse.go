package analytics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/packetlake/packetlake/record"
)

// CH talks to ClickHouse over HTTP, the interface reports and Grafana also use.
type CH struct {
	Addr     string // host:port of the HTTP interface
	Database string // default database of every statement
	Client   *http.Client
}

// Do runs one statement with extra settings and returns the body (TabSeparated unless the
// statement says FORMAT).
func (c CH) Do(ctx context.Context, sql string, body io.Reader, settings url.Values) ([]byte, error) {
	q := url.Values{}
	q.Set("database", c.Database)
	q.Set("session_timezone", "UTC")
	for k, v := range settings {
		q[k] = v
	}
	if body == nil {
		body = strings.NewReader(sql)
	} else {
		q.Set("query", sql)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.Addr+"/?"+q.Encode(), body)
	if err != nil {
		return nil, err
	}
	client := c.Client
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("clickhouse: %s: %s\nstatement: %s", resp.Status, bytes.TrimSpace(out), sql)
	}
	return out, nil
}

// Query runs a statement and returns its TabSeparated rows.
func (c CH) Query(ctx context.Context, sql string) ([]string, error) {
	out, err := c.Do(ctx, sql, nil, nil)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(string(out), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// Exec runs a statement that returns nothing.
func (c CH) Exec(ctx context.Context, sql string) error {
	_, err := c.Do(ctx, sql, nil, nil)
	return err
}

// Uint runs a statement returning one unsigned number.
func (c CH) Uint(ctx context.Context, sql string) (uint64, error) {
	rows, err := c.Query(ctx, sql)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("%q returned %d rows, want 1", sql, len(rows))
	}
	return strconv.ParseUint(rows[0], 10, 64)
}

var macJSON = regexp.MustCompile(`"(src_mac|dst_mac)":"([0-9a-f]{2}(?::[0-9a-f]{2}){5})"`)

// InsertPackets inserts rows into packets as `packetlake decode` prints them (JSONEachRow), with
// the MACs made numbers (the table stores them as UInt64), under the given deduplication token
// as the ingester does ("" for none).
func (c CH) InsertPackets(ctx context.Context, rows []record.Packet, token string) error {
	return c.InsertInto(ctx, "packets", rows, token)
}

// InsertInto is InsertPackets into another table with the columns of packets.
func (c CH) InsertInto(ctx context.Context, table string, rows []record.Packet, token string) error {
	var b []byte
	for i := range rows {
		line := record.AppendJSON(nil, &rows[i])
		line = macJSON.ReplaceAllFunc(line, func(m []byte) []byte {
			sub := macJSON.FindSubmatch(m)
			n, _ := strconv.ParseUint(strings.ReplaceAll(string(sub[2]), ":", ""), 16, 64)
			return fmt.Appendf(nil, `"%s":%d`, sub[1], n)
		})
		b = append(b, line...)
	}
	settings := url.Values{"date_time_input_format": {"best_effort"}, "input_format_skip_unknown_fields": {"0"}}
	if token != "" {
		settings.Set("insert_deduplication_token", token)
	}
	_, err := c.Do(ctx, "INSERT INTO "+table+" FORMAT JSONEachRow", bytes.NewReader(b), settings)
	return err
}
