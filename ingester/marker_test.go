package ingester

import "testing"

// TestMarkers: claim and done markers read back as written; what franz-go or an older
// ingester left in the commit metadata (the member ID, nothing) is no marker.
func TestMarkers(t *testing.T) {
	id := [16]byte{0xfb, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14} // '-' and '_' in base64url
	if m, ok := parseMarker(claimMarker(id, 100, 163)); !ok || !m.claim || m.first != 100 || m.last != 163 || m.topicID != topicIDString(id) {
		t.Errorf("claim marker %q read as %+v, %v", claimMarker(id, 100, 163), m, ok)
	}
	if m, ok := parseMarker(doneMarker(id)); !ok || m.claim || m.topicID != topicIDString(id) {
		t.Errorf("done marker %q read as %+v, %v", doneMarker(id), m, ok)
	}
	for _, s := range []string{"", "kgo-1f713149-07c3-49ca-a80f-c34fae5cd59e", "pl1 ", "pl1 x 5", "pl1 x 9-3", "pl1 x 1-2-3"} {
		if m, ok := parseMarker(s); ok {
			t.Errorf("%q read as marker %+v", s, m)
		}
	}
}
