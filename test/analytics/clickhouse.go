package analytics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/record"
)

// CH talks to ClickHouse over HTTP, the interface reports and Grafana also use.
type CH struct {
	Config chconn.Config // HTTPAddr and Database, the default database of every statement
	client *chconn.Client
}

// NewCH returns a client for cfg's HTTP interface; every statement runs in UTC within 2 min.
func NewCH(cfg chconn.Config) (CH, error) {
	client, err := cfg.Client(chconn.Timeout(2*time.Minute), chconn.Settings(map[string]string{"session_timezone": "UTC"}))
	return CH{Config: cfg, client: client}, err
}

// Query runs a statement and returns its TabSeparated rows.
func (c CH) Query(ctx context.Context, sql string) ([]string, error) {
	body, err := c.client.Query(ctx, sql, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%w\nstatement: %s", err, sql)
	}
	defer body.Close()
	out, err := io.ReadAll(body)
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
	if err := c.client.Exec(ctx, sql, nil); err != nil {
		return fmt.Errorf("%w\nstatement: %s", err, sql)
	}
	return nil
}

// Insert sends body as the data of sql (an INSERT ... FORMAT F) with extra settings.
func (c CH) Insert(ctx context.Context, sql string, body io.Reader, settings map[string]string) error {
	if err := c.client.Insert(ctx, sql, body, settings); err != nil {
		return fmt.Errorf("%w\nstatement: %s", err, sql)
	}
	return nil
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
	settings := map[string]string{"date_time_input_format": "best_effort", "input_format_skip_unknown_fields": "0"}
	if token != "" {
		settings["insert_deduplication_token"] = token
	}
	return c.Insert(ctx, "INSERT INTO "+table+" FORMAT JSONEachRow", bytes.NewReader(b), settings)
}
