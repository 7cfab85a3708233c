// Package layoutdoc reads the byte-layout tables of docs/ so that each
// package's layout test can hold the documentation to the code.
//
// A layout table sits between two HTML comments and has the offset, the
// size and the field name in its first three columns:
//
//	<!-- layout:header -->
//	| offset | size | field | meaning |
//	| --- | --- | --- | --- |
//	| 0 | 4 | `magic` | ... |
//	| 64 | - | `data` | variable-length tail |
//	<!-- /layout -->
//
// Rows whose first column is not a number (the heading and the separator)
// are skipped. A size that is not a number ("-", "—", "64 × count") is a
// variable-length field, Size -1. Backticks around the name are dropped.
package layoutdoc

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Field is one row of a layout table.
type Field struct {
	Name   string
	Offset int
	Size   int // -1: variable length
}

const (
	openMark  = "<!-- layout:"
	closeMark = "<!-- /layout -->"
)

// Parse returns every layout table in the Markdown file at path, by name.
func Parse(path string) (map[string][]Field, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]Field{}
	cur := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, openMark):
			name := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, openMark), "-->"))
			if name == "" {
				return nil, fmt.Errorf("%s:%d: layout table without a name", path, n)
			}
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("%s:%d: layout table %q twice", path, n, name)
			}
			if cur != "" {
				return nil, fmt.Errorf("%s:%d: layout table %q opened inside %q", path, n, name, cur)
			}
			cur = name
			out[name] = nil
		case line == closeMark:
			cur = ""
		case cur != "" && strings.HasPrefix(line, "|"):
			cols := strings.Split(strings.Trim(line, "|"), "|")
			if len(cols) < 3 {
				continue
			}
			off, err := strconv.Atoi(strings.TrimSpace(cols[0]))
			if err != nil {
				continue // heading or separator
			}
			size, err := strconv.Atoi(strings.TrimSpace(cols[1]))
			if err != nil {
				size = -1
			}
			name := strings.Trim(strings.TrimSpace(cols[2]), "`")
			out[cur] = append(out[cur], Field{Name: name, Offset: off, Size: size})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != "" {
		return nil, fmt.Errorf("%s: layout table %q not closed", path, cur)
	}
	return out, nil
}

// Check fails t unless the table named table in the doc at docPath lists
// exactly the fields in want, at the same offsets and sizes. Take want's
// offsets from the code's constants or unsafe.Offsetof, never from
// literals, so the test ties the doc to the code.
func Check(t testing.TB, docPath, table string, want []Field) {
	t.Helper()
	tables, err := Parse(docPath)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := tables[table]
	if !ok {
		t.Fatalf("%s has no layout table %q", docPath, table)
	}
	for _, msg := range Diff(got, want) {
		t.Errorf("%s table %s: %s", docPath, table, msg)
	}
}

// Diff lists the differences between a documented table (doc) and the
// code's fields (code), one message each; nil when they agree.
func Diff(doc, code []Field) []string {
	var out []string
	byName := map[string]Field{}
	for _, f := range doc {
		byName[f.Name] = f
	}
	seen := map[string]bool{}
	for _, c := range code {
		seen[c.Name] = true
		d, ok := byName[c.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("lacks %s (code: offset %d, %d bytes)", c.Name, c.Offset, c.Size))
		case d != c:
			out = append(out, fmt.Sprintf("%s at %d (%d bytes), code has %d (%d bytes)", c.Name, d.Offset, d.Size, c.Offset, c.Size))
		}
	}
	for _, d := range doc {
		if !seen[d.Name] {
			out = append(out, fmt.Sprintf("has %s, the code does not", d.Name))
		}
	}
	return out
}
