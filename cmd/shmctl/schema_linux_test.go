package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// docSchemas reads the JSON key table of docs/shmctl.md: command -> keys
// (a trailing "?" marks an optional key).
func docSchemas(t *testing.T) map[string][]string {
	b, err := os.ReadFile("../../docs/shmctl.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, "<!-- json-schema -->"), strings.Index(s, "<!-- /json-schema -->")
	if i < 0 || j < i {
		t.Fatal("docs/shmctl.md has no json-schema table")
	}
	out := map[string][]string{}
	for _, line := range strings.Split(s[i:j], "\n") {
		f := strings.Split(line, "|")
		if len(f) < 4 || !strings.HasPrefix(strings.TrimSpace(f[1]), "`") {
			continue
		}
		cmd := strings.Trim(strings.TrimSpace(f[1]), "`")
		keys := strings.TrimSpace(f[2])
		keys = strings.TrimPrefix(keys, "[] ")
		keys = strings.TrimPrefix(keys, "one per line: ")
		var ks []string
		for _, k := range strings.Split(keys, ",") {
			ks = append(ks, strings.TrimSpace(k))
		}
		out[cmd] = ks
	}
	return out
}

// checkKeys compares an object's keys with the documented ones.
func checkKeys(t *testing.T, cmd string, doc []string, obj map[string]any) {
	t.Helper()
	var have []string
	for k := range obj {
		have = append(have, k)
	}
	sort.Strings(have)
	for _, k := range have {
		if !slices.Contains(doc, k) && !slices.Contains(doc, k+"?") {
			t.Errorf("%s: key %q is not documented in docs/shmctl.md (documented: %v)", cmd, k, doc)
		}
	}
	for _, k := range doc {
		if !strings.HasSuffix(k, "?") && obj[k] == nil {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s: documented key %q missing (have %v)", cmd, k, have)
			}
		}
	}
}

// TestJSONSchema runs every command that prints JSON and checks its keys
// against the table in docs/shmctl.md.
func TestJSONSchema(t *testing.T) {
	doc := docSchemas(t)
	name := fmt.Sprintf("cli.%d.schema", os.Getpid())
	tapChannel(t, name)
	raw := fmt.Sprintf("cli.%d.schemaraw", os.Getpid())
	ch := chanName(t, "schema")

	one := func(label string, args ...string) map[string]any {
		t.Helper()
		out, errOut, _ := shmctl(t, args...)
		var m map[string]any
		if err := json.Unmarshal([]byte(firstLine(out, label)), &m); err != nil {
			t.Fatalf("%s: %v\n%s%s", label, err, out, errOut)
		}
		return m
	}
	cases := []struct {
		doc  string
		args []string
	}{
		{"create NAME --size", []string{"create", raw, "--size", "64KiB", "-o", "json"}},
		{"create --channel", []string{"create", "--channel", ch, "-o", "json"}},
		{"inspect", []string{"inspect", name, "-o", "json"}},
		{"stat", []string{"stat", name, "--interval", "20ms", "-o", "json"}},
		{"watch", []string{"watch", name, "--interval", "20ms", "--count", "1", "-o", "json"}},
		{"tap", []string{"tap", name, "-n", "1", "-o", "json"}},
		{"pub", []string{"pub", ch, "x", "-o", "json"}},
		{"rm", []string{"rm", raw, "-o", "json"}},
		{"rm", []string{"rm", raw, "-o", "json"}}, // now an error object
		{"gc", []string{"gc", "--dry-run", "--match", "cli.nothing", "-o", "json"}},
		{"doctor", []string{"doctor", "-o", "json"}},
	}
	for _, c := range cases {
		keys := doc[c.doc]
		if c.doc == "watch" {
			keys = doc["stat"]
		}
		if len(keys) == 0 {
			t.Fatalf("no keys documented for %q", c.doc)
		}
		checkKeys(t, strings.Join(c.args, " "), keys, one(c.doc, c.args...))
	}
	// ls: an array of segment objects.
	out := mustShmctl(t, "ls", "-o", "json")
	var ls []map[string]any
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) == 0 {
		t.Fatalf("ls -o json: %v", err)
	}
	for _, e := range ls {
		if e["name"] == name {
			checkKeys(t, "ls", doc["ls"], e)
			if e["mode"] != "0600" {
				t.Errorf("ls mode %v, want \"0600\"", e["mode"])
			}
			regs, _ := e["regions"].([]any)
			if len(regs) == 0 || regs[0].(map[string]any)["kind"] != "CHAN" {
				t.Errorf("ls regions %v: want kinds by name", regs)
			}
		}
	}
	// sub: one object per message.
	sub := startShmctl(t, "sub", ch, "-o", "json", "--count", "1", "--timeout", "60s")
	mustShmctl(t, "pub", ch, "y", "--wait-subscribers", "1")
	var m map[string]any
	if err := json.Unmarshal([]byte(firstLine(sub.wait(t), "sub")), &m); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "sub", doc["sub"], m)
}

// firstLine returns the first JSON document of out: the first line for
// line-per-object output, all of it for an indented object.
func firstLine(out, label string) string {
	if strings.HasPrefix(out, "{\n") || strings.HasPrefix(out, "[") {
		return out
	}
	line, _, _ := strings.Cut(out, "\n")
	return line
}

// TestCompletionEveryCommand: every flag whose values form a set completes
// them, every flag naming a file or directory completes paths, and the
// commands that take a channel complete channel names.
func TestCompletionEveryCommand(t *testing.T) {
	enum := map[string]bool{"backend": true, "output": true, "pattern": true, "policy": true, "direction": true,
		"transports": true, "wait": true, "workloads": true, "progress": true}
	files := map[string]bool{"file": true, "pcapng": true, "dir": true, "state": true, "tls-cert": true, "tls-key": true,
		"tls-ca": true, "creds": true, "plot": true, "from": true}
	for _, c := range rootCmd.Commands() {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			_, hasFunc := c.GetFlagCompletionFunc(f.Name)
			_, hasFile := f.Annotations[cobra.BashCompFilenameExt]
			_, hasDir := f.Annotations[cobra.BashCompSubdirsInDir]
			switch {
			case enum[f.Name] && !hasFunc && !(c.Name() == "record" && f.Name == "output"):
				t.Errorf("%s --%s: no value completion", c.Name(), f.Name)
			case files[f.Name] && !hasFile && !hasDir:
				t.Errorf("%s --%s: does not complete paths", c.Name(), f.Name)
			case c.Name() == "record" && f.Name == "output" && !hasFile:
				t.Errorf("record -o: does not complete file names")
			}
		})
	}
	name := fmt.Sprintf("cli.%d.compl", os.Getpid())
	tapChannel(t, name)
	for _, cmd := range [][]string{{"pub"}, {"sub"}, {"record"}, {"stat"}, {"watch"}, {"tap"}, {"bridge"}, {"replay", "x.pcapng"}} {
		out := mustShmctl(t, append(append([]string{"__complete"}, cmd...), name[:len(name)-2])...)
		if !strings.Contains(out, name+"\n") {
			t.Errorf("%v does not complete the channel %s:\n%s", cmd, name, out)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bridge", name, "--direction", ""}, "both"},
		{[]string{"create", "--channel", "x", "--pattern", ""}, "workqueue"},
		{[]string{"create", "--channel", "x", "--policy", ""}, "drop-oldest"},
		{[]string{"sub", name, "-o", ""}, "json"},
		{[]string{"gc", "--backend", ""}, "sysv"},
	} {
		if out := mustShmctl(t, append([]string{"__complete"}, c.args...)...); !strings.Contains(out, c.want+"\n") {
			t.Errorf("__complete %v: no %q:\n%s", c.args, c.want, out)
		}
	}
}
