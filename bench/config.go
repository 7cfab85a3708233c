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
	Stream   = "stream"   // the child produces, the parent consumes
	PingPong = "pingpong" // the parent sends, the child echoes
	// Verify is the untimed verification cell of a transport and size:
	// every message checksummed whole.
	Verify = "verify"
	// Scaling is an MPMC ring shared by several producer goroutines (in
	// the child) and several consumer goroutines (in the parent).
	Scaling = "scaling"
)

// Limit probes, as they appear in results' Transport field.
const (
	LimitAtomic  = "limit/atomic"  // cross-core atomic ping-pong between processes
	LimitFutex   = "limit/futex"   // futex wake/wait round trip between processes
	LimitSyscall = "limit/syscall" // getppid
	LimitMemcpy  = "limit/memcpy"  // copy bandwidth at each size, one thread
	// Harness is the row of the harness's own cost (the no-op transport).
	Harness = "harness/noop"
)

// DefaultSizes returns the quick default sizes: 64 B, 4 KiB, 64 KiB, 1 MiB.
func DefaultSizes() []int { return []int{64, 4 << 10, 64 << 10, 1 << 20} }

// DefaultWaits returns the waiting modes the rings are measured in by
// default.
func DefaultWaits() []futex.Strategy {
	return []futex.Strategy{futex.BusySpin, futex.Park, futex.SpinThenPark}
}

// DefaultScaling returns the producer (= consumer) counts of the scaling
// rows by default.
func DefaultScaling() []int { return []int{1, 2, 4, 8} }

// Defaults of the quick run: under a minute on a 2-core machine.
const (
	DefaultDuration = 80 * time.Millisecond
	DefaultWarmup   = 20 * time.Millisecond
	DefaultMinMsgs  = 50
	// DefaultVerifyMsgs is how many messages a verification cell moves.
	DefaultVerifyMsgs = 200
)

// Config says what a run measures. The zero value of a field means its
// default.
type Config struct {
	Sizes      []int            // message sizes in bytes, MinSize..MaxSize
	Transports []string         // names from Transports(); empty: all
	Waits      []futex.Strategy // waiting modes of the rings
	Workloads  []string         // Stream and/or PingPong (and Scaling)
	Duration   time.Duration    // measured time of each cell
	Warmup     time.Duration    // verified but unmeasured time before it
	MinMsgs    int              // measured messages (round trips) per cell at least
	// Rate, when positive, paces every stream cell at Rate messages per
	// second and reports the one-way latency of its messages, measured
	// from each message's intended send time (so a stalled sender's
	// backlog counts: no coordinated omission).
	Rate float64
	// Scaling lists the producer (= consumer) counts of the MPMC scaling
	// rows; empty: DefaultScaling. They run when Workloads includes
	// Scaling (the default) and Transports includes mpmc.
	Scaling []int
	// NoVerify skips the verification cells.
	NoVerify bool
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
// mode, every workload, DefaultSizes.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	if len(c.Sizes) == 0 {
		c.Sizes = DefaultSizes()
	}
	if len(c.Transports) == 0 {
		c.Transports = Transports()
	}
	if len(c.Waits) == 0 {
		c.Waits = DefaultWaits()
	}
	if len(c.Workloads) == 0 {
		c.Workloads = []string{Stream, PingPong, Scaling}
	}
	if len(c.Scaling) == 0 {
		c.Scaling = DefaultScaling()
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
			return fmt.Errorf("%w: size %d not in [%d, %d]", ErrConfig, s, MinSize, MaxSize)
		}
	}
	all := Transports()
	for _, t := range c.Transports {
		if !slices.Contains(all, t) {
			return fmt.Errorf("%w: unknown transport %q (have %s)", ErrConfig, t, strings.Join(all, ", "))
		}
	}
	for _, w := range c.Workloads {
		if w != Stream && w != PingPong && w != Scaling {
			return fmt.Errorf("%w: unknown workload %q (want %s, %s or %s)", ErrConfig, w, Stream, PingPong, Scaling)
		}
	}
	for _, s := range c.Waits {
		switch s {
		case futex.BusySpin, futex.Park, futex.SpinThenPark, futex.Yield:
		default:
			return fmt.Errorf("%w: unknown waiting mode %v", ErrConfig, s)
		}
	}
	for _, n := range c.Scaling {
		if n < 1 || n > 64 {
			return fmt.Errorf("%w: %d producers and consumers, want 1 to 64", ErrConfig, n)
		}
	}
	if c.Rate < 0 || c.Rate > 1e9 {
		return fmt.Errorf("%w: rate %g messages/s", ErrConfig, c.Rate)
	}
	if len(c.CPUs) != 0 && len(c.CPUs) != 2 {
		return fmt.Errorf("%w: CPU pinning takes two CPUs (parent, child), have %d", ErrConfig, len(c.CPUs))
	}
	for _, cpu := range c.CPUs {
		if cpu < 0 || cpu >= 1024 {
			return fmt.Errorf("%w: CPU %d out of range", ErrConfig, cpu)
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
			return nil, fmt.Errorf("%w: size %q: %v", ErrConfig, f, err)
		}
		if n < MinSize || n > MaxSize {
			return nil, fmt.Errorf("%w: size %q not in [%d, %d] bytes", ErrConfig, f, MinSize, MaxSize)
		}
		out = append(out, int(n))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no sizes in %q", ErrConfig, s)
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
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
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
			return nil, fmt.Errorf("%w: CPU %q: want a CPU number", ErrConfig, f)
		}
		out = append(out, n)
	}
	if len(out) != 2 {
		return nil, fmt.Errorf("%w: --cpus takes two CPUs (parent,child), have %q", ErrConfig, s)
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
