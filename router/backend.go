package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"shoal/gossip"
	"shoal/meta"
	"shoal/wire"
)

// backend finds group primaries from the gossip view and calls them,
// retrying where a retry cannot apply an operation twice.
type backend struct {
	members    func() []gossip.Member
	nextChange func() <-chan struct{} // nil: retries wait out their backoff
	tr         wire.Transport
	meta       string // the meta group; "" means meta.DefaultMetaGroup
	timeout    time.Duration
	rpc        time.Duration
	metrics    *metrics // nil: none

	// The last view read, when, and the change channel taken before it;
	// see view.
	viewMu   sync.Mutex
	viewMs   []gossip.Member
	viewAt   time.Time
	viewNext <-chan struct{}
}

// viewMaxAge bounds how long view keeps a view while gossip reports no
// change: a member that starts to leave, or comes back before it has
// left, changes status without an event.
const viewMaxAge = 100 * time.Millisecond

// view returns the gossip view, read again only after a change of it or
// viewMaxAge: reading it costs a copy and a decoding of every member's
// tags, which every request would otherwise pay to find its primary. A
// change of a member's tags (a new primary's claim), a join, a failure or
// a leave closes nextChange's channel; a member's suspicion does not, and
// does not change whom the view names primary either (gossip.Member.Live).
// The returned slice is shared: callers must not change it. Without
// nextChange every call reads the view.
func (b *backend) view() []gossip.Member {
	if b.nextChange == nil {
		return b.members()
	}
	b.viewMu.Lock()
	defer b.viewMu.Unlock()
	now := time.Now()
	if b.viewNext != nil && now.Sub(b.viewAt) < viewMaxAge {
		select {
		case <-b.viewNext:
		default:
			return b.viewMs
		}
	}
	// The channel first: a change while the view is read closes it, and
	// the next call reads again.
	b.viewNext = b.nextChange()
	b.viewMs, b.viewAt = b.members(), now
	return b.viewMs
}

// metaGroup is the group that keeps the namespace.
func (b *backend) metaGroup() string {
	if b.meta == "" {
		return meta.DefaultMetaGroup
	}
	return b.meta
}

// noMember explains that group has no live member in the view.
func (b *backend) noMember(group string) error {
	if group == b.metaGroup() {
		return fmt.Errorf("%w of meta group %q: start a group with that name or pass --meta-group", ErrNoGroup, group)
	}
	return fmt.Errorf("%w of group %q: its nodes may all be down", ErrNoGroup, group)
}

// retryable says whether err proves the request was not carried out, so
// that sending it again cannot apply it twice.
func retryable(err error) bool {
	return errors.Is(err, wire.ErrNotPrimary) || errors.Is(err, wire.ErrNotReady) ||
		errors.Is(err, wire.ErrUnreachable) || errors.Is(err, ErrNoPrimary) || errors.Is(err, ErrNoGroup) ||
		errors.Is(err, wire.ErrBusy)
}

// metaCall sends req to the meta group's primary; req gets the group's
// name to put in the message.
func (b *backend) metaCall(ctx context.Context, req func(group string) wire.Message, idempotent bool) (wire.Message, error) {
	g := b.metaGroup()
	return b.call(ctx, g, func() wire.Message { return req(g) }, idempotent)
}

// call sends req to group's primary. It retries while no primary is known
// or the target says it is not (yet) the primary or is busy; with
// idempotent set it also retries when the outcome is unknown (a timeout,
// a deposed primary) or the primary's disk refused the write (it steps
// down for a member that can write), since doing the operation twice
// changes nothing. Each try is bounded by b.rpc; it gives up after
// b.timeout with ErrUnavailable.
func (b *backend) call(ctx context.Context, group string, req func() wire.Message, idempotent bool) (wire.Message, error) {
	return b.callWithin(ctx, group, req, idempotent, b.rpc, b.timeout)
}

// tryAgain reports whether a call that failed with err is tried again:
// while no primary is known or the target is not (yet) the primary or is
// busy; for an idempotent call also when the outcome is unknown or the
// primary's disk refused the write.
func tryAgain(err error, idempotent bool) bool {
	return retryable(err) || idempotent && (unknownOutcome(err) || errors.Is(err, meta.ErrDiskFailed))
}

// busyWait is the least a call waits before it tries a busy node again:
// the node already waited for a while before it answered.
const busyWait = 100 * time.Millisecond

// callWithin is call with each try bounded by attempt and all of them
// by total.
func (b *backend) callWithin(ctx context.Context, group string, req func() wire.Message, idempotent bool, attempt, total time.Duration) (wire.Message, error) {
	// The first try, which most calls need alone, is bounded by attempt
	// and total in one context (callOnce's); the one bounding every try
	// by total is made for a second try.
	deadline := time.Now().Add(total)
	bounded := false
	hint := ""
	wait := 20 * time.Millisecond
	// first is the first failure that was not about finding the primary
	// (a deposed primary, its disk refusing the write): what began a
	// failover, said when giving up.
	var first error
	for {
		resp, tried, err := b.callOnce(ctx, group, hint, req, attempt, deadline)
		if err == nil {
			return resp, nil
		}
		if first == nil && !retryable(err) {
			first = err
		}
		hint = ""
		var re *wire.RemoteError
		if errors.As(err, &re) && re.Leader != "" && errors.Is(err, wire.ErrNotPrimary) {
			hint = re.Leader
		}
		if !tryAgain(err, idempotent) {
			return nil, err
		}
		if errors.Is(err, wire.ErrBusy) {
			wait = max(wait, busyWait)
		}
		if !bounded {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
			bounded = true
		}
		if werr := b.backoff(ctx, group, hint, tried, wait); werr != nil {
			if first != nil && first != err {
				return nil, fmt.Errorf("%w: %w (before that: %w)", ErrUnavailable, err, first)
			}
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		b.metrics.retried(group)
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// backoff waits before the next try: wait long, or less when the gossip
// view comes to name another primary for group than tried, the address
// just tried ("" if none was known): the new primary of a failover is
// tried as soon as it is known. With a hint from a deposed primary the
// next try goes there, so only the time counts. It fails when ctx ends
// first.
func (b *backend) backoff(ctx context.Context, group, hint, tried string, wait time.Duration) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		var changed <-chan struct{} // nil, never ready, without a view to watch
		if b.nextChange != nil && hint == "" {
			changed = b.nextChange()
			if now := gossip.PrimaryAddr(b.view(), group); now != "" && now != tried {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case <-changed:
		}
	}
}

// callOnce makes one attempt, bounded by attempt and by deadline, the
// call's: at addr when set (a deposed primary's hint), else at the
// primary the gossip view elects. It returns the address it called, ""
// when it knew none.
func (b *backend) callOnce(ctx context.Context, group, addr string, req func() wire.Message, attempt time.Duration, deadline time.Time) (wire.Message, string, error) {
	if addr == "" {
		ms := b.view()
		addr = gossip.PrimaryAddr(ms, group)
		if addr == "" {
			if len(gossip.LiveMembers(ms, group)) == 0 {
				return nil, "", b.noMember(group)
			}
			return nil, "", fmt.Errorf("%w for group %q: an election may be in progress", ErrNoPrimary, group)
		}
	}
	cctx, cancel := context.WithDeadline(ctx, earliest(time.Now().Add(attempt), deadline))
	defer cancel()
	resp, err := b.tr.Call(cctx, addr, req())
	return resp, addr, err
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// unknownOutcome reports errors after which a request may or may not have
// taken effect.
func unknownOutcome(err error) bool {
	var re *wire.RemoteError
	if errors.As(err, &re) {
		return errors.Is(err, wire.ErrDeposed) || errors.Is(err, wire.ErrNoQuorum)
	}
	return true // transport failures: timeouts, resets
}
