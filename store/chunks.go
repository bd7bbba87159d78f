package store

// On-disk format of a chunk directory DIR:
//
//	DIR/ab/abcdef0123...-1a2b3c4d   one file per chunk, named by the lower-case
//	                                hex SHA-256 of its content and its CRC-32C
//	                                (8 hex digits), fanned out on the first byte
//	DIR/ab/abcdef0123...            a chunk written before checksums were kept
//	                                in the name (read, checked by its hash, and
//	                                renamed to carry its checksum)
//	DIR/ab/.tmp-*                   a chunk being written; deleted at open
//
// The file holds the chunk's content and nothing else. A Put checks the
// content against its SHA-256 before it writes it. A router's read
// (GetWithCRC) takes the content as it is on disk with the CRC-32C in the
// name and checks it where it uses it, after the network: a fifteenth of
// the cost of hashing it again, and it catches what a disk or a wire does
// to bytes by accident. Get, which serves reads between members, repair
// and the scrubber, checks both the SHA-256 and the checksum.
//
// A chunk file is written to a temporary name, fsynced, renamed into place
// and its directory fsynced, so after a crash a chunk file either holds the
// whole content or does not exist. A fan-out directory is fsynced into DIR
// when a Put creates it, and at open DIR and every fan-out directory are
// fsynced: a chunk in the index (which a Put of it only touches) is then
// durable, even if a process killed mid-Put left its rename unsynced. Bit rot can still change it later, so
// every Get checks the bytes and deletes a file that no longer matches:
// the chunk then counts as missing, and repair or the next Put rewrites it.
//
// Garbage collection deletes a chunk only when no file references it and
// it has been idle for a grace period, because a writer stores chunks
// before it commits the file that lists them: a chunk that looks
// unreferenced may belong to a write in flight. That is also why a Put of a
// chunk that is already present touches it: the write that re-uses it must
// not find it collected before its commit lands. Idle time is measured on
// the process's monotonic clock, never against file mtimes: a machine's
// wall clock that jumps an hour ahead must not make a chunk stored a
// moment ago look an hour old. So the index counts every chunk found at
// open as used at open (a restarted node collects nothing for one grace
// period), and a file's mtime on disk (set by writes and touches) is only
// a hint for the operator.

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"shoal/meta"
)

const tempPrefix = ".tmp-"

// chunkInfo is what the index knows of one chunk file.
type chunkInfo struct {
	size int64
	// crc is the content's CRC-32C, from the file's name, when hasCRC;
	// a file without one was written before checksums were kept.
	crc    uint32
	hasCRC bool
	// lastUse is when a Put or a touch last used the chunk, or when the
	// store was opened: a time with a monotonic reading.
	lastUse time.Time
}

// ChunkStore keeps chunk content as one file per chunk, named by its hash,
// with an in-memory index of the files so that listing, digests and space
// accounting never walk the directory after open.
type ChunkStore struct {
	fs  FS
	dir string

	// metaUsage, when set, reports the bytes of meta.db in use and in
	// free pages: chunks and metadata share the node's capacity (see
	// space.go). A store of its own (tests) counts its chunks alone.
	metaUsage func() (inUse, free int64)

	// mu guards the index, used, limits and inflight. It is also held
	// from a Put's "already present?" check to its return, and from its
	// final rename to the index insert, so that RemoveIfIdle, which checks
	// idleness and deletes under mu, cannot delete a chunk that a Put has
	// just reported stored.
	mu     sync.Mutex
	index  map[meta.Hash]chunkInfo
	used   int64 // sum of index sizes
	limits Limits
	// inflight is the bytes of new chunks admitted and being written:
	// concurrent Puts each see the others' room taken before the disk
	// shows it.
	inflight int64
	// opened is when the store was opened: the last use of every chunk
	// found then.
	opened time.Time
}

// OpenChunkStore opens (creating if needed) the chunk directory dir on
// fsys, loads its index and deletes temporary files left by writes a crash
// interrupted.
func OpenChunkStore(fsys FS, dir string) (*ChunkStore, error) {
	if err := mkdirAllDurable(fsys, dir, 0o755); err != nil {
		return nil, fmt.Errorf("create chunk directory %s: %w", dir, err)
	}
	s := &ChunkStore{fs: fsys, dir: dir, index: map[meta.Hash]chunkInfo{}, opened: time.Now()}
	if err := s.loadDir(dir); err != nil {
		return nil, fmt.Errorf("load chunk index from %s: %w", dir, err)
	}
	return s, nil
}

// loadDir fills the index from the files under dir, depth first in name
// order, and syncs dir (see the top of this file).
func (s *ChunkStore) loadDir(dir string) error {
	entries, err := s.fs.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, d := range entries {
		p := filepath.Join(dir, d.Name())
		if d.IsDir() {
			if err := s.loadDir(p); err != nil {
				return err
			}
			continue
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove leftover temporary chunk file: %w", err)
			}
			continue
		}
		h, c, ok := parseChunkName(d.Name())
		if !ok || p != s.pathOf(h, c) || !d.Type().IsRegular() {
			continue // strangers: not ours to delete, not chunks to serve
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		c.size, c.lastUse = fi.Size(), s.opened
		if old, dup := s.index[h]; dup {
			// The same chunk under two names (a copy made by hand, say):
			// the better copy is indexed, and the other removed if it is
			// corrupt or a copy of it (ours, it would never be
			// collected).
			var drop chunkInfo
			var remove bool
			c, drop, remove = s.pickCopy(h, old, c)
			if remove {
				if err := s.fs.Remove(s.pathOf(h, drop)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove duplicate chunk file: %w", err)
				}
			}
		}
		s.insertLocked(h, c)
	}
	return s.fs.SyncDir(dir)
}

// pathOf is where the file of chunk h, as c describes it, is.
func (s *ChunkStore) pathOf(h meta.Hash, c chunkInfo) string {
	return filepath.Join(s.dir, h.String()[:2], chunkName(h, c))
}

// file returns the path of chunk h's file and what the index knows of
// it, if the index holds it.
func (s *ChunkStore) file(h meta.Hash) (string, chunkInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.index[h]
	return s.pathOf(h, c), c, ok
}

// Put stores data under h after checking that h is its hash. Storing a chunk
// that is already present only touches it (see the top of this file), which
// also makes retries idempotent. A new chunk that would take the node past
// its capacity, or its disk under the reserve kept for metadata, is
// refused with ErrNoSpace (see Limits.ChunkRoom).
func (s *ChunkStore) Put(h meta.Hash, data []byte) error {
	if meta.HashOf(data) != h {
		return fmt.Errorf("store chunk %s: content does not match its hash: %w", h, meta.ErrCorrupt)
	}
	return s.PutChecked(h, data)
}

// PutChecked is Put for a caller that has just checked h against data
// itself: a chunk's bytes are hashed once per node, not twice.
func (s *ChunkStore) PutChecked(h meta.Hash, data []byte) error {
	_, err := s.Store(h, data)
	return err
}

// Store is PutChecked that also reports whether it wrote the chunk: a
// chunk already held (or stored meanwhile by a concurrent Put) is only
// touched, which says nothing of whether the disk takes writes.
func (s *ChunkStore) Store(h meta.Hash, data []byte) (wrote bool, err error) {
	size := int64(len(data))
	s.mu.Lock()
	if s.touchLocked(h, time.Now()) {
		s.mu.Unlock()
		return false, nil
	}
	if err := s.limits.ChunkRoom(s.usageLocked(), s.inflight, size); err != nil {
		s.mu.Unlock()
		return false, fmt.Errorf("store chunk %s: %w", h, err)
	}
	// Admitted: the room stays taken until the chunk is in the index
	// (and so in used) or has failed.
	s.inflight += size
	s.mu.Unlock()
	c := chunkInfo{size: size, crc: meta.ChunkCRC(data), hasCRC: true}
	tmp, err := s.writeTemp(h, data)
	s.mu.Lock()
	s.inflight -= size
	if err != nil {
		s.mu.Unlock()
		return false, err
	}
	p := s.pathOf(h, c)
	// A concurrent Put of the same chunk may have landed while this one
	// wrote.
	if s.touchLocked(h, time.Now()) {
		s.mu.Unlock()
		s.fs.Remove(tmp)
		return false, nil
	}
	if err := s.fs.Rename(tmp, p); err != nil {
		s.mu.Unlock()
		s.fs.Remove(tmp)
		return false, wrapSpace(fmt.Errorf("store chunk %s: %w", h, err))
	}
	c.lastUse = time.Now()
	s.insertLocked(h, c)
	s.mu.Unlock()
	// The directory sync runs outside mu so that concurrent Puts do not
	// queue behind each other's fsyncs. The entry inserted above is fresh,
	// so RemoveIfIdle with any grace period leaves it alone meanwhile.
	if err := s.fs.SyncDir(filepath.Dir(p)); err != nil {
		return false, wrapSpace(fmt.Errorf("store chunk %s: %w", h, err))
	}
	return true, nil
}

// writeTemp writes data to a fsynced temporary file next to h's final name
// and returns its path.
func (s *ChunkStore) writeTemp(h meta.Hash, data []byte) (string, error) {
	dir := filepath.Dir(s.pathOf(h, chunkInfo{}))
	if err := mkdirAllDurable(s.fs, dir, 0o755); err != nil {
		return "", wrapSpace(fmt.Errorf("store chunk %s: %w", h, err))
	}
	f, err := s.fs.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return "", wrapSpace(fmt.Errorf("store chunk %s: %w", h, err))
	}
	tmp := f.Name()
	fail := func(verb string, err error) (string, error) {
		f.Close()
		s.fs.Remove(tmp)
		return "", wrapSpace(fmt.Errorf("%s chunk %s: %w", verb, h, err))
	}
	if _, err := writeNew(f, data); err != nil {
		return fail("write", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := f.Close(); err != nil {
		s.fs.Remove(tmp)
		return "", wrapSpace(fmt.Errorf("close chunk %s: %w", h, err))
	}
	return tmp, nil
}

// Get returns the content of chunk h, verified against its hash. A file
// whose content fails it is deleted, so the chunk reads as missing until a
// Put rewrites it; the error wraps ErrCorrupt. A file that passes but has
// no checksum in its name, or a wrong one, is renamed to carry the right
// one.
func (s *ChunkStore) Get(h meta.Hash) ([]byte, error) {
	b, c, err := s.read(h)
	if err != nil {
		return nil, err
	}
	b, _, err = s.check(h, b, c)
	return b, err
}

// GetWithCRC returns the content of chunk h and its CRC-32C, for a caller
// that checks the content against the checksum where it uses it (see
// wire.GetChunk.CallerChecks), and repairs a bad copy with a Put after a
// Get has found it bad and removed it. The content of a file with a
// checksum is not checked here; a file without one is checked as Get
// checks it, and its checksum computed from what passed.
func (s *ChunkStore) GetWithCRC(h meta.Hash) ([]byte, uint32, error) {
	b, c, err := s.read(h)
	if err != nil {
		return nil, 0, err
	}
	if c.hasCRC {
		return b, c.crc, nil
	}
	return s.check(h, b, c)
}

// check verifies content b read from the file of chunk h, which c
// describes, and returns it with its checksum. A file that holds the
// chunk but lacks its checksum in its name, or carries a wrong one, is
// renamed to carry the right one: its content is good, and may be the
// last copy.
func (s *ChunkStore) check(h meta.Hash, b []byte, c chunkInfo) ([]byte, uint32, error) {
	if meta.HashOf(b) != h {
		recycle(b)
		b, err := s.dropCorrupt(h)
		if err != nil {
			return nil, 0, err
		}
		return b, meta.ChunkCRC(b), nil
	}
	crc := meta.ChunkCRC(b)
	if !c.hasCRC || crc != c.crc {
		s.mu.Lock()
		s.renameLocked(h, c, crc)
		s.mu.Unlock()
	}
	return b, crc, nil
}

// read returns the content of chunk h's file as it is on disk, and what
// the index knew of the file it read. A file renamed meanwhile (given a
// checksum, or replaced by a Put) is looked for again under its new name.
func (s *ChunkStore) read(h meta.Hash) ([]byte, chunkInfo, error) {
	p, c, ok := s.file(h)
	for ok {
		b, err := readFile(s.fs, p)
		if err == nil {
			return b, c, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, c, fmt.Errorf("read chunk %s: %w", h, err)
		}
		var again string
		if again, c, ok = s.file(h); again == p {
			s.forgetIfGone(h)
			break
		}
		p = again
	}
	return nil, c, fmt.Errorf("chunk %s: %w", h, meta.ErrNotFound)
}

// renameLocked renames the file of chunk h, which c describes, to carry
// crc, the checksum of content that just passed its hash (mu held). The
// rename is not synced: after a crash the file has either name, and both
// hold the chunk. A file renamed or replaced meanwhile, or a failed
// rename, is left as it is.
func (s *ChunkStore) renameLocked(h meta.Hash, c chunkInfo, crc uint32) {
	now, ok := s.index[h]
	if !ok || now.hasCRC != c.hasCRC || now.crc != c.crc {
		return
	}
	to := now
	to.crc, to.hasCRC = crc, true
	if err := s.fs.Rename(s.pathOf(h, now), s.pathOf(h, to)); err != nil {
		return
	}
	s.index[h] = to
}

// Recycle takes back the memory of content GetWithCRC returned, for later
// reads, once the caller no longer reads it (and nothing else does: not a
// copy or a slice of it kept elsewhere).
func (s *ChunkStore) Recycle(b []byte) { recycle(b) }

// forgetIfGone drops h from the index if its file has vanished behind the
// store's back. It stats again under mu: a Put may have renamed the file
// into place since the caller looked.
func (s *ChunkStore) forgetIfGone(h meta.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.index[h]
	if !ok {
		return
	}
	if _, err := s.fs.Stat(s.pathOf(h, c)); errors.Is(err, fs.ErrNotExist) {
		s.deleteLocked(h)
	}
}

// dropCorrupt deletes the file of h after a read found it corrupt. It reads
// and checks it again under mu, because a Remove and a Put may have
// replaced it with good content since the first read, and that must stay.
func (s *ChunkStore) dropCorrupt(h meta.Hash) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.index[h]
	if !ok {
		return nil, fmt.Errorf("chunk %s: %w", h, meta.ErrNotFound)
	}
	p := s.pathOf(h, c)
	b, err := readFile(s.fs, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.deleteLocked(h)
		return nil, fmt.Errorf("chunk %s: %w", h, meta.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("read chunk %s: %w", h, err)
	case meta.HashOf(b) == h:
		if crc := meta.ChunkCRC(b); !c.hasCRC || crc != c.crc {
			s.renameLocked(h, c, crc)
		}
		return b, nil
	}
	if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("chunk %s on disk: %w; removing it failed: %w", h, meta.ErrCorrupt, err)
	}
	s.deleteLocked(h)
	return nil, fmt.Errorf("chunk %s on disk: %w; the file was removed, store the chunk again to repair it", h, meta.ErrCorrupt)
}

// Has reports whether chunk h is present. It does not verify it.
func (s *ChunkStore) Has(h meta.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.index[h]
	return ok
}

// Size returns the size of chunk h, if present.
func (s *ChunkStore) Size(h meta.Hash) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.index[h]
	return c.size, ok
}

// RemoveAll deletes every chunk: the node no longer serves the group
// they belong to.
func (s *ChunkStore) RemoveAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h := range s.index {
		if err := s.removeLocked(h); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes chunk h; removing an absent chunk is not an error.
func (s *ChunkStore) Remove(h meta.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeLocked(h)
}

func (s *ChunkStore) removeLocked(h meta.Hash) error {
	c, ok := s.index[h]
	if !ok {
		return nil
	}
	err := s.fs.Remove(s.pathOf(h, c))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove chunk %s: %w", h, err)
	}
	s.deleteLocked(h)
	return nil
}

func (s *ChunkStore) insertLocked(h meta.Hash, c chunkInfo) {
	s.deleteLocked(h)
	s.index[h] = c
	s.used += c.size
}

func (s *ChunkStore) deleteLocked(h meta.Hash) {
	if c, ok := s.index[h]; ok {
		s.used -= c.size
		delete(s.index, h)
	}
}

// wrapSpace marks a failed chunk write: a full disk with meta.ErrNoSpace
// (the group has no room, and another may), a broken one with
// meta.ErrDiskFailed.
func wrapSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", meta.ErrNoSpace, err)
	}
	return diskFault(err)
}
