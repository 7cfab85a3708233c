package shmkit

import "fmt"

// Producer puts messages on a work queue; each goes to exactly one
// Consumer. It has the Publisher's methods (Loan, LoanContext, Publish,
// Send, Close).
type Producer struct{ *Publisher }

// Consumer takes messages from a work queue. It has the Subscriber's
// methods (Receive, TryReceive, ReceiveInto, Close).
type Consumer struct{ *Subscriber }

// Producer joins a WorkQueue channel as a producer (ErrFull beyond
// MaxPublishers).
func (ch *Channel) Producer() (*Producer, error) {
	if ch.cfg.Pattern != WorkQueue {
		return nil, fmt.Errorf("%w: Producer on a %v channel; use Publisher", ErrConfig, ch.cfg.Pattern)
	}
	p, err := ch.publisher()
	if err != nil {
		return nil, err
	}
	return &Producer{p}, nil
}

// Consumer joins a WorkQueue channel as a consumer (ErrFull beyond
// MaxSubscribers). Messages a consumer received and had not released when
// it died are lost with it; every other message goes to exactly one
// consumer.
func (ch *Channel) Consumer() (*Consumer, error) {
	if ch.cfg.Pattern != WorkQueue {
		return nil, fmt.Errorf("%w: Consumer on a %v channel; use Subscriber", ErrConfig, ch.cfg.Pattern)
	}
	s, err := ch.subscriber()
	if err != nil {
		return nil, err
	}
	return &Consumer{s}, nil
}
