package wire

import (
	"errors"

	"shoal/meta"
)

// Errors of the node protocol. They survive the wire: a caller can
// test a remote node's answer with errors.Is.
var (
	// ErrNotPrimary: this node does not lead the group; retry at the
	// primary (a RemoteError carries its address when known).
	ErrNotPrimary = errors.New("not the primary of this group")
	// ErrNotReady: the primary is still recovering the log from a
	// majority, or its group is still forming (it has not had all its
	// voting members yet), and accepts no requests yet; retry shortly.
	ErrNotReady = errors.New("primary is not ready; retry shortly")
	// ErrNoQuorum: a majority of the group did not answer in time.
	ErrNoQuorum = errors.New("no quorum: a majority of the group did not answer")
	// ErrDeposed: a higher ballot took over while the request was in
	// flight; the outcome of a write is unknown.
	ErrDeposed = errors.New("primary was deposed")
	// ErrStaleBallot: the sender's ballot is lower than one this node has
	// promised, or than the primary in this node's gossip view.
	ErrStaleBallot = errors.New("stale ballot")
	// ErrWrongGroup: the message names another group.
	ErrWrongGroup = errors.New("wrong group")
	// ErrBadMessage: a frame could not be decoded.
	ErrBadMessage = errors.New("malformed message")
	// ErrNotMember: this node is not a voting member and cannot lead.
	ErrNotMember = errors.New("not a voting member of the group")
	// ErrClaimed: the standby already belongs to a group and accepts no
	// other claim.
	ErrClaimed = errors.New("standby already claimed by a group")
	// ErrChunksMissing: chunks a file would name are gone (collected
	// during a very slow upload, or lost); upload the file again.
	ErrChunksMissing = errors.New("chunks missing from their group")
	// ErrCommittedConflict: the primary's log differs from an entry this
	// member has applied, which only a primary that lost committed
	// entries (a wiped or damaged disk) can send. The member refuses to
	// follow it rather than drop what was acknowledged.
	ErrCommittedConflict = errors.New("primary's log conflicts with a committed entry")
	// ErrRebuilding: the member's corrupt metadata store was replaced by
	// an empty one and it may lack entries it once acknowledged: it
	// promises nothing to a recovering primary, and does not lead, until
	// its primary has found it whole again.
	ErrRebuilding = errors.New("member is rebuilding its state from its group")
	// ErrForbidden: the caller's certificate does not allow this request
	// (a router sending a message only storage nodes may send), or the
	// request may only come from within the node (a membership change).
	ErrForbidden = errors.New("forbidden")
	// ErrBusy: the node has as many chunk writes in progress as it
	// takes, and none ended while this one waited; nothing was stored.
	// Retry after a short wait: the node is loaded, not failing.
	ErrBusy = errors.New("busy: too many chunk writes in progress")
)

var wireErrors = map[string]error{
	"not_primary":        ErrNotPrimary,
	"not_ready":          ErrNotReady,
	"no_quorum":          ErrNoQuorum,
	"deposed":            ErrDeposed,
	"stale_ballot":       ErrStaleBallot,
	"wrong_group":        ErrWrongGroup,
	"bad_message":        ErrBadMessage,
	"not_member":         ErrNotMember,
	"claimed":            ErrClaimed,
	"chunks_missing":     ErrChunksMissing,
	"forbidden":          ErrForbidden,
	"committed_conflict": ErrCommittedConflict,
	"busy":               ErrBusy,
	"rebuilding":         ErrRebuilding,
	"chunk_corrupt":      meta.ErrCorrupt,
	"no_space":           meta.ErrNoSpace,
	"disk_failed":        meta.ErrDiskFailed,
	"compacted":          meta.ErrCompacted,
	"not_found":          meta.ErrNotFound,
	"exists":             meta.ErrExists,
	"not_dir":            meta.ErrNotDir,
	"is_dir":             meta.ErrIsDir,
	"not_empty":          meta.ErrNotEmpty,
	"invalid":            meta.ErrInvalid,
}
