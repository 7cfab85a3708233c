package reexec

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	Register("exit7", func() int {
		if os.Getenv("REEXEC_TEST") != "hello" {
			return 1
		}
		return 7
	})
	if code, ok := Main(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestCommandRunsTheChild(t *testing.T) {
	if Name() != "" {
		t.Fatalf("the test process is child %q", Name())
	}
	cmd, err := Command("exit7", []string{"-test.run=^$"}, "REEXEC_TEST=hello")
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("child: %v, want exit status 7", err)
	}
}

func TestUnknownChild(t *testing.T) {
	cmd, err := Command("nobody", []string{"-test.run=^$"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `no child "nobody" (have exit7)`) {
		t.Fatalf("unknown child: %v, %q", err, out)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a second Register of one name did not panic")
		}
	}()
	Register("exit7", func() int { return 0 })
}
