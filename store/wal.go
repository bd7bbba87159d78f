package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"

	"shoal/meta"
)

// The log's entries that are not applied yet live in files of their own,
// DIR/wal/ID-SEQ.log, not in meta.db: appending a batch is one write and
// one fdatasync, and it waits neither for bbolt's writer lock (held by an
// apply committing) nor for a B-tree. An apply moves its entries into
// meta.db's log bucket in the transaction that applies them, so the
// bucket holds the entries from the snapshot point through the applied
// index and these files the rest.
//
// A file is a sequence of records:
//
//	length  uint32, big-endian: of the payload
//	crc     uint32, big-endian: CRC-32C of the payload
//	payload first uint64, count uint32, then count msgpack Entries with
//	        indexes first, first+1, ...
//
// A record replaces the entries from its first index on, as Append does.
// Reading every file of the store's ID in order of SEQ, after meta.db's
// applied index, gives the entries that follow it. A new file starts
// with a record of every entry not yet applied, so the files before it
// can go.
//
// ID is a random number kept in meta.db (state key wal); a meta.db that
// replaces the store's (a snapshot, Quarantine, Wipe) has another, so the
// files of the one it replaced are never read with it. Opening the store
// removes them.
//
// A record cut short at the end of a file is a write a crash interrupted:
// it was never acknowledged, and reading stops there. A record that fails
// its checksum with more records after it is damage: Open fails with a
// CorruptError, as for a damaged meta.db (see Quarantine).
const (
	walDirName = "wal"
	walHeader  = 8
)

var (
	keyWAL = []byte("wal")

	// walRotateBytes is the size past which the next append starts a new
	// file (a variable for tests).
	walRotateBytes int64 = 8 << 20
)

// wal holds the log's entries after the applied index: in memory (tail)
// and durably, in the files described above.
type wal struct {
	fs  FS
	dir string
	id  uint64
	// bytes is the size of the files on disk, for the node's usage.
	bytes *atomic.Int64

	// wmu is held by the one writer (an append, and the new file it may
	// start). f is the file appends go to, nil until the first append
	// after opening or after a write failed; the next append then starts
	// a new file. files are the files written or read so far, f's last.
	wmu   sync.Mutex
	f     File
	seq   uint64
	size  int64
	files []string

	mu sync.Mutex
	// tail holds the entries after applied, contiguous. It is never
	// changed in place, only resliced or replaced, so a reader may keep
	// the slice it got.
	tail    []walEntry
	applied uint64
	// applying is the highest index an apply took; an append may not
	// replace it. replacing is the first index of an append being
	// written, 0 if none; an apply may not take it.
	applying  uint64
	replacing uint64

	// replayed is the last index of the log as the files read so far
	// left it, while opening.
	replayed uint64
}

// walEntry is a log entry and its msgpack encoding: written once to the
// log file, then as is to meta.db's log bucket when applied; Entries
// counts bytes by it.
type walEntry struct {
	meta.Entry
	enc []byte
}

// encodeEntries encodes es, each once.
func encodeEntries(es []meta.Entry) ([]walEntry, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	ends := make([]int, len(es))
	for i := range es {
		if err := enc.Encode(&es[i]); err != nil {
			return nil, fmt.Errorf("encode log entry %d: %w", es[i].Index, err)
		}
		ends[i] = buf.Len()
	}
	b, out := buf.Bytes(), make([]walEntry, len(es))
	for i, start := 0, 0; i < len(es); i++ {
		out[i] = walEntry{Entry: es[i], enc: b[start:ends[i]:ends[i]]}
		start = ends[i]
	}
	return out, nil
}

func (w *wal) name(seq uint64) string {
	return filepath.Join(w.dir, fmt.Sprintf("%016x-%016x.log", w.id, seq))
}

// newWALID returns a random WAL ID for a new meta.db.
func newWALID() []byte {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return b[:]
}

// openWAL reads the files of id under dir into a wal whose entries
// follow applied, after the entries of older
// (which were in meta.db's log bucket after applied, in stores written
// before these files existed), and removes files of other IDs.
func openWAL(fsys FS, dir string, id, applied uint64, older []walEntry, bytes *atomic.Int64) (*wal, error) {
	w := &wal{fs: fsys, dir: filepath.Join(dir, walDirName), id: id, bytes: bytes, applied: applied, applying: applied, replayed: applied}
	bytes.Store(0)
	if err := mkdirAllDurable(fsys, w.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log directory %s: %w", w.dir, err)
	}
	if len(older) > 0 {
		if err := w.replay(older[0].Index, older, false); err != nil {
			return nil, err
		}
	}
	ents, err := fsys.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("list log directory %s: %w", w.dir, err)
	}
	prefix := fmt.Sprintf("%016x-", id)
	var seqs []uint64
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), prefix)
		s, isLog := strings.CutSuffix(s, ".log")
		seq, err := strconv.ParseUint(s, 16, 64)
		if !ok || !isLog || err != nil {
			// Another meta.db's, or a stray: never read with this one.
			if err := fsys.Remove(filepath.Join(w.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove stale log file: %w", err)
			}
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		if err := w.replayFile(w.name(seq)); err != nil {
			return nil, err
		}
		w.seq = seq
		w.files = append(w.files, w.name(seq))
	}
	return w, nil
}

// replayFile replays the records of the file p.
func (w *wal) replayFile(p string) error {
	data, err := readFile(w.fs, p)
	if err != nil {
		return fmt.Errorf("read log file %s: %w", p, err)
	}
	w.bytes.Add(int64(len(data)))
	for off := 0; off < len(data); {
		first, es, n, err := decodeRecord(data[off:])
		if err == errTorn {
			return nil // a write cut short by a crash: never acknowledged
		}
		if err != nil {
			return &CorruptError{Why: fmt.Sprintf("log file %s, record at byte %d: %v", p, off, err)}
		}
		if err := w.replay(first, es, off == 0); err != nil {
			return &CorruptError{Why: fmt.Sprintf("log file %s, record at byte %d: %v", p, off, err)}
		}
		off += n
	}
	return nil
}

// replay does again what the append of a record did: the log's entries
// from first on become es. The log may end before the applied index in
// the middle of a replay (a record replaced entries that later ones
// brought back, and those were applied since); the tail keeps the
// entries after it.
func (w *wal) replay(first uint64, es []walEntry, fileStart bool) error {
	// A file starts with a record of every entry after the index applied
	// when it began, all in meta.db since: what files before it held, or
	// a crash lost of them once they were removed, does not matter.
	last := w.replayed
	if fileStart {
		last = max(last, w.applied)
	}
	if first > last+1 {
		return fmt.Errorf("entries from %d leave a gap after %d", first, last)
	}
	keep := uint64(0)
	if first > w.applied {
		keep = first - w.applied - 1
	}
	w.tail = w.tail[:keep] // nobody shares it yet
	for _, e := range es {
		if e.Index > w.applied {
			w.tail = append(w.tail, e)
		}
	}
	w.replayed = first - 1 + uint64(len(es))
	return nil
}

// lastLocked returns the index of the last entry. Call it with w.mu held
// (or before w is shared).
func (w *wal) lastLocked() uint64 {
	if n := len(w.tail); n > 0 {
		return w.tail[n-1].Index
	}
	return w.applied
}

// snapshot returns the tail as it is now; the caller may keep it.
func (w *wal) snapshot() []walEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tail
}

// append writes es, contiguous, replacing every entry from the first
// one's index on, and returns once they are durable.
func (w *wal) append(es []meta.Entry) error {
	first := es[0].Index
	for n, e := range es {
		if e.Index != first+uint64(n) {
			return fmt.Errorf("append: entry %d out of sequence", e.Index)
		}
	}
	enc, err := encodeEntries(es)
	if err != nil {
		return err
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	last, applying, applied := w.lastLocked(), w.applying, w.applied
	if first > applying && first <= last+1 {
		w.replacing = first
	}
	w.mu.Unlock()
	switch {
	case first <= applying:
		return fmt.Errorf("append at %d would replace applied entry (applied %d): refusing", first, applied)
	case first > last+1:
		return fmt.Errorf("append at %d leaves a gap after %d", first, last)
	}
	err = w.write(first, enc)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replacing = 0
	if err != nil {
		return err
	}
	k := first - w.applied - 1
	if k == uint64(len(w.tail)) {
		w.tail = append(w.tail, enc...)
	} else {
		w.tail = append(w.tail[:k:k], enc...)
	}
	return nil
}

// write makes a record of es durable: in the current file, or in a new
// one that starts with the tail when there is none or it is large.
func (w *wal) write(first uint64, es []walEntry) error {
	rec := encodeRecord(first, es)
	if w.f == nil || w.size+int64(len(rec)) > walRotateBytes {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	_, err := w.f.Write(rec)
	if err == nil {
		err = datasync(w.f)
	}
	if err != nil {
		// What reached the file is unknown (an fsync that failed may have
		// dropped pages): the next append starts a new file.
		w.f.Close()
		w.f = nil
		return fmt.Errorf("write log file %s: %w", w.name(w.seq), diskFault(err))
	}
	w.size += int64(len(rec))
	w.bytes.Add(int64(len(rec)))
	return nil
}

// rotate starts a new file holding the tail, then removes the older
// files, which it supersedes.
func (w *wal) rotate() error {
	w.mu.Lock()
	first, tail := w.applied+1, w.tail
	w.mu.Unlock()
	rec := encodeRecord(first, tail)
	seq := w.seq + 1
	p := w.name(seq)
	f, err := w.fs.Create(p, 0o600)
	if err != nil {
		return fmt.Errorf("create log file %s: %w", p, diskFault(err))
	}
	_, err = f.Write(rec)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = w.fs.SyncDir(w.dir)
	}
	if err != nil {
		f.Close()
		w.fs.Remove(p)
		return fmt.Errorf("write log file %s: %w", p, diskFault(err))
	}
	if w.f != nil {
		w.f.Close()
	}
	for _, old := range w.files {
		// Left behind, a file is read before the new one, which
		// replaces what it says: harmless, and removed at the next start.
		w.fs.Remove(old)
	}
	w.f, w.seq, w.size, w.files = f, seq, int64(len(rec)), []string{p}
	w.bytes.Store(w.size)
	return nil
}

// take returns the entries from the one after applied through upto, for
// an apply; an append may no longer replace them.
func (w *wal) take(applied, upto uint64) ([]walEntry, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if applied != w.applied {
		return nil, fmt.Errorf("apply after %d: the log's applied index is %d", applied, w.applied)
	}
	if w.replacing != 0 && upto >= w.replacing {
		return nil, fmt.Errorf("apply through %d while entries from %d are being replaced: refusing", upto, w.replacing)
	}
	if upto > w.lastLocked() {
		return nil, fmt.Errorf("apply entry %d: %w", w.lastLocked()+1, meta.ErrNotFound)
	}
	w.applying = max(w.applying, upto)
	return w.tail[:upto-applied], nil
}

// applied records that the entries through upto are applied (and in
// meta.db), or, if ok is false, that the apply that took them failed.
func (w *wal) setApplied(upto uint64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !ok {
		w.applying = w.applied
		return
	}
	if upto <= w.applied {
		return
	}
	w.tail = w.tail[upto-w.applied:]
	w.applied = upto
	if len(w.tail) == 0 {
		w.tail = nil
	}
}

func (w *wal) close() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// errTorn is a record cut short at the end of a file.
var errTorn = errors.New("record cut short")

// encodeRecord returns the record of es (encoded), whose first index is
// first.
func encodeRecord(first uint64, es []walEntry) []byte {
	n := walHeader + 12
	for _, e := range es {
		n += len(e.enc)
	}
	b := make([]byte, walHeader+12, n)
	binary.BigEndian.PutUint32(b[0:], uint32(n-walHeader))
	binary.BigEndian.PutUint64(b[walHeader:], first)
	binary.BigEndian.PutUint32(b[walHeader+8:], uint32(len(es)))
	for _, e := range es {
		b = append(b, e.enc...)
	}
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(b[walHeader:], castagnoli))
	return b
}

// decodeRecord decodes the record at the start of b, returning its first
// index, its entries and its length. A record that runs past the end of
// b, or fails its checksum and ends where b does, or is followed by
// nothing but zeros, is errTorn.
func decodeRecord(b []byte) (uint64, []walEntry, int, error) {
	if len(b) < walHeader {
		return 0, nil, 0, errTorn
	}
	n := walHeader + int(binary.BigEndian.Uint32(b))
	if n > len(b) || n < walHeader+12 && allZero(b) {
		return 0, nil, 0, errTorn
	}
	if n < walHeader+12 {
		return 0, nil, 0, fmt.Errorf("length %d is too short for a record", n-walHeader)
	}
	payload := b[walHeader:n]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		if allZero(b[n:]) {
			return 0, nil, 0, errTorn
		}
		return 0, nil, 0, errors.New("checksum mismatch")
	}
	first := binary.BigEndian.Uint64(payload)
	count := int(binary.BigEndian.Uint32(payload[8:]))
	rd := bytes.NewReader(payload[12:])
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(rd)
	es := make([]walEntry, 0, min(count, len(payload)))
	for i := 0; i < count; i++ {
		start := len(payload) - rd.Len()
		var e meta.Entry
		if err := dec.Decode(&e); err != nil {
			return 0, nil, 0, fmt.Errorf("decode entry %d of %d: %w", i+1, count, err)
		}
		if e.Index != first+uint64(i) {
			return 0, nil, 0, fmt.Errorf("entry %d of %d has index %d, not %d", i+1, count, e.Index, first+uint64(i))
		}
		end := len(payload) - rd.Len()
		es = append(es, walEntry{Entry: e, enc: payload[start:end:end]})
	}
	return first, es, n, nil
}

// allZero reports whether b holds nothing but zero bytes (a file system
// may show zeros past the last write a crash interrupted).
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
