package layoutdoc

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sample = "# x\n\n<!-- layout:hdr -->\n| offset | size | field | meaning |\n| ---: | ---: | --- | --- |\n" +
	"| 0 | 4 | `magic` | m |\n| 8 | 8 | size | s |\n| 64 | - | `data` | tail |\n| 128 | 64 × n | toc | t |\n<!-- /layout -->\n" +
	"| 1 | 1 | outside | ignored |\n<!-- layout:two -->\n| 0 | 8 | `seq` | |\n<!-- /layout -->\n"

func write(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParse(t *testing.T) {
	got, err := Parse(write(t, sample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Field{
		"hdr": {{"magic", 0, 4}, {"size", 8, 8}, {"data", 64, -1}, {"toc", 128, -1}},
		"two": {{"seq", 0, 8}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse = %v, want %v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, doc := range []string{
		"<!-- layout:a -->\n| 0 | 4 | x |\n",                                         // not closed
		"<!-- layout:a -->\n<!-- /layout -->\n<!-- layout:a -->\n<!-- /layout -->\n", // twice
		"<!-- layout: -->\n<!-- /layout -->\n",                                       // no name
		"<!-- layout:a -->\n<!-- layout:b -->\n<!-- /layout -->\n",                   // nested
	} {
		if _, err := Parse(write(t, doc)); err == nil {
			t.Errorf("Parse(%q) accepted", doc)
		}
	}
}

func TestDiff(t *testing.T) {
	doc := []Field{{"a", 0, 4}, {"b", 4, 4}, {"c", 8, 8}}
	if d := Diff(doc, doc); d != nil {
		t.Fatalf("Diff(same) = %v", d)
	}
	d := Diff(doc, []Field{{"a", 0, 4}, {"b", 8, 4}, {"z", 16, 8}})
	if len(d) != 3 || !strings.Contains(d[0], "b at 4") || !strings.Contains(d[1], "lacks z") || !strings.Contains(d[2], "has c") {
		t.Fatalf("Diff = %q", d)
	}
}
