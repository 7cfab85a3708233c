package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"
)

// Families of rows, in table order. Result.Family carries one of them.
const (
	FamilyLimit   = "limit"   // the machine's own limits, probed in the same run
	FamilyHarness = "harness" // the harness alone, over a no-op transport
	FamilyShmkit  = "shmkit"  // shmkit's rings
	FamilyOS      = "os"      // the operating system's mechanisms, the baselines
	FamilyRef     = "ref"     // in-process references (a Go channel)
)

// familyOrder is the table order of the families.
func familyOrder(f string) int {
	switch f {
	case FamilyLimit:
		return 0
	case FamilyHarness:
		return 1
	case FamilyShmkit:
		return 2
	case FamilyOS:
		return 3
	case FamilyRef:
		return 4
	}
	return 5
}

// A transport is one way to move messages between the two sides of a cell.
// Each lives in a file of its own and registers itself from init with
// register; adding a transport is adding such a file.
//
// The parent calls open for each cell; the link it returns carries the
// parent's ends and either the files a child process needs (its
// descriptors 3, 4, ... in order) or, for an in-process transport, the
// child's ends themselves (the child role then runs on a goroutine). A
// child process calls attach with the same cell, as open left it (open may
// record in cell.Args what the child needs: paths, ids, offsets).
type transport interface {
	// name is the row's name ("spsc", "pipe"); rows of a transport with
	// waiting modes are named name/mode.
	name() string
	family() string
	// waits reports whether the transport runs once per waiting mode.
	waits() bool
	open(c *cell) (*link, error)
	attach(c *cell, files []*os.File) (ends, error)
}

// streamOnly reports whether transport t has no ping-pong rows (it
// implements streamOnly() and says so).
func streamOnly(t transport) bool {
	so, ok := t.(interface{ streamOnly() bool })
	return ok && so.streamOnly()
}

// ends are one side's ends of a link: out sends, in receives. Stream cells
// use the child's out and the parent's in; ping-pong cells all four.
type ends struct {
	out outEnd
	in  inEnd
}

// link is the parent's side of a cell's transport.
type link struct {
	ends
	// files become the child's descriptors 3, 4, ...; the parent closes
	// them once the child has started.
	files []*os.File
	// child, when set, are the child's ends of an in-process transport: no
	// process is started.
	child *ends
	// abort makes blocked calls of the parent (and of an in-process child)
	// return; it may run concurrently with them. Nil: nothing to do.
	abort func()
	// release frees what the link holds, after the child is gone.
	release func() error
}

func (l *link) doAbort() {
	if l.abort != nil {
		l.abort()
	}
}

func (l *link) doRelease() error {
	if l.release != nil {
		return l.release()
	}
	return nil
}

// transports is the registry, filled by register from init functions only.
var transports = map[string]transport{}

// register adds t to the registry; a duplicate name is a programming error.
func register(t transport) {
	if _, dup := transports[t.name()]; dup {
		panic("bench: transport " + t.name() + " registered twice")
	}
	transports[t.name()] = t
}

// Transports returns the names of every transport, in table order: by
// family, then by name.
func Transports() []string {
	var names []string
	for n := range transports {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := transports[names[i]], transports[names[j]]
		if fa, fb := familyOrder(a.family()), familyOrder(b.family()); fa != fb {
			return fa < fb
		}
		return rowOrder(names[i]) < rowOrder(names[j])
	})
	return names
}

// rowOrder keeps the historical order of the rows inside a family.
func rowOrder(name string) string {
	order := []string{"noop", "spsc", "spsc-zc", "spsc-batch", "bytering", "bytering-zc", "mpmc",
		"pipe", "fifo", "unix", "seqpacket", "tcp", "posixmq", "sysvmsg", "chan"}
	if i := slices.Index(order, name); i >= 0 {
		return fmt.Sprintf("%03d", i)
	}
	return "999" + name
}

// cell is one cell of a run, as the parent plans it and the child receives
// it (JSON in the environment variable envCell).
type cell struct {
	Transport string        `json:"transport"`
	Wait      string        `json:"wait,omitempty"`
	Workload  string        `json:"workload"`
	Size      int           `json:"size"`
	Warmup    time.Duration `json:"warmup"`
	Duration  time.Duration `json:"duration"`
	MinMsgs   int           `json:"min_msgs"`
	// Verify checksums every message (the verification cell) instead of
	// one in SampleEvery.
	Verify bool `json:"verify,omitempty"`
	// Rate, when positive, paces a stream at that many messages per second
	// and measures one-way latency from each message's intended send time.
	Rate float64 `json:"rate,omitempty"`
	// Senders and Receivers are the goroutines of a scaling cell: senders
	// in the child, receivers in the parent.
	Senders   int           `json:"senders,omitempty"`
	Receivers int           `json:"receivers,omitempty"`
	CPU       int           `json:"cpu"`             // child's CPU, -1 for none
	Files     int           `json:"files,omitempty"` // descriptors passed to the child
	Timeout   time.Duration `json:"timeout"`
	// Args is what a transport's open records for its attach.
	Args json.RawMessage `json:"args,omitempty"`
	// child is the reexec name of the child process (tests start others).
	child string
}

func (c *cell) pingpong() bool { return c.Workload == PingPong }

// row is the name of the cell's row.
func (c *cell) row() string {
	if c.Wait != "" {
		return c.Transport + "/" + c.Wait
	}
	return c.Transport
}

// setArgs records v (JSON) for the child's attach.
func (c *cell) setArgs(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Args = b
	return nil
}

// args decodes what open recorded.
func (c *cell) args(v any) error {
	if err := json.Unmarshal(c.Args, v); err != nil {
		return fmt.Errorf("%w: %s: bad transport arguments: %v", ErrConfig, c.Transport, err)
	}
	return nil
}

// unavailable builds an n/a error naming the limit.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}
