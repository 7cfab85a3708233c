package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit"
	"github.com/shmkit/shmkit/internal/proctest"
)

// childInBridge runs an in bridge (core NATS or JetStream) into the shmkit
// channel BRIDGE_CHANNEL, joined as a publisher with JoinShmkit, until
// SIGTERM, then writes its Stats as JSON. Environment: BRIDGE_URL,
// BRIDGE_STREAM, BRIDGE_CHANNEL, BRIDGE_STATE, BRIDGE_STATS.
func childInBridge() int {
	ch, err := shmkit.Open(os.Getenv("BRIDGE_CHANNEL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer ch.Close()
	_, sink, leave, err := JoinShmkit(ch, In)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer leave()
	cfg := Config{
		URLs: []string{os.Getenv("BRIDGE_URL")}, Channel: "kill", Direction: In,
		Stream: os.Getenv("BRIDGE_STREAM"), Durable: "host2", AckWait: time.Second,
		StateFile: os.Getenv("BRIDGE_STATE"), MaxPending: 1 << 16,
	}
	b, err := New(cfg, nil, sink)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	runErr := b.Run(ctx)
	_ = b.Close()
	js, _ := json.Marshal(b.Stats())
	if err := os.WriteFile(os.Getenv("BRIDGE_STATS"), js, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, runErr)
		return 1
	}
	return 0
}

type childRun struct {
	cmd   *exec.Cmd
	stats string
}

// startChannelChild starts in bridge child n publishing into the shmkit
// channel name, with the state file dir/state (none when noState: the in
// side then publishes each frame with one PublishBatch).
func startChannelChild(t *testing.T, dir, url, stream string, n int, name string, noState ...bool) *childRun {
	t.Helper()
	stats := fmt.Sprintf("%s/stats%d.json", dir, n)
	state := dir + "/state"
	if len(noState) > 0 && noState[0] {
		state = ""
	}
	cmd := proctest.Command(t, "inbridge", "BRIDGE_URL="+url, "BRIDGE_STREAM="+stream,
		"BRIDGE_CHANNEL="+name, "BRIDGE_STATE="+state, "BRIDGE_STATS="+stats)
	proctest.Start(t, cmd)
	return &childRun{cmd: cmd, stats: stats}
}

func (c *childRun) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// stop ends the child with SIGTERM and returns its Stats.
func (c *childRun) stop(t *testing.T) Stats {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("in bridge child: %v", err)
	}
	var s Stats
	b, err := os.ReadFile(c.stats)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}
