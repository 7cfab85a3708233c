package fourcc

import "testing"

func TestMakeString(t *testing.T) {
	if got := Make("SPSC"); got != 'S'|'P'<<8|'S'<<16|'C'<<24 {
		t.Fatalf("Make(SPSC) = %#x", got)
	}
	if got := Make("AB"); got != 'A'|'B'<<8|' '<<16|' '<<24 {
		t.Fatalf("Make(AB) = %#x", got)
	}
	for _, s := range []string{"SPSC", "RING", "SLAB", "AB", "x"} {
		if got := String(Make(s)); got != s {
			t.Fatalf("String(Make(%q)) = %q", s, got)
		}
	}
	if got := String(' ' | 'A'<<8 | 'B'<<16 | 'C'<<24); got != "0x43424120" {
		t.Fatalf("String(leading space) = %q", got)
	}
	if got := String(0x01020304); got != "0x01020304" {
		t.Fatalf("String(non-printable) = %q", got)
	}
}

func TestMakePanics(t *testing.T) {
	for _, bad := range []string{"", "TOOLONG", "a\x00"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Make(%q) did not panic", bad)
				}
			}()
			Make(bad)
		}()
	}
}
