package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"shoal/gossip"
	"shoal/replication"
)

// ErrNoPrimary: no primary of the group could be reached in time.
var ErrNoPrimary = errors.New("no primary available")

// ErrNoGroup: the cluster has no group to keep files in yet.
var ErrNoGroup = errors.New("no storage group has joined the cluster yet")

// backend finds group primaries from the gossip view and calls them,
// retrying where a retry cannot apply an operation twice.
type backend struct {
	members func() []gossip.Member
	tr      replication.Transport
	group   string // the meta group; "" means the only group there is
	timeout time.Duration
	rpc     time.Duration
}

// metaGroup is the group that keeps the namespace (and, for now, content).
func (b *backend) metaGroup(ms []gossip.Member) (string, error) {
	if b.group != "" {
		return b.group, nil
	}
	var found string
	for _, m := range ms {
		if m.Group == "" || (m.Role != gossip.RolePrimary && m.Role != gossip.RoleReplica) {
			continue
		}
		if found != "" && m.Group != found {
			return "", fmt.Errorf("several groups (%q, %q) are present: start the router with --meta-group", found, m.Group)
		}
		found = m.Group
	}
	if found == "" {
		return "", ErrNoGroup
	}
	return found, nil
}

// retryable says whether err proves the request was not carried out, so
// that sending it again cannot apply it twice.
func retryable(err error) bool {
	return errors.Is(err, replication.ErrNotPrimary) || errors.Is(err, replication.ErrNotReady) ||
		errors.Is(err, replication.ErrUnreachable) || errors.Is(err, ErrNoPrimary) || errors.Is(err, ErrNoGroup)
}

// call sends req to the group's primary. It retries while no primary is
// known or the target says it is not (yet) the primary; with idempotent
// set it also retries when the outcome is unknown (a timeout, a deposed
// primary), since doing the operation twice changes nothing.
func (b *backend) call(ctx context.Context, req func(group string) replication.Message, idempotent bool) (replication.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	hint := ""
	wait := 20 * time.Millisecond
	var last error
	for {
		ms := b.members()
		group, err := b.metaGroup(ms)
		var resp replication.Message
		if err == nil {
			addr := hint
			if addr == "" {
				addr = primaryAddr(ms, group)
			}
			if addr == "" {
				err = fmt.Errorf("%w for group %q: an election may be in progress", ErrNoPrimary, group)
			} else {
				cctx, ccancel := context.WithTimeout(ctx, b.rpc)
				resp, err = b.tr.Call(cctx, addr, req(group))
				ccancel()
				if err == nil {
					return resp, nil
				}
			}
		}
		hint = ""
		var re *replication.RemoteError
		if errors.As(err, &re) && re.Leader != "" && errors.Is(err, replication.ErrNotPrimary) {
			hint = re.Leader
		}
		last = err
		if !retryable(err) && !(idempotent && unknownOutcome(err)) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, last)
		case <-time.After(wait):
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// unknownOutcome reports errors after which a request may or may not have
// taken effect.
func unknownOutcome(err error) bool {
	var re *replication.RemoteError
	if errors.As(err, &re) {
		return errors.Is(err, replication.ErrDeposed) || errors.Is(err, replication.ErrNoQuorum)
	}
	return true // transport failures: timeouts, resets
}

func primaryAddr(ms []gossip.Member, group string) string {
	if p := gossip.Elect(ms, group).Primary; p != nil {
		return p.Addr
	}
	return ""
}

// chunkSources lists the live members of the group, primary first, as
// places a chunk can be read from.
func chunkSources(ms []gossip.Member, group string) []string {
	d := gossip.Elect(ms, group)
	var out []string
	if d.Primary != nil {
		out = append(out, d.Primary.Addr)
	}
	for _, m := range ms {
		if m.Group == group && m.Addr != "" && (m.Status == gossip.StatusAlive || m.Status == gossip.StatusSuspect) &&
			(d.Primary == nil || m.ID != d.Primary.ID) && (m.Role == gossip.RolePrimary || m.Role == gossip.RoleReplica) {
			out = append(out, m.Addr)
		}
	}
	return out
}
