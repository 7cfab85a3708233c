package procfs

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"
)

func TestSelf(t *testing.T) {
	// The state is the main thread's: running, or sleeping while another
	// thread runs this test (seen under -race on a loaded machine).
	start, state, err := Stat(os.Getpid())
	if err != nil || start == 0 || (state != 'R' && state != 'S') {
		t.Fatalf("Stat(self) = %d, %c, %v", start, state, err)
	}
	if !Alive(os.Getpid(), start) {
		t.Fatal("self not alive")
	}
	if Alive(os.Getpid(), start+1) {
		t.Fatal("self alive with another start time (a reused pid)")
	}
	if Alive(0, 0) || Alive(-1, 0) {
		t.Fatal("pid <= 0 alive")
	}
}

func TestDeadAndZombie(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	pid := cmd.Process.Pid
	start, err := StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !Alive(pid, start) {
		t.Fatal("running child not alive")
	}
	_ = cmd.Process.Kill()
	// Not reaped yet: a zombie. Wait for the state, not for a time.
	for {
		_, st, err := Stat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if st == 'Z' {
			break
		}
	}
	if Alive(pid, start) {
		t.Fatal("zombie counted alive")
	}
	_ = cmd.Wait()
	if _, _, err := Stat(pid); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reaped child: Stat err = %v, want ErrNotExist", err)
	}
}

func TestParseStat(t *testing.T) {
	line := []byte("42 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20")
	start, state, err := parseStat(42, line)
	if err != nil || start != 777 || state != 'S' {
		t.Fatalf("parseStat = %d %c %v", start, state, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 nan 19"} {
		if _, _, err := parseStat(1, []byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("parseStat(%q) err = %v", bad, err)
		}
	}
}

func TestReadIntLoadAvg(t *testing.T) {
	if v, err := ReadInt("/proc/sys/kernel/pid_max"); err != nil || v <= 0 {
		t.Fatalf("pid_max = %d, %v", v, err)
	}
	if s, err := LoadAvg(); err != nil || s == "" {
		t.Fatalf("LoadAvg = %q, %v", s, err)
	}
}
