package main

import (
	"os"
	"testing"
)

// TestMain runs the example's child role when the example started this
// test binary as its child.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) != "" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

func TestExample(t *testing.T) {
	if code := run(); code != 0 {
		t.Fatalf("example exited %d", code)
	}
}
