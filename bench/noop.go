package bench

// The no-op transport moves nothing: its sending end hands out one buffer
// and its receiving end hands the same buffer back. Running the roles of
// both sides in one loop over it (harnessCost) measures what the harness
// itself costs per message and per round trip: stamping, checking, the
// sampled checksums, clock reads and the interface calls, without any
// transport.

// loopback is the no-op transport's single slot.
type loopback struct{ b []byte }

func (l *loopback) buf(n int) ([]byte, error) { return l.b[:n], nil }
func (l *loopback) send(int) error            { return nil }
func (l *loopback) inPlace() bool             { return true }
func (l *loopback) next() ([]byte, error)     { return l.b, nil }
func (l *loopback) done() error               { return nil }

// harnessCost runs the roles of cell c over a loopback, in this goroutine,
// and returns the parent role's statistics: msgs and elapsed give the
// harness's cost per message (per round trip for ping-pong).
func harnessCost(c *cell) (sideStats, error) {
	p := paceOf(c)
	switch c.Workload {
	case PingPong:
		// One slot both ways: the echo goes back in place.
		l := &loopback{b: make([]byte, c.Size)}
		pg, e := newPinger(l, l, p), newEchoer(l, l, p)
		for {
			if err := pg.ping(); err != nil {
				return pg.st, err
			}
			if _, err := e.step(); err != nil {
				return pg.st, err
			}
			done, err := pg.pong()
			if done || err != nil {
				return pg.st, err
			}
		}
	default:
		l := &loopback{b: make([]byte, c.Size)}
		pr, co := newProducer(l, p), newConsumer(l, p)
		for {
			if _, err := pr.step(); err != nil {
				return co.st, err
			}
			done, err := co.step()
			if done || err != nil {
				return co.st, err
			}
		}
	}
}

// paceOf is the pace of cell c's sending roles.
func paceOf(c *cell) pace {
	return pace{size: c.Size, warmup: c.Warmup, duration: c.Duration, minMsgs: c.MinMsgs,
		verify: c.Verify, rate: c.Rate}
}
