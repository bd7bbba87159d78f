// Package wire is how nodes, routers and standbys talk: the messages of
// the node protocol, their framed msgpack codec (bounded before it
// allocates), the errors that survive a round trip, and two transports
// that carry them: TCP (with mutual TLS on a secure cluster) and an
// in-memory network for tests, which can cut, partition, drop and delay.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"shoal/meta"
)

// MsgType tags each message on the wire.
type MsgType uint8

// The messages exchanged between nodes, and between routers and nodes.
const (
	MsgError            MsgType = 1
	MsgOK               MsgType = 2
	MsgAppend           MsgType = 3
	MsgAppendResp       MsgType = 4
	MsgPromise          MsgType = 5
	MsgPromiseResp      MsgType = 6
	MsgFetchLog         MsgType = 7
	MsgFetchLogResp     MsgType = 8
	MsgFetchSnap        MsgType = 9
	MsgFetchSnapResp    MsgType = 10
	MsgStoreChunk       MsgType = 11 // primary to replica: keep this chunk
	MsgGetChunk         MsgType = 12
	MsgChunk            MsgType = 13
	MsgWriteChunk       MsgType = 14 // router to primary: store on a majority
	MsgPropose          MsgType = 15
	MsgProposeResp      MsgType = 16
	MsgRead             MsgType = 17
	MsgReadResp         MsgType = 18
	MsgTouchChunks      MsgType = 19 // router to primary: keep these chunks fresh
	MsgTouchResp        MsgType = 20
	MsgDeleteChunks     MsgType = 21 // primary to member: collect idle chunks
	MsgChunkDigest      MsgType = 22
	MsgDigestResp       MsgType = 23
	MsgListChunks       MsgType = 24
	MsgChunkList        MsgType = 25
	MsgClaim            MsgType = 26 // to a standby: join this group
	MsgGroupStatus      MsgType = 27
	MsgGroupInfo        MsgType = 28
	MsgRelease          MsgType = 29 // primary to a member it does not need: return to the standby pool
	MsgReadBatch        MsgType = 30 // router to primary: several quick reads answered together
	MsgReadBatchResp    MsgType = 31
	MsgProposeBatch     MsgType = 32 // router to primary: several ops committed together
	MsgProposeBatchResp MsgType = 33
)

// Message is anything that travels in a frame.
type Message interface{ Type() MsgType }

// ErrorMsg carries a handler's error back to the caller.
type ErrorMsg struct {
	Code    string `msgpack:"c"`
	Message string `msgpack:"m"`
	Leader  string `msgpack:"l,omitempty"` // the primary's address, when known
}

// OKMsg is an empty success.
type OKMsg struct{}

// Append replicates entries (none for a heartbeat) from the primary.
type Append struct {
	Group      string       `msgpack:"g"`
	Ballot     meta.Ballot  `msgpack:"b"`
	Leader     string       `msgpack:"l"` // primary's address, for chunk fetches and hints
	PrevIndex  uint64       `msgpack:"pi"`
	PrevBallot meta.Ballot  `msgpack:"pb"`
	Entries    []meta.Entry `msgpack:"e,omitempty"`
	Commit     uint64       `msgpack:"c"`
	Probe      bool         `msgpack:"p,omitempty"` // only confirm the ballot; skip the log
	// SyncedStart, when it equals the member's process start (see
	// AppendResp.Start), tells the member it held every chunk of its group
	// when the primary last compared: from then on it may count as in sync
	// (and be elected), not before. Naming the start keeps a verdict about
	// an earlier run of the member, perhaps with a disk since wiped, from
	// applying to this one.
	SyncedStart uint64 `msgpack:"sy,omitempty"`
	// Snapshot says the primary's log is compacted through PrevIndex: a
	// member that has not applied that far pulls a snapshot; one that has
	// answers with its applied index, from which the log resumes.
	Snapshot bool `msgpack:"s,omitempty"`
}

// AppendResp answers Append.
type AppendResp struct {
	OK         bool        `msgpack:"ok"`
	Promised   meta.Ballot `msgpack:"p"`
	LastIndex  uint64      `msgpack:"li"` // on OK: the index through which the log matches
	Installing bool        `msgpack:"in,omitempty"`
	// Start identifies the member's process start: when it changes, the
	// member may have come back with an empty disk, and the primary
	// forgets that it held every chunk.
	Start uint64 `msgpack:"st,omitempty"`
	// NoRoom: the member's disk has no room left for new data above the
	// reserve it keeps for metadata. The primary then counts it out of
	// the majority that must store an op adding data. The primary reads
	// it only from answers to Appends other than probes: a member need
	// not ask its file system for its room to confirm a read, and does
	// not when it accepts the probe.
	NoRoom bool `msgpack:"nr,omitempty"`
}

// Promise asks a member not to accept entries from any lower ballot and to
// report its log, so a new primary can adopt every committed entry.
type Promise struct {
	Group  string      `msgpack:"g"`
	Ballot meta.Ballot `msgpack:"b"`
}

// PromiseResp answers Promise.
type PromiseResp struct {
	OK         bool        `msgpack:"ok"`
	Promised   meta.Ballot `msgpack:"p"`
	LastIndex  uint64      `msgpack:"li"`
	LastBallot meta.Ballot `msgpack:"lb"`
}

// FetchLog reads log entries from a member (recovery).
type FetchLog struct {
	Group    string      `msgpack:"g"`
	Ballot   meta.Ballot `msgpack:"b"`
	From     uint64      `msgpack:"f"`
	MaxBytes int         `msgpack:"m"`
}

// FetchLogResp answers FetchLog.
type FetchLogResp struct {
	Entries   []meta.Entry `msgpack:"e"`
	LastIndex uint64       `msgpack:"li"`
}

// FetchSnap reads a piece of a snapshot. Name is empty on the first call,
// which makes the server cut a new snapshot.
type FetchSnap struct {
	Group  string `msgpack:"g"`
	Name   string `msgpack:"n"`
	Offset int64  `msgpack:"o"`
}

// FetchSnapResp answers FetchSnap. Sum is the SHA-256 of the whole
// snapshot file, which the receiver checks before it installs it (empty
// from a node too old to send one).
type FetchSnapResp struct {
	Name string `msgpack:"n"`
	Size int64  `msgpack:"s"`
	Data Bulk   `msgpack:"d"`
	Sum  []byte `msgpack:"h,omitempty"`
}

// StoreChunk asks a member to keep a chunk durably. A member that holds
// the chunk already only touches it, unless Replace is set: the sender
// read a copy from it that did not match its hash, so the member checks
// its copy and rewrites it if it is bad.
type StoreChunk struct {
	Hash    meta.Hash `msgpack:"h"`
	Data    Bulk      `msgpack:"d"`
	Replace bool      `msgpack:"r,omitempty"`
}

// GetChunk reads a chunk. The member checks it against its hash before it
// answers, unless CallerChecks is set: the member then sends the chunk as
// it is on disk with the CRC-32C it keeps with it (ChunkMsg.CRC), the
// caller (a router) checks what it receives against that, and answers a
// bad copy with a StoreChunk that replaces it. A read then costs a
// checksum where the bytes are used instead of a SHA-256, and catches
// what changed them on disk or on the way.
type GetChunk struct {
	Hash         meta.Hash `msgpack:"h"`
	CallerChecks bool      `msgpack:"c,omitempty"`
}

// ChunkMsg carries a chunk's content.
type ChunkMsg struct {
	Data Bulk `msgpack:"d"`
	// CRC is the CRC-32C of Data as the member stored it, when HasCRC
	// (an answer to a GetChunk with CallerChecks). A member that sends
	// none leaves the caller to check Data against its hash.
	CRC    uint32 `msgpack:"k,omitempty"`
	HasCRC bool   `msgpack:"kc,omitempty"`
	// Release, when set by the handler that answers with it, is called
	// once the answer is written (or dropped), giving Data's memory back.
	Release func() `msgpack:"-"`
}

// released calls m's Release, if it has one, once its frame is written.
func released(m Message) {
	if c, ok := m.(*ChunkMsg); ok && c.Release != nil {
		c.Release()
	}
}

// WriteChunk asks the primary to store a chunk on a majority of the group.
type WriteChunk struct {
	Group string    `msgpack:"g"`
	Hash  meta.Hash `msgpack:"h"`
	Data  Bulk      `msgpack:"d"`
}

// Propose asks the primary to commit an op.
type Propose struct {
	Group string  `msgpack:"g"`
	Op    meta.Op `msgpack:"o"`
}

// ProposeResp answers Propose once the op is committed and applied.
type ProposeResp struct {
	Result meta.Result `msgpack:"r"`
}

// ReadKind selects a namespace read.
type ReadKind uint8

// The namespace reads.
const (
	ReadLookup  ReadKind = 1
	ReadReadDir ReadKind = 2
	// ReadChunkRefs asks which of Hashes some file references in one of
	// Groups (garbage collection).
	ReadChunkRefs ReadKind = 3
	// ReadChunkGroups asks in which group each of Hashes is already
	// referenced, so a router can store identical content once. It is a
	// hint: answered from local state without confirming leadership, and
	// a stale answer only costs a second copy.
	ReadChunkGroups ReadKind = 4
	// ReadCheckPut asks whether Cred may put a file at Path now (Code is
	// set when not), so a router refuses an upload before storing chunks.
	ReadCheckPut ReadKind = 5
	// ReadUser finds the user whose token hashes to Token.
	ReadUser ReadKind = 6
	// ReadUsers lists every user.
	ReadUsers ReadKind = 7
	// ReadUserNamed finds the user called Name.
	ReadUserNamed ReadKind = 8
	// ReadOwned lists up to Limit inodes Uid owns, after inode After.
	ReadOwned ReadKind = 9
	// ReadLock reads the lock of the inode at Path: its live leases
	// (without their keys) and the head of its queue.
	ReadLock ReadKind = 10
)

// Read is a linearizable namespace read served by the primary.
type Read struct {
	Group string   `msgpack:"g"`
	Kind  ReadKind `msgpack:"k"`
	Path  string   `msgpack:"p"`
	// Dir, when not 0, is the inode Path is resolved from (meta.Op.Dir).
	Dir    uint64      `msgpack:"d,omitempty"`
	Hashes []meta.Hash `msgpack:"h,omitempty"` // ReadChunkRefs
	Groups []string    `msgpack:"rg,omitempty"`
	// Cred is who the read is for, as the router authenticated them
	// (nil: the cluster itself); Want the access it needs to the inode
	// read (meta.MayRead for content), checked with the path.
	Cred *meta.Cred `msgpack:"cr,omitempty"`
	Want uint32     `msgpack:"w,omitempty"`
	// Token, Name, Uid, After and Limit select users and owned inodes
	// (ReadUser, ReadUserNamed, ReadOwned); for ReadLock, Name is the
	// reader's lock session, whose own leases the answer marks.
	Token [32]byte `msgpack:"tk,omitempty"`
	Name  string   `msgpack:"n,omitempty"`
	Uid   uint32   `msgpack:"u,omitempty"`
	After uint64   `msgpack:"af,omitempty"`
	Limit int      `msgpack:"li,omitempty"`
	// AfterName starts a ReadReadDir page after this name (Limit bounds
	// the page; the member caps it at MaxDirPage).
	AfterName string `msgpack:"an,omitempty"`
}

// MaxDirPage bounds the entries of one ReadReadDir answer, so a huge
// directory is read in pages of bounded size, each a short read on the
// primary, rather than in one message no frame can hold.
const MaxDirPage = 1000

// ReadResp answers Read; Code is set when the path cannot be read.
type ReadResp struct {
	Code       meta.Code         `msgpack:"c,omitempty"`
	Inode      meta.Inode        `msgpack:"i"`
	Entries    []meta.DirEntry   `msgpack:"e,omitempty"`
	Referenced []bool            `msgpack:"r,omitempty"`  // ReadChunkRefs, one per hash
	Located    []string          `msgpack:"lg,omitempty"` // ReadChunkGroups, one per hash; "" for none
	User       *meta.User        `msgpack:"us,omitempty"` // ReadUser, ReadUserNamed; nil: no such user
	Users      []meta.User       `msgpack:"uss,omitempty"`
	Owned      []meta.OwnedInode `msgpack:"ow,omitempty"`
	Next       uint64            `msgpack:"nx,omitempty"` // ReadOwned: the After of the next page, 0 at the end
	More       bool              `msgpack:"mo,omitempty"` // ReadReadDir: entries follow the last one in Entries
	Lock       *meta.LockState   `msgpack:"lk,omitempty"` // ReadLock
}

// TouchChunks asks a group's primary to mark chunks as freshly written on
// a majority, so garbage collection leaves them alone for its grace
// period. A router sends it just before committing a file that names
// them: a chunk written long ago by a slow upload may be idle already.
type TouchChunks struct {
	Group  string      `msgpack:"g"`
	Hashes []meta.Hash `msgpack:"h"`
	// Local is set by the primary when it passes the touch on: the member
	// touches its own copies only.
	Local bool `msgpack:"l,omitempty"`
}

// TouchResp lists the chunks the primary no longer holds.
type TouchResp struct {
	Missing []meta.Hash `msgpack:"m,omitempty"`
}

// DeleteChunks asks a member to remove the chunks that have been idle on
// its own disk for at least Idle: a chunk written or touched more
// recently (a write that re-uses it is in flight) stays.
type DeleteChunks struct {
	Group  string        `msgpack:"g"`
	Hashes []meta.Hash   `msgpack:"h"`
	Idle   time.Duration `msgpack:"i"`
}

// ChunkDigest asks a member for the digest of the chunk set it holds.
type ChunkDigest struct {
	Group string `msgpack:"g"`
}

// DigestResp answers ChunkDigest: 256 buckets by the first hash byte.
type DigestResp struct {
	Buckets []meta.BucketDigest `msgpack:"b"`
	Used    int64               `msgpack:"u"`
	Start   uint64              `msgpack:"st"` // the member's process start
}

// ListChunks asks a member for the hashes it holds in some buckets.
type ListChunks struct {
	Group   string  `msgpack:"g"`
	Buckets []uint8 `msgpack:"b"`
}

// ChunkList answers ListChunks.
type ChunkList struct {
	Hashes []meta.Hash `msgpack:"h"`
}

// Release tells a member of Group that the group does not need it (it is
// no voter, and the group has its full size of live voters): it drops
// its copy of the group and returns to the standby pool. The member
// checks its own log first and refuses if it is a voter there.
type Release struct {
	Group string `msgpack:"g"`
	By    string `msgpack:"y"` // the primary's name, for logs
}

// Claim asks a standby to become a member of Group. A standby accepts one
// claim only (it records it durably before answering), so two groups
// never take the same node. Boot makes it the group's first primary: a
// group formed from standbys has nobody started as its primary.
type Claim struct {
	Group string `msgpack:"g"`
	Boot  bool   `msgpack:"b,omitempty"`
	By    string `msgpack:"y"` // the claimer's name, for logs
}

// GroupStatus asks a group's primary for the state of its group.
type GroupStatus struct {
	Group string `msgpack:"g"`
}

// GroupInfo answers GroupStatus.
type GroupInfo struct {
	Ballot  meta.Ballot    `msgpack:"b"`
	Commit  uint64         `msgpack:"c"`
	Members []MemberInfo   `msgpack:"m"`
	Chunks  int            `msgpack:"n"` // distinct chunks held by any member
	Repair  RepairProgress `msgpack:"r"`
}

// MemberInfo is one member in GroupInfo.
type MemberInfo struct {
	ID     uint64 `msgpack:"i"`
	Name   string `msgpack:"n"`
	Addr   string `msgpack:"a"`
	Voter  bool   `msgpack:"v"`
	Live   bool   `msgpack:"l"`
	Synced bool   `msgpack:"s"`
	Match  uint64 `msgpack:"x"`
	Chunks int    `msgpack:"c"`
	Used   int64  `msgpack:"u"`
	// DiskError is the last write the member's disk refused, while it
	// refuses them; "" when it takes writes.
	DiskError string `msgpack:"d,omitempty"`
}

// RepairProgress says how far the group is from full redundancy.
type RepairProgress struct {
	// UnderReplicated counts chunks that fewer than all voting members
	// hold, as of the last comparison.
	UnderReplicated int `msgpack:"u"`
	// Copied and CopiedBytes count chunk copies made by repair since this
	// primary took over.
	Copied      int   `msgpack:"c"`
	CopiedBytes int64 `msgpack:"b"`
	// Collected counts chunks removed by garbage collection since this
	// primary took over.
	Collected int `msgpack:"g"`
	// LastRound is when the last comparison finished (Unix nanoseconds).
	LastRound int64 `msgpack:"t"`
}

func (*ErrorMsg) Type() MsgType         { return MsgError }
func (*OKMsg) Type() MsgType            { return MsgOK }
func (*Append) Type() MsgType           { return MsgAppend }
func (*AppendResp) Type() MsgType       { return MsgAppendResp }
func (*Promise) Type() MsgType          { return MsgPromise }
func (*PromiseResp) Type() MsgType      { return MsgPromiseResp }
func (*FetchLog) Type() MsgType         { return MsgFetchLog }
func (*FetchLogResp) Type() MsgType     { return MsgFetchLogResp }
func (*FetchSnap) Type() MsgType        { return MsgFetchSnap }
func (*FetchSnapResp) Type() MsgType    { return MsgFetchSnapResp }
func (*StoreChunk) Type() MsgType       { return MsgStoreChunk }
func (*GetChunk) Type() MsgType         { return MsgGetChunk }
func (*ChunkMsg) Type() MsgType         { return MsgChunk }
func (*WriteChunk) Type() MsgType       { return MsgWriteChunk }
func (*Propose) Type() MsgType          { return MsgPropose }
func (*ProposeResp) Type() MsgType      { return MsgProposeResp }
func (*Read) Type() MsgType             { return MsgRead }
func (*ReadResp) Type() MsgType         { return MsgReadResp }
func (*TouchChunks) Type() MsgType      { return MsgTouchChunks }
func (*TouchResp) Type() MsgType        { return MsgTouchResp }
func (*DeleteChunks) Type() MsgType     { return MsgDeleteChunks }
func (*ChunkDigest) Type() MsgType      { return MsgChunkDigest }
func (*DigestResp) Type() MsgType       { return MsgDigestResp }
func (*ListChunks) Type() MsgType       { return MsgListChunks }
func (*ChunkList) Type() MsgType        { return MsgChunkList }
func (*Claim) Type() MsgType            { return MsgClaim }
func (*Release) Type() MsgType          { return MsgRelease }
func (*GroupStatus) Type() MsgType      { return MsgGroupStatus }
func (*GroupInfo) Type() MsgType        { return MsgGroupInfo }
func (*ReadBatch) Type() MsgType        { return MsgReadBatch }
func (*ReadBatchResp) Type() MsgType    { return MsgReadBatchResp }
func (*ProposeBatch) Type() MsgType     { return MsgProposeBatch }
func (*ProposeBatchResp) Type() MsgType { return MsgProposeBatchResp }

func newMessage(t MsgType) (Message, error) {
	switch t {
	case MsgError:
		return &ErrorMsg{}, nil
	case MsgOK:
		return &OKMsg{}, nil
	case MsgAppend:
		return &Append{}, nil
	case MsgAppendResp:
		return &AppendResp{}, nil
	case MsgPromise:
		return &Promise{}, nil
	case MsgPromiseResp:
		return &PromiseResp{}, nil
	case MsgFetchLog:
		return &FetchLog{}, nil
	case MsgFetchLogResp:
		return &FetchLogResp{}, nil
	case MsgFetchSnap:
		return &FetchSnap{}, nil
	case MsgFetchSnapResp:
		return &FetchSnapResp{}, nil
	case MsgStoreChunk:
		return &StoreChunk{}, nil
	case MsgGetChunk:
		return &GetChunk{}, nil
	case MsgChunk:
		return &ChunkMsg{}, nil
	case MsgWriteChunk:
		return &WriteChunk{}, nil
	case MsgPropose:
		return &Propose{}, nil
	case MsgProposeResp:
		return &ProposeResp{}, nil
	case MsgRead:
		return &Read{}, nil
	case MsgReadResp:
		return &ReadResp{}, nil
	case MsgTouchChunks:
		return &TouchChunks{}, nil
	case MsgTouchResp:
		return &TouchResp{}, nil
	case MsgDeleteChunks:
		return &DeleteChunks{}, nil
	case MsgChunkDigest:
		return &ChunkDigest{}, nil
	case MsgDigestResp:
		return &DigestResp{}, nil
	case MsgListChunks:
		return &ListChunks{}, nil
	case MsgChunkList:
		return &ChunkList{}, nil
	case MsgClaim:
		return &Claim{}, nil
	case MsgRelease:
		return &Release{}, nil
	case MsgGroupStatus:
		return &GroupStatus{}, nil
	case MsgGroupInfo:
		return &GroupInfo{}, nil
	case MsgReadBatch:
		return &ReadBatch{}, nil
	case MsgReadBatchResp:
		return &ReadBatchResp{}, nil
	case MsgProposeBatch:
		return &ProposeBatch{}, nil
	case MsgProposeBatchResp:
		return &ProposeBatchResp{}, nil
	}
	return nil, fmt.Errorf("%w: unknown message type %d", ErrBadMessage, t)
}

// MaxFrame bounds one message on the wire: a chunk of the largest allowed
// size plus headroom. A peer announcing more is sending garbage.
const MaxFrame = 80 << 20

// Encode returns the body of a frame: the type byte then msgpack.
func Encode(m Message) ([]byte, error) {
	b, err := msgpack.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode message type %d: %w", m.Type(), err)
	}
	out := make([]byte, 1+len(b))
	out[0] = byte(m.Type())
	copy(out[1:], b)
	return out, nil
}

// Decode parses a frame body produced by Encode. The message shares
// memory with b, which the caller must not reuse.
func Decode(b []byte) (Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrBadMessage)
	}
	m, err := newMessage(MsgType(b[0]))
	if err != nil {
		return nil, err
	}
	if err := checkMsgpack(b[1:]); err != nil {
		return nil, fmt.Errorf("%w: type %d: %v", ErrBadMessage, b[0], err)
	}
	// The Bulk contents of m are b's own bytes (see Bulk).
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	fr := &frameReader{b: b[1:]}
	fr.Reset(fr.b)
	dec.Reset(fr)
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: type %d: %v", ErrBadMessage, b[0], err)
	}
	return m, nil
}

// frameHeader is the 4-byte big-endian length that precedes every frame.
func frameHeader(n int) [4]byte {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(n))
	return h
}

// remoteError rebuilds a handler's error on the caller's side so that
// errors.Is works across the wire for the sentinels in errors.go.
func remoteError(m *ErrorMsg) error {
	e, ok := wireErrors[m.Code]
	if !ok {
		e = errors.New(m.Code)
	}
	return &RemoteError{err: e, msg: m.Message, Leader: m.Leader}
}

// RemoteError is an error returned by a remote handler.
type RemoteError struct {
	err    error
	msg    string
	Leader string // the primary's address, when the remote knew it
}

func (e *RemoteError) Error() string { return e.msg }
func (e *RemoteError) Unwrap() error { return e.err }

// errorMessage encodes a handler's error for the wire.
func errorMessage(err error, leader string) *ErrorMsg {
	for code, e := range wireErrors {
		if errors.Is(err, e) {
			return &ErrorMsg{Code: code, Message: err.Error(), Leader: leader}
		}
	}
	return &ErrorMsg{Code: "internal", Message: err.Error(), Leader: leader}
}

// maxNesting bounds how deep arrays and maps may nest in a message; the
// deepest real message (an Append's chunk hash) is seven levels down.
const maxNesting = 32

// checkMsgpack walks one msgpack value and rejects it unless it is whole,
// nested at most maxNesting deep, and every array, map, string and binary
// fits in the bytes that remain. The decoder allocates a slice for the
// length an array announces before it reads a single element, so without
// this check a few bytes announcing 2^32 entries would exhaust memory.
func checkMsgpack(b []byte) error {
	rest, err := skipValue(b, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d bytes after the message", len(rest))
	}
	return nil
}

// skipValue returns what follows the msgpack value at the start of b.
func skipValue(b []byte, depth int) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("message cut short")
	}
	c, b := b[0], b[1:]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		return b, nil
	case c >= 0x80 && c <= 0x8f:
		return skipItems(b, 2*int(c&0x0f), depth)
	case c >= 0x90 && c <= 0x9f:
		return skipItems(b, int(c&0x0f), depth)
	case c >= 0xa0 && c <= 0xbf:
		return skipBytes(b, int(c&0x1f))
	}
	switch c {
	case 0xcc, 0xd0:
		return skipBytes(b, 1)
	case 0xcd, 0xd1:
		return skipBytes(b, 2)
	case 0xca, 0xce, 0xd2:
		return skipBytes(b, 4)
	case 0xcb, 0xcf, 0xd3:
		return skipBytes(b, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: a type byte and 1 to 16 bytes
		return skipBytes(b, 1+1<<(c-0xd4))
	case 0xc4, 0xd9: // bin8, str8
		return skipSized(b, 1, 0)
	case 0xc5, 0xda:
		return skipSized(b, 2, 0)
	case 0xc6, 0xdb:
		return skipSized(b, 4, 0)
	case 0xc7, 0xc8, 0xc9: // ext: a length, a type byte, the data
		return skipSized(b, 1<<(c-0xc7), 1)
	case 0xdc, 0xdd, 0xde, 0xdf: // array16/32, map16/32
		size := 2 << ((c - 0xdc) % 2)
		if len(b) < size {
			return nil, errors.New("message cut short")
		}
		n := readLen(b[:size])
		if c >= 0xde {
			n *= 2
		}
		return skipItems(b[size:], n, depth)
	}
	return nil, fmt.Errorf("invalid msgpack code 0x%02x", c)
}

func readLen(b []byte) int {
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	return int(n)
}

// skipSized skips a length of size bytes, extra bytes, then that many.
func skipSized(b []byte, size, extra int) ([]byte, error) {
	if len(b) < size {
		return nil, errors.New("message cut short")
	}
	return skipBytes(b[size:], extra+readLen(b[:size]))
}

func skipBytes(b []byte, n int) ([]byte, error) {
	if n < 0 || n > len(b) {
		return nil, fmt.Errorf("a value of %d bytes with %d left", n, len(b))
	}
	return b[n:], nil
}

// skipItems skips n values, each at least one byte long.
func skipItems(b []byte, n, depth int) ([]byte, error) {
	if depth >= maxNesting {
		return nil, fmt.Errorf("values nested over %d deep", maxNesting)
	}
	if n < 0 || n > len(b) {
		return nil, fmt.Errorf("%d values announced with %d bytes left", n, len(b))
	}
	var err error
	for range n {
		if b, err = skipValue(b, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// RouterMayCall reports whether a router may send m to a storage node: the
// requests of the data path (namespace reads and proposals, chunk reads,
// writes, touches and read repairs of content checked against its hash)
// and group status. Everything else (replication, recovery, claims,
// chunk deletion) comes from storage nodes only.
func RouterMayCall(m Message) bool {
	switch m.(type) {
	case *Propose, *ProposeBatch, *Read, *ReadBatch, *WriteChunk, *GetChunk, *StoreChunk, *TouchChunks, *GroupStatus:
		return true
	}
	return false
}
