package l7

// Error is why an L7 parse stopped early. Its value is the reason name stored in the parse_error
// column (schema.ParseErrors, codes 64 and up); being a string constant, returning one costs
// no allocation and errors.Is compares it by value.
type Error string

// The reasons, one per schema.ParseErrors name from code 64.
const (
	// ErrDNSTruncated: the snippet or the TCP length prefix ends before the header or the first
	// question does.
	ErrDNSTruncated Error = "dns_truncated"
	// ErrDNSBadName: the first question's name breaks the rules (reserved label type, pointer that
	// does not point backwards, too many pointers, longer than 255 bytes on the wire).
	ErrDNSBadName Error = "dns_bad_name"
	// ErrTLSTruncated: the snippet ends before the ClientHello's server name (or its end) is reached.
	ErrTLSTruncated Error = "tls_truncated"
	// ErrTLSBadRecord: not a TLS handshake record, or a length inside it contradicts another.
	ErrTLSBadRecord Error = "tls_bad_record"
	// ErrHTTPTruncated: the snippet ends before the request line or the header block does.
	ErrHTTPTruncated Error = "http_truncated"
	// ErrHTTPBadRequest: the payload does not start with a method token and a space.
	ErrHTTPBadRequest Error = "http_bad_request"
)

func (e Error) Error() string { return "l7: " + string(e) }

// Reason is the parse_error column value.
func (e Error) Reason() string { return string(e) }

// QUIC reasons.
const (
	// ErrQUICTruncated: the snippet ends before an Initial packet's header and sample.
	ErrQUICTruncated Error = "quic_truncated"
	// ErrQUICBadPacket: not a QUIC v1/v2 Initial, a length beyond the datagram, or a whole packet
	// that fails authentication with the Initial keys.
	ErrQUICBadPacket Error = "quic_bad_packet"
)
