package ingester

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// What a failed INSERT means for its batch. Retrying is always safe (same rows, same token);
// what matters is whether retrying can ever help. Only an error that ClickHouse raises because
// of the rows themselves is worth isolating rows for: everything else (the network, the
// server's load, its shutdown, and also the schema, grants or settings, which an operator fixes)
// is retried until it goes away, and the stall detector (stall.go) says so on /healthz.

type errKind int

const (
	// errTransient: retry the same batch; the server, the network or the operator will change.
	errTransient errKind = iota
	// errRejected: ClickHouse refused the data itself (a value it cannot parse or store, a
	// constraint): the same rows fail the same way however often they are sent.
	errRejected
)

// chCodes are the ClickHouse error codes the ingester knows (src/Common/ErrorCodes.cpp; a test
// checks every name against the server's system.error_codes). A code not listed is transient:
// sending good rows to dead_letters because of an error nobody classified would be worse than
// a stall that an alert reports.
var chCodes = map[int32]struct {
	name string
	kind errKind
}{
	// The data: a value of a row ClickHouse cannot parse, convert or store, or a row a table
	// constraint (or a materialized view's throwIf) refuses.
	6:   {"CANNOT_PARSE_TEXT", errRejected},
	25:  {"CANNOT_PARSE_ESCAPE_SEQUENCE", errRejected},
	26:  {"CANNOT_PARSE_QUOTED_STRING", errRejected},
	27:  {"CANNOT_PARSE_INPUT_ASSERTION_FAILED", errRejected},
	38:  {"CANNOT_PARSE_DATE", errRejected},
	41:  {"CANNOT_PARSE_DATETIME", errRejected},
	43:  {"ILLEGAL_TYPE_OF_ARGUMENT", errRejected},
	53:  {"TYPE_MISMATCH", errRejected},
	69:  {"ARGUMENT_OUT_OF_BOUND", errRejected},
	70:  {"CANNOT_CONVERT_TYPE", errRejected},
	72:  {"CANNOT_PARSE_NUMBER", errRejected},
	117: {"INCORRECT_DATA", errRejected},
	131: {"TOO_LARGE_STRING_SIZE", errRejected},
	190: {"SIZES_OF_ARRAYS_DONT_MATCH", errRejected},
	321: {"VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE", errRejected},
	349: {"CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN", errRejected},
	376: {"CANNOT_PARSE_UUID", errRejected},
	395: {"FUNCTION_THROW_IF_VALUE_IS_NON_ZERO", errRejected},
	407: {"DECIMAL_OVERFLOW", errRejected},
	441: {"CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", errRejected},
	467: {"CANNOT_PARSE_BOOL", errRejected},
	469: {"VIOLATED_CONSTRAINT", errRejected},
	675: {"CANNOT_PARSE_IPV4", errRejected},
	676: {"CANNOT_PARSE_IPV6", errRejected},
	691: {"UNKNOWN_ELEMENT_OF_ENUM", errRejected},

	// The server, its load and the network: gone by the next attempt or the one after.
	3:    {"UNEXPECTED_END_OF_FILE", errTransient},    // the body was cut off in transit
	32:   {"ATTEMPT_TO_READ_AFTER_EOF", errTransient}, // ditto
	33:   {"CANNOT_READ_ALL_DATA", errTransient},      // ditto
	159:  {"TIMEOUT_EXCEEDED", errTransient},
	173:  {"CANNOT_ALLOCATE_MEMORY", errTransient},
	202:  {"TOO_MANY_SIMULTANEOUS_QUERIES", errTransient},
	203:  {"NO_FREE_CONNECTION", errTransient},
	209:  {"SOCKET_TIMEOUT", errTransient},
	210:  {"NETWORK_ERROR", errTransient},
	236:  {"ABORTED", errTransient}, // server shutting down
	241:  {"MEMORY_LIMIT_EXCEEDED", errTransient},
	242:  {"TABLE_IS_READ_ONLY", errTransient}, // e.g. a replica lost its Keeper session
	252:  {"TOO_MANY_PARTS", errTransient},     // merges catch up
	285:  {"TOO_FEW_LIVE_REPLICAS", errTransient},
	319:  {"UNKNOWN_STATUS_OF_INSERT", errTransient}, // retry with the same token: deduplicated if it landed
	394:  {"QUERY_WAS_CANCELLED", errTransient},      // server shutting down
	425:  {"SYSTEM_ERROR", errTransient},
	439:  {"CANNOT_SCHEDULE_TASK", errTransient},
	999:  {"KEEPER_EXCEPTION", errTransient},
	1000: {"POCO_EXCEPTION", errTransient},

	// The schema, the grants, the settings: every batch fails alike, so no row is to blame.
	// Retried (and reported as a stall) until an operator fixes them.
	16:  {"NO_SUCH_COLUMN_IN_TABLE", errTransient},
	36:  {"BAD_ARGUMENTS", errTransient},
	60:  {"UNKNOWN_TABLE", errTransient},
	81:  {"UNKNOWN_DATABASE", errTransient},
	115: {"UNKNOWN_SETTING", errTransient},
	164: {"READONLY", errTransient},
	497: {"ACCESS_DENIED", errTransient},
	516: {"AUTHENTICATION_FAILED", errTransient},
}

// codeInText finds ClickHouse's code in an error's text: "Code: 469. DB::Exception: ..." in an
// HTTP response body, "code: 469, message: ..." from clickhouse-go.
var codeInText = regexp.MustCompile(`(?i)\bcode: (\d+)[.,]`)

// chCode returns the ClickHouse error code in err, or 0 for errors ClickHouse did not raise
// (network, timeouts, the client's own).
func chCode(err error) int32 {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code
	}
	if m := codeInText.FindStringSubmatch(err.Error()); m != nil {
		if c, perr := strconv.ParseInt(m[1], 10, 32); perr == nil {
			return int32(c)
		}
	}
	return 0
}

// classify says whether err is worth isolating rows for. Errors without a code (refused or
// reset connections, timeouts, a cancelled context) are transient.
func classify(err error) errKind {
	if err == nil {
		return errTransient
	}
	return chCodes[chCode(err)].kind
}

// describeCode names err's ClickHouse code for logs and dead letters: "Code: 469
// (VIOLATED_CONSTRAINT)".
func describeCode(err error) string {
	c := chCode(err)
	if c == 0 {
		return "no ClickHouse code"
	}
	if n := chCodes[c].name; n != "" {
		return fmt.Sprintf("Code: %d (%s)", c, n)
	}
	return fmt.Sprintf("Code: %d", c)
}
