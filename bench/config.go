package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/shmkit/shmkit/futex"
)

// Workload names, as they appear in results.
const (
	Stream   = "stream"
	PingPong = "pingpong"
)

// Transport kinds. The shmkit rings run once per waiting mode and appear
// in results as "spsc/spin", "mpmc/park", ...
var (
	// RingKinds are shmkit's rings, each run in every waiting mode asked for.
	RingKinds = []string{"spsc", "bytering", "mpmc"}
	// OSKinds are the operating system's mechanisms, the baselines.
	OSKinds = []string{"pipe", "fifo", "unix", "seqpacket", "tcp", "posixmq", "sysvmsg"}
	// RefKinds are in-process references: a Go channel between goroutines.
	RefKinds = []string{"chan"}
)

// Limit probes, as they appear in results' Transport field.
const (
	LimitAtomic  = "limit/atomic"  // cross-core atomic ping-pong between processes
	LimitFutex   = "limit/futex"   // futex wake/wait round trip between processes
	LimitSyscall = "limit/syscall" // getppid
	LimitMemcpy  = "limit/memcpy"  // copy bandwidth at each size, one thread
)

// DefaultSizes is the quick default: 64 B, 4 KiB, 64 KiB and 1 MiB.
var DefaultSizes = []int{64, 4 << 10, 64 << 10, 1 << 20}

// AllWaits are the waiting modes the rings are measured in by default.
var AllWaits = []futex.Strategy{futex.BusySpin, futex.Park, futex.SpinThenPark}

// Defaults of the quick run: about 40 s on a 2-core machine.
const (
	DefaultDuration = 150 * time.Millisecond
	DefaultWarmup   = 40 * time.Millisecond
	DefaultMinMsgs  = 50
)

// Config says what a run measures. The zero value of a field means its
// default (see DefaultConfig).
type Config struct {
	Sizes      []int            // message sizes in bytes, MinSize..MaxSize
	Transports []string         // kinds from RingKinds, OSKinds, RefKinds
	Waits      []futex.Strategy // waiting modes of the rings
	Workloads  []string         // Stream and/or PingPong
	Duration   time.Duration    // measured time of each cell
	Warmup     time.Duration    // verified but unmeasured time before it
	MinMsgs    int              // measured messages (round trips) per cell at least
	// CPUs pins the measuring thread of the parent to CPUs[0] and the
	// child's to CPUs[1] (sched_setaffinity). Empty: no pinning, except the
	// atomic probe, which pins to two distinct CPUs when it can.
	CPUs []int
	// NoLimits skips the probes of the machine's limits (ratios "vs limit"
	// are then absent).
	NoLimits bool
	// Progress, when set, is called before each cell and once at the end
	// (done == total).
	Progress func(done, total int, cell string)
}

// DefaultConfig returns the quick default: every transport, every waiting
// mode, both workloads, DefaultSizes.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

// AllKinds returns every transport kind in table order.
func AllKinds() []string {
	return slices.Concat(RingKinds, OSKinds, RefKinds)
}

func (c Config) withDefaults() Config {
	if len(c.Sizes) == 0 {
		c.Sizes = slices.Clone(DefaultSizes)
	}
	if len(c.Transports) == 0 {
		c.Transports = AllKinds()
	}
	if len(c.Waits) == 0 {
		c.Waits = slices.Clone(AllWaits)
	}
	if len(c.Workloads) == 0 {
		c.Workloads = []string{Stream, PingPong}
	}
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup <= 0 {
		c.Warmup = DefaultWarmup
	}
	if c.MinMsgs <= 0 {
		c.MinMsgs = DefaultMinMsgs
	}
	return c
}

// validate checks a config that withDefaults has filled in.
func (c Config) validate() error {
	for _, s := range c.Sizes {
		if s < MinSize || s > MaxSize {
			return fmt.Errorf("size %d not in [%d, %d]: %w", s, MinSize, MaxSize, ErrConfig)
		}
	}
	all := AllKinds()
	for _, t := range c.Transports {
		if !slices.Contains(all, t) {
			return fmt.Errorf("unknown transport %q (have %s): %w", t, strings.Join(all, ", "), ErrConfig)
		}
	}
	for _, w := range c.Workloads {
		if w != Stream && w != PingPong {
			return fmt.Errorf("unknown workload %q (want %s or %s): %w", w, Stream, PingPong, ErrConfig)
		}
	}
	for _, s := range c.Waits {
		switch s {
		case futex.BusySpin, futex.Park, futex.SpinThenPark, futex.Yield:
		default:
			return fmt.Errorf("unknown waiting mode %v: %w", s, ErrConfig)
		}
	}
	if len(c.CPUs) != 0 && len(c.CPUs) != 2 {
		return fmt.Errorf("CPU pinning takes two CPUs (parent, child), have %d: %w", len(c.CPUs), ErrConfig)
	}
	for _, cpu := range c.CPUs {
		if cpu < 0 || cpu >= 1024 {
			return fmt.Errorf("CPU %d out of range: %w", cpu, ErrConfig)
		}
	}
	return nil
}

// ParseSizes parses a comma-separated list of sizes such as
// "64,4KiB,64KiB,1MiB" (units as go-humanize reads them: B, KiB, KB, MiB...).
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := humanize.ParseBytes(f)
		if err != nil {
			return nil, fmt.Errorf("size %q: %v: %w", f, err, ErrConfig)
		}
		if n < MinSize || n > MaxSize {
			return nil, fmt.Errorf("size %q not in [%d, %d] bytes: %w", f, MinSize, MaxSize, ErrConfig)
		}
		out = append(out, int(n))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no sizes in %q: %w", s, ErrConfig)
	}
	return out, nil
}

// ParseWaits parses a comma-separated list of waiting modes (names as
// futex.ParseStrategy reads them: spin, park, spin-then-park, yield).
func ParseWaits(s string) ([]futex.Strategy, error) {
	var out []futex.Strategy
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		w, err := futex.ParseStrategy(f)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrConfig)
		}
		out = append(out, w)
	}
	return out, nil
}

// ParseCPUs parses "A,B" into the two CPUs of Config.CPUs; "" means none.
func ParseCPUs(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("CPU %q: want a CPU number: %w", f, ErrConfig)
		}
		out = append(out, n)
	}
	if len(out) != 2 {
		return nil, fmt.Errorf("--cpus takes two CPUs (parent,child), have %q: %w", s, ErrConfig)
	}
	return out, nil
}

// SizeName formats a size the way tables and benchmark names show it:
// 64B, 4KiB, 1MiB ("-" for 0, the probes without a message).
func SizeName(n int) string {
	switch {
	case n == 0:
		return "-"
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// EnvChild is the environment variable that makes a process the child of
// a benchmark cell; it holds the cell's description as JSON. See IsChild.
const EnvChild = "SHMKIT_BENCH_CHILD"
