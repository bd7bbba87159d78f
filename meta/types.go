package meta

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"time"
)

// Hash names a chunk by the SHA-256 of its content.
type Hash [32]byte

// HashOf returns the content hash of b.
func HashOf(b []byte) Hash { return sha256.Sum256(b) }

// castagnoli is the CRC-32C polynomial, which this CPU family computes in
// hardware.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ChunkCRC returns the CRC-32C of a chunk's content: the checksum a member
// keeps with each chunk at rest and sends with it, so that a read is
// checked at a fifteenth of the cost of its SHA-256. It catches what
// disks and wires do to bytes by accident; the SHA-256 that names the chunk
// is checked where the chunk is written, and by the scrubber.
func ChunkCRC(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// String returns the lower-case hex form used in file names and on the wire.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses the hex form of a hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("parse chunk hash %q: want %d hex bytes", s, len(h))
	}
	copy(h[:], b)
	return h, nil
}

// Ballot orders primaries. Term grows by one at each promotion; Node is the
// promoting node's ID, so two nodes that promote themselves with the same
// term still hold different ballots and at most one of them can gather a
// majority of promises.
type Ballot struct {
	Term uint64 `msgpack:"t"`
	Node uint64 `msgpack:"n"`
}

// Less reports whether b orders before o.
func (b Ballot) Less(o Ballot) bool {
	if b.Term != o.Term {
		return b.Term < o.Term
	}
	return b.Node < o.Node
}

// MaxTerm bounds a ballot's term. Terms grow by one per promotion, so no
// cluster comes near it; a higher one comes from a bug or a forged
// message, and accepting it would leave no higher term to promote with.
const MaxTerm = 1 << 62

// Check refuses a ballot whose term is beyond MaxTerm.
func (b Ballot) Check() error {
	if b.Term > MaxTerm {
		return fmt.Errorf("ballot %s: term %d is beyond the limit %d", b, b.Term, uint64(MaxTerm))
	}
	return nil
}

// IsZero reports whether no primary ever held b.
func (b Ballot) IsZero() bool { return b.Term == 0 && b.Node == 0 }

func (b Ballot) String() string { return fmt.Sprintf("%d/%d", b.Term, b.Node) }

// ChunkRef is one chunk of a file's content, in order. A ref with the
// zero Hash is a hole: Size zero bytes that are stored nowhere (a file
// extended by truncate, or written past its end), with no group and no
// key, and of any length.
type ChunkRef struct {
	Hash Hash `msgpack:"h"`
	// Size is the chunk's size as the file sees it: its plaintext's,
	// whatever the bytes stored (sealed content has ChunkOverhead more).
	Size  int64  `msgpack:"s"`
	Group string `msgpack:"g,omitempty"`
	// Key is the ID of the data key the chunk is sealed with at rest (see
	// secure.Sealer); 0 for content stored in clear.
	Key uint32 `msgpack:"k,omitempty"`
	// Tag names a sealed chunk's plaintext for comparisons, without
	// revealing it: 16 raw bytes of an HMAC, under a key derived from the
	// data key, of the plaintext's SHA-256 (see secure.Sealer.ChunkTag).
	// A client that cut and hashed its own copy can ask whether the
	// chunk holds the same bytes (POST ?op=match) although Hash names the
	// sealed bytes. Empty for clear chunks, whose Hash is the plaintext's,
	// and for chunks sealed before tags were kept.
	Tag string `msgpack:"t,omitempty"`
}

// Hole says c is a hole: zeros, not stored.
func (c ChunkRef) Hole() bool { return c.Hash == Hash{} }

// FileType says what an inode is.
type FileType uint8

// The inode types.
const (
	TypeFile    FileType = 1
	TypeDir     FileType = 2
	TypeSymlink FileType = 3
	// Special files (mknod(2)): the cluster keeps their type, attributes
	// and device number; what they do is the local kernel's business.
	TypeFIFO     FileType = 4
	TypeSocket   FileType = 5
	TypeCharDev  FileType = 6
	TypeBlockDev FileType = 7
)

// Special says t is a FIFO, socket or device node.
func (t FileType) Special() bool { return t >= TypeFIFO && t <= TypeBlockDev }

// Valid says t is one of the inode types.
func (t FileType) Valid() bool { return t >= TypeFile && t <= TypeBlockDev }

// ParseFileType is the FileType String names.
func ParseFileType(s string) (FileType, bool) {
	for t := TypeFile; t <= TypeBlockDev; t++ {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

func (t FileType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeSocket:
		return "socket"
	case TypeCharDev:
		return "chardev"
	case TypeBlockDev:
		return "blockdev"
	}
	return "unknown"
}

// Inode is the metadata of one file or directory.
type Inode struct {
	Ino   uint64   `msgpack:"i"`
	Type  FileType `msgpack:"y"`
	Size  int64    `msgpack:"s"`
	Mode  uint32   `msgpack:"m"` // permission bits with setuid, setgid and sticky (07777)
	MTime int64    `msgpack:"t"` // Unix nanoseconds, set by the primary.
	Nlink uint32   `msgpack:"l"` // 0 for an orphan: unlinked, kept while a mount has it open
	Uid   uint32   `msgpack:"u,omitempty"`
	Gid   uint32   `msgpack:"gi,omitempty"`
	// ATime is set at creation and by OpUpdate only: reads do not write
	// (like a noatime mount), so a read costs no log entry.
	ATime int64 `msgpack:"at,omitempty"`
	// CTime is the last change of the inode itself: content, attributes,
	// link count or a name pointing at it.
	CTime int64 `msgpack:"ct,omitempty"`
	// Gen counts the changes of a file's content. OpUpdate names the Gen
	// its new content was computed from, and fails with CodeConflict when
	// another change came first; a mount uses it to tell a stale cache.
	Gen uint64 `msgpack:"gn,omitempty"`
	// Target is a symlink's content.
	Target string `msgpack:"tg,omitempty"`
	// Rdev is a device node's device number (Linux's encoding, as
	// stat(2)'s st_rdev); 0 for every other type.
	Rdev uint64 `msgpack:"rd,omitempty"`
	// Parent is a directory's parent directory (0 for the root and for
	// directories written before the field existed, until InitNamespace
	// fills it in): a directory has exactly one name, so it has one
	// parent, and a rename walks up from its destination to refuse a
	// directory moved below itself.
	Parent uint64 `msgpack:"pa,omitempty"`
	// Hash is the hex SHA-256 of the whole content for a file written
	// whole; a file changed in place (OpUpdate) gets "chunks:" and the
	// SHA-256 of its chunk list instead, which names the content as
	// uniquely without reading all of it.
	Hash   string     `msgpack:"h,omitempty"`
	Chunks []ChunkRef `msgpack:"c,omitempty"`
	// Data holds the whole content of a small file, kept in the metadata
	// instead of chunks: one replicated log entry makes it durable, where
	// chunks would cost a chunk file and its fsync on every member.
	Data []byte `msgpack:"d,omitempty"`
	// DataKey is the ID of the data key Data is sealed with at rest; 0
	// when Data is in clear. Size is always the plaintext's.
	DataKey uint32 `msgpack:"dk,omitempty"`
	// ContentType is the media type a file was uploaded with (HTTP's
	// Content-Type), served back on reads; empty when none was given.
	ContentType string `msgpack:"mt,omitempty"`
	// Usage is a directory's totals below it, filled in by namespace
	// reads (the namespace keeps them apart from the inode's record,
	// which never holds them).
	Usage *Usage `msgpack:"us,omitempty"`
	// Object is what the S3 API keeps of a file besides its content; nil
	// for a file written otherwise. A put replaces it with the put's.
	Object *Object `msgpack:"ob,omitempty"`
}

// Object is what S3 keeps of an object besides its content: the ETag its
// clients check (the hex MD5 of the content, or "MD5-N" of a multipart
// upload) and its user metadata (x-amz-meta-*, lower-case names without
// the prefix). The ETag describes the content whose Hash is For: a change
// of the content by other means (a mount, a write at an offset) leaves it
// stale, and it is then not served.
//
// A directory's Object holds only Public: a bucket made public-read,
// whose objects anyone may list and read through the S3 API without
// signing (set by OpUpdate's SetPublic, by the directory's owner).
type Object struct {
	ETag string            `msgpack:"e,omitempty"`
	For  string            `msgpack:"f,omitempty"`
	Meta map[string]string `msgpack:"m,omitempty"`
	// Headers are the standard headers an object was put with and is
	// served with (Cache-Control, Content-Disposition, Content-Encoding,
	// Content-Language, Expires), by their canonical names.
	Headers map[string]string `msgpack:"hd,omitempty"`
	Public  bool              `msgpack:"pb,omitempty"`
}

// Usage is what a directory holds, at every depth below it: the bytes of
// its files and symlinks (a file with several names counts under each),
// how many files and symlinks, how many directories.
type Usage struct {
	Bytes int64 `msgpack:"b"`
	Files int64 `msgpack:"f"`
	Dirs  int64 `msgpack:"d"`
}

// Add adds d to u.
func (u *Usage) Add(d Usage) {
	u.Bytes += d.Bytes
	u.Files += d.Files
	u.Dirs += d.Dirs
}

// Times returns u multiplied by k (-1 takes it away).
func (u Usage) Times(k int64) Usage {
	return Usage{Bytes: u.Bytes * k, Files: u.Files * k, Dirs: u.Dirs * k}
}

// DirEntry is one name in a directory listing, with the attributes of its
// inode (Chunks and Data left out), so a mount can answer the lookups that
// follow a listing without asking again.
type DirEntry struct {
	Name  string `msgpack:"n"`
	Inode        // inlined: the inode's own keys
}

// OpKind is what a log entry does.
type OpKind uint8

// The operations of the replicated log.
const (
	OpNoop   OpKind = 0 // written by a new primary to commit its predecessors' entries
	OpPut    OpKind = 1 // create or replace the file at Path with File
	OpDelete OpKind = 2 // remove Path (Recursive for a non-empty directory)
	OpMkdir  OpKind = 3 // create directory Path (Parents: like mkdir -p)
	OpRename OpKind = 4 // move Path to To, replacing like rename(2)
	OpCopy   OpKind = 5 // copy Path to To, sharing chunks
	OpConfig OpKind = 6 // set the group's voting members to Members
	// The POSIX operations a mount needs. Paths of these (and of the ops
	// above) may be relative to a directory inode: see Op.Dir.
	OpCreate  OpKind = 7  // create an empty file at Path (Excl: fail if it exists)
	OpSymlink OpKind = 8  // create a symlink at Path pointing at Target
	OpLink    OpKind = 9  // add the name To for the file at Path (a hard link)
	OpUpdate  OpKind = 10 // replace content (File, checked against Gen) and/or set Attr
	OpRelease OpKind = 11 // drop the orphan at Path, kept since its last unlink
	// The cluster's users (see users.go); only a Root or nil Cred may
	// send them.
	OpUserAdd    OpKind = 12 // add User and make its home directory
	OpUserRemove OpKind = 13 // remove the user User.Name (its files stay)
	OpUserToken  OpKind = 14 // replace the token hash of User.Name
	// S3 access keys (AccessKey): OpUserKeyAdd gives User.Name the key
	// User.Keys[0]; OpUserKeyRemove takes away the key whose ID is
	// User.Keys[0].ID.
	OpUserKeyAdd    OpKind = 15
	OpUserKeyRemove OpKind = 16
	// OpLock takes, renews or gives up a lease on the lock of the inode
	// at Path, or keeps waiters in its queue: Lock says which (locks.go).
	OpLock OpKind = 17
	// OpMknod creates a special file at Path: Node says which type, Rdev
	// a device node's number. Device nodes take root, as mknod(2).
	OpMknod OpKind = 18
	// Orphans (files unlinked while a mount has them open) are leased to
	// that mount: OpKeepOrphan extends the lease of the orphan at Path
	// to TTL from the op's clock (a mount renews the orphans it holds),
	// and OpCollectOrphans drops every orphan whose lease ran out (the
	// meta group's primary sends it), so a mount that died leaves
	// nothing behind for longer than its lease.
	OpKeepOrphan     OpKind = 19
	OpCollectOrphans OpKind = 20
)

// Orphan leases: an orphan starts with DefaultOrphanTTL, and a keep may
// ask for MinOrphanTTL to MaxOrphanTTL. OpCollectOrphans drops at most
// MaxOrphansCollected at once.
const (
	DefaultOrphanTTL    = time.Minute
	MinOrphanTTL        = time.Second
	MaxOrphanTTL        = 24 * time.Hour
	MaxOrphansCollected = 1000
)

// Cred is who an op or a read acts for, as a router authenticated them.
// A nil Cred is the cluster itself (or a cluster run without security):
// no permission check applies, and owners come from Op.Uid/Op.Gid.
type Cred struct {
	Uid    uint32   `msgpack:"u"`
	Gid    uint32   `msgpack:"g"`
	Groups []uint32 `msgpack:"gs,omitempty"` // supplementary groups
	// Root bypasses permission checks, as uid 0 does on Linux (an admin
	// user, or root on a trusted mount host).
	Root bool `msgpack:"r,omitempty"`
	// Host: the request comes from a trusted mount host acting for Uid.
	// The host's kernel resolved the path, so an inode it names by
	// number is not checked for reachability, and the owner of a file
	// may read and write its content whatever its mode, as an NFS server
	// lets a program keep writing a file it created read-only.
	Host bool `msgpack:"h,omitempty"`
}

// User is an account of the cluster. Only a hash of its token is kept.
type User struct {
	Name   string   `msgpack:"n"`
	Uid    uint32   `msgpack:"u"`
	Gid    uint32   `msgpack:"g"`
	Groups []uint32 `msgpack:"gs,omitempty"`
	// Admin: root in permission checks, and may manage users.
	Admin bool `msgpack:"a,omitempty"`
	// Mount: may act for other uids from a trusted mount host.
	Mount bool `msgpack:"m,omitempty"`
	// TokenHash is the SHA-256 of the token. All zeros means no token:
	// nobody can sign in as the user.
	TokenHash [32]byte `msgpack:"t"`
	Created   int64    `msgpack:"c"` // the time of the OpUserAdd
	// Keys are the user's S3 access keys (at most MaxAccessKeys).
	Keys []AccessKey `msgpack:"ks,omitempty"`
	// AutoUid and AutoGid are only set in an OpUserAdd, never stored:
	// pick Uid (the lowest free uid >= 1000), and set Gid to Uid.
	AutoUid bool `msgpack:"au,omitempty"`
	AutoGid bool `msgpack:"ag,omitempty"`
}

// AccessKey is an S3 access key: a request signed with its secret (AWS
// Signature V4) acts as the key's user. Unlike a token, whose hash is
// enough to check it, a signature can only be checked with the secret
// itself, so the secret is kept sealed with the cluster's data key: a
// copy of the database alone signs nothing.
type AccessKey struct {
	ID string `msgpack:"i"` // 20 characters of A-Z and 2-7, public
	// Secret is the secret key, sealed with the data key SealKey
	// (secure.Sealer.SealInline); SealKey 0: in clear (a cluster run
	// without security, where signatures are not checked).
	Secret  []byte `msgpack:"s"`
	SealKey uint32 `msgpack:"sk,omitempty"`
	Created int64  `msgpack:"c"`
}

// MaxAccessKeys bounds the access keys of one user: enough to rotate
// (add the new one, move every client, remove the old) with a few in use.
const MaxAccessKeys = 8

// AccessKeyHash is the key an access key ID is indexed under with the
// tokens' hashes, which it cannot collide with.
func AccessKeyHash(id string) [32]byte {
	return sha256.Sum256([]byte("shoal s3 access key\x00" + id))
}

// Holds reports whether hash is u's token hash or the AccessKeyHash of
// one of its access keys: what the tokens index may name u for.
func (u *User) Holds(hash [32]byte) bool {
	if hash == [32]byte{} {
		return false
	}
	found := subtle.ConstantTimeCompare(u.TokenHash[:], hash[:])
	for _, k := range u.Keys {
		h := AccessKeyHash(k.ID)
		found |= subtle.ConstantTimeCompare(h[:], hash[:])
	}
	return found == 1
}

// ValidAccessKeyID reports whether id has the shape of an access key ID.
func ValidAccessKeyID(id string) bool {
	if len(id) != 20 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Op is one state-machine command carried by a log entry. Everything that
// varies between members (the time, the content) is fixed by the primary
// when it proposes the op, so applying it is deterministic.
type Op struct {
	Kind      OpKind `msgpack:"k"`
	Path      string `msgpack:"p,omitempty"`
	To        string `msgpack:"o,omitempty"`
	Recursive bool   `msgpack:"r,omitempty"` // OpDelete
	Parents   bool   `msgpack:"a,omitempty"` // OpMkdir
	Time      int64  `msgpack:"t,omitempty"` // Unix nanoseconds
	Mode      uint32 `msgpack:"m,omitempty"` // OpPut, OpCreate, OpMkdir; see ModeGiven
	// ModeGiven says Mode is what the caller asked for, 0 included (a
	// file created with mode 0000, or under umask 0777). Without it a
	// Mode of 0 means the default, 0644 or 0755: so do ops logged before
	// the field existed.
	ModeGiven bool     `msgpack:"mg,omitempty"`
	File      *Inode   `msgpack:"f,omitempty"` // OpPut: size, hash and chunks
	Members   []Member `msgpack:"v,omitempty"` // OpConfig
	// Forming (OpConfig): the group has not yet had the voting members
	// its primary keeps (replication.Config.GroupSize). It is set by the
	// first configuration of a new group and cleared for good by the
	// entry that reaches that size; until then the group takes no client
	// requests, so the first write it acknowledges is on a group that can
	// lose a member and keep a majority. Configurations written before
	// this field existed lack it: their groups count as formed.
	Forming bool `msgpack:"fm,omitempty"`
	// ReqID identifies the client request the op comes from: a retry of
	// the same request is applied once (see store/requests.go).
	ReqID string `msgpack:"q,omitempty"`
	// ReqSum is a digest of the client request ReqID names (its method,
	// target and body): an op that reuses a recorded ReqID with another
	// ReqSum is a different request under the same idempotency key, and
	// fails with CodeKeyReused instead of being answered as a retry.
	ReqSum []byte `msgpack:"qs,omitempty"`
	// Clock is the group's clock when the primary proposed the op:
	// nanoseconds of leadership the group has seen, counted by each
	// primary's monotonic clock from the highest Clock it had applied.
	// It never runs ahead of real time and no machine's wall clock moves
	// it, so what expires by it (idempotency records) never expires early.
	// 0: an op from before the group kept a clock.
	Clock int64 `msgpack:"ck,omitempty"`
	// Dir, when not 0, is the inode Path is resolved from instead of the
	// root; ToDir is the same for To. Path "/" then names Dir itself. A
	// mount addresses everything by inode number, so a name another
	// client moved meanwhile cannot send its change to the wrong file.
	Dir   uint64 `msgpack:"dr,omitempty"`
	ToDir uint64 `msgpack:"td,omitempty"`
	// Uid and Gid own what OpPut, OpCreate, OpMkdir and OpSymlink make
	// when Cred is nil (see Owner for a Root Cred).
	Uid uint32 `msgpack:"u,omitempty"`
	Gid uint32 `msgpack:"gi,omitempty"`
	// Excl: OpCreate fails with CodeExists if the name is taken.
	Excl bool `msgpack:"x,omitempty"`
	// NoReplace: OpRename and OpLink fail with CodeExists if To is taken.
	NoReplace bool `msgpack:"nr,omitempty"`
	// NotDir (unlink) and OnlyDir (rmdir) make OpDelete fail with
	// CodeIsDir or CodeNotDir when Path is, or is not, a directory.
	NotDir  bool `msgpack:"nd,omitempty"`
	OnlyDir bool `msgpack:"od,omitempty"`
	// Orphan: when OpDelete or OpRename removes a file's last link, keep
	// the inode with Nlink 0 (an open file a mount still reads and
	// writes) until an OpRelease drops it.
	Orphan bool `msgpack:"or,omitempty"`
	// WantDirs asks for Result.Dirs (a mount's change of names).
	WantDirs bool `msgpack:"wd,omitempty"`
	// Target is the content of the symlink OpSymlink makes.
	Target string `msgpack:"tg,omitempty"`
	// TTL is the lease OpKeepOrphan asks for, in nanoseconds.
	TTL int64 `msgpack:"tl,omitempty"`
	// Node and Rdev are the type and device number of what OpMknod makes.
	Node FileType `msgpack:"nk,omitempty"`
	Rdev uint64   `msgpack:"rd,omitempty"`
	// Gen is the content generation OpUpdate's File was computed from.
	Gen uint64 `msgpack:"gn,omitempty"`
	// Attr holds the attributes OpUpdate sets.
	Attr *SetAttr `msgpack:"sa,omitempty"`
	// Cred is who the op acts for: permissions are checked for it, and
	// it owns what the op makes (see perm.go). nil: the cluster itself.
	Cred *Cred `msgpack:"cr,omitempty"`
	// Owner: Uid and Gid were given explicitly, and a Root Cred makes
	// its new inodes theirs (a mount host acting as root computes the
	// owner itself).
	Owner bool `msgpack:"ow,omitempty"`
	// User is the account OpUserAdd, OpUserRemove and OpUserToken act on.
	User *User `msgpack:"us,omitempty"`
	// Bootstrap: OpUserAdd applies only while no user exists, so a
	// router can seed the first admin without racing another.
	Bootstrap bool `msgpack:"bs,omitempty"`
	// IfMatch makes the op apply only if Path names an inode whose Hash
	// is IfMatch ("*": any inode); IfAbsent only if nothing is at the
	// op's destination (To for OpRename, OpCopy and OpLink, Path for the
	// others). A condition that fails makes the op fail with CodePrecond
	// and change nothing: HTTP's If-Match and If-None-Match: *, checked
	// in the same step as the change, so no other write comes between.
	IfMatch  string `msgpack:"im,omitempty"`
	IfAbsent bool   `msgpack:"ia,omitempty"`
	// Lock is what OpLock does.
	Lock *LockOp `msgpack:"lk,omitempty"`
	// Fence makes the op apply only while the lease whose fencing token
	// it is still holds its lock (not released, not run out, and so not
	// passed on to a newer holder); otherwise the op fails with
	// CodeFenced and changes nothing.
	Fence uint64 `msgpack:"fn,omitempty"`
}

// SetAttr is what OpUpdate changes besides content: each field applies
// when its bit is in Valid.
type SetAttr struct {
	Valid uint8  `msgpack:"v"`
	Mode  uint32 `msgpack:"m,omitempty"`
	Uid   uint32 `msgpack:"u,omitempty"`
	Gid   uint32 `msgpack:"g,omitempty"`
	ATime int64  `msgpack:"a,omitempty"`
	MTime int64  `msgpack:"t,omitempty"`
	// Public makes a directory public-read, or private again (see
	// Object.Public); directories only, their owner only.
	Public bool `msgpack:"pb,omitempty"`
}

// The bits of SetAttr.Valid.
const (
	SetMode uint8 = 1 << iota
	SetUid
	SetGid
	SetATime
	SetMTime
	SetATimeNow // the op's time, which the primary fixes
	SetMTimeNow
	SetPublic
)

// ModeMask is the part of a mode an inode keeps: permissions plus the
// setuid, setgid and sticky bits.
const ModeMask = 0o7777

// Member is a voting member of a group's configuration.
type Member struct {
	ID   uint64 `msgpack:"i"`
	Name string `msgpack:"n"`
	Addr string `msgpack:"a"` // replication listen address
}

// Result is the outcome of applying an op, the same on every member.
type Result struct {
	Code    Code `msgpack:"c,omitempty"`
	Created bool `msgpack:"n,omitempty"` // OpPut, OpMkdir, OpCreate: the path did not exist before
	// Inode is the inode the op made or changed, without Chunks and Data,
	// for the ops a mount sends (create, mkdir, symlink, link, update),
	// which need its attributes at once, for OpPut (the answer to an
	// upload describes the file) and for OpUserAdd: the home.
	Inode *Inode `msgpack:"in,omitempty"`
	// Dirs are the directories whose entries the op made, removed or
	// moved, as they are after it (attributes only: their new times and
	// links), when the op asked for them (Op.WantDirs), so that a mount
	// need not ask for them again. A retry answered from the record of
	// its first try has none.
	Dirs []Inode `msgpack:"ds,omitempty"`
	// User is the account OpUserAdd or OpUserToken stored, without its
	// token hash.
	User *User `msgpack:"ur,omitempty"`
	// Lock is the lock OpLock left (holders' keys included: the router
	// gives a new lease's key to its holder alone).
	Lock *LockState `msgpack:"lk,omitempty"`
}

// Err returns the namespace error of the result, or nil.
func (r Result) Err() error { return r.Code.Err() }

// Entry is one record of the replicated log.
type Entry struct {
	Index  uint64 `msgpack:"i"`
	Ballot Ballot `msgpack:"b"`
	Op     Op     `msgpack:"o"`
}

// OwnedInode is one inode a user owns, as store.Owned lists it.
type OwnedInode struct {
	// Path is one path of the inode from the root ("" for an orphan,
	// which has none); a file with several names shows the first.
	Path  string `msgpack:"p"`
	Inode Inode  `msgpack:"i"` // attributes only: no Chunks or Data
}

// BucketDigest summarises the chunks a member holds whose hash starts with one byte.
type BucketDigest struct {
	Count uint32 `msgpack:"n"`
	Xor   Hash   `msgpack:"x"` // XOR of the hashes
}
