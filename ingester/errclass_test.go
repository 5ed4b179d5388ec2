package ingester

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestErrorCodeNames: every code of the classification table has the name the real server
// gives it, so the table cannot silently drift from ClickHouse's numbering.
func TestErrorCodeNames(t *testing.T) {
	conn := chConn(t, sharedCH.TCPAddr())
	var rows []struct {
		Code int32  `ch:"code"`
		Name string `ch:"name"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	codes := make([]string, 0, len(chCodes))
	for code := range chCodes {
		codes = append(codes, strconv.Itoa(int(code)))
	}
	// system.error_codes is missing from this build; errorCodeToName reads the same table.
	if err := conn.Select(ctx, &rows, "SELECT toInt32(c) AS code, errorCodeToName(c) AS name FROM (SELECT arrayJoin(["+
		strings.Join(codes, ",")+"]) AS c)"); err != nil {
		t.Fatal(err)
	}
	names := map[int32]string{}
	for _, r := range rows {
		names[r.Code] = r.Name
	}
	for code, c := range chCodes {
		if names[code] != c.name {
			t.Errorf("code %d: the table says %s, ClickHouse says %q", code, c.name, names[code])
		}
	}
}

// TestClassify: the errors as the writers and the network hand them over.
func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		err  error
		want errKind
		desc string
	}{
		{fmt.Errorf("insert packets over http: clickhouse at h:8123: 500 Internal Server Error: Code: 469. DB::Exception: Constraint `c` is violated at row 1. (VIOLATED_CONSTRAINT) (version 26.7.2.1)"),
			errRejected, "Code: 469 (VIOLATED_CONSTRAINT)"},
		{fmt.Errorf("insert packets (native): %w", &clickhouse.Exception{Code: 53, Message: "Type mismatch"}), errRejected, "Code: 53 (TYPE_MISMATCH)"},
		{fmt.Errorf("insert flows: %w", &clickhouse.Exception{Code: 252, Message: "Too many parts"}), errTransient, "Code: 252 (TOO_MANY_PARTS)"},
		{fmt.Errorf("clickhouse at h:8123: 500 Internal Server Error: Code: 241. DB::Exception: Memory limit exceeded"), errTransient, "Code: 241 (MEMORY_LIMIT_EXCEEDED)"},
		{fmt.Errorf("clickhouse at h:8123: 404 Not Found: Code: 60. DB::Exception: Unknown table"), errTransient, "Code: 60 (UNKNOWN_TABLE)"},
		{fmt.Errorf("clickhouse at h:8123: 500: Code: 12345. DB::Exception: a code from the future"), errTransient, "Code: 12345"},
		{fmt.Errorf("clickhouse at h:8123: %w", refused), errTransient, "no ClickHouse code"},
		{fmt.Errorf("insert packets: %w", context.DeadlineExceeded), errTransient, "no ClickHouse code"},
		{errors.New("read: connection reset by peer"), errTransient, "no ClickHouse code"},
	} {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %v, want %v", c.err, got, c.want)
		}
		if got := describeCode(c.err); got != c.desc {
			t.Errorf("describeCode(%v) = %q, want %q", c.err, got, c.desc)
		}
	}
}
