package bridge

import (
	"strings"
	"testing"
)

// FuzzFlowReport: no report from the network makes the parser panic, and
// what it accepts has non-zero limits and a short id.
func FuzzFlowReport(f *testing.F) {
	f.Add("abcd 1 100 4096 67108864 0")
	f.Add("abcd 18446744073709551615 1 1 1 1")
	f.Add("  x  1 2 3 4 5 6")
	f.Fuzz(func(t *testing.T, s string) {
		id, c, ok := parseFlowReport(s)
		if ok && (id == "" || len(id) > 64 || strings.ContainsAny(id, " \t\n") || c.maxFrames == 0 || c.maxBytes == 0) {
			t.Fatalf("accepted %q: %q %+v", s, id, c)
		}
	})
}
