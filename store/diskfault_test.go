package store

import (
	"errors"
	"syscall"
	"testing"

	"shoal/meta"
)

// A disk that refuses writes fails every write of the store with
// meta.ErrDiskFailed, the log's and the promise's as the chunks', and
// keeps the cause; a full disk is meta.ErrNoSpace for a chunk (the group
// is full), but a broken one for the log (the node cannot go on). Reads
// keep working, and once the disk takes writes again so does the store.
func TestDiskFault(t *testing.T) {
	for _, tt := range []struct {
		errno     syscall.Errno
		chunkErr  error // what a new chunk fails with
		chunkFull bool  // a full disk: the group has no room, its disk is fine
	}{
		{syscall.EROFS, meta.ErrDiskFailed, false},
		{syscall.EIO, meta.ErrDiskFailed, false},
		{syscall.ENOSPC, meta.ErrNoSpace, true},
	} {
		t.Run(tt.errno.Error(), func(t *testing.T) {
			fsys := NewFailFS(OSFS{})
			d, err := OpenOn(fsys, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			e1 := meta.Entry{Index: 1, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: meta.Op{Kind: meta.OpNoop}}
			if err := d.Append([]meta.Entry{e1}); err != nil {
				t.Fatal(err)
			}
			h, data := csChunk(1)
			if err := d.Chunks.Put(h, data); err != nil {
				t.Fatal(err)
			}

			fsys.Fail(tt.errno)
			e2 := meta.Entry{Index: 2, Ballot: e1.Ballot, Op: meta.Op{Kind: meta.OpNoop}}
			if err := d.Append([]meta.Entry{e2}); !errors.Is(err, meta.ErrDiskFailed) || !errors.Is(err, tt.errno) {
				t.Errorf("append: %v, want ErrDiskFailed wrapping %v", err, tt.errno)
			}
			if err := d.SetPromised(meta.Ballot{Term: 2, Node: 1}); !errors.Is(err, meta.ErrDiskFailed) {
				t.Errorf("promise: %v, want ErrDiskFailed", err)
			}
			h2, data2 := csChunk(2)
			err = d.Chunks.Put(h2, data2)
			if !errors.Is(err, tt.chunkErr) || !errors.Is(err, tt.errno) || errors.Is(err, meta.ErrDiskFailed) == tt.chunkFull {
				t.Errorf("new chunk: %v, want %v wrapping %v", err, tt.chunkErr, tt.errno)
			}
			if st, err := d.State(); err != nil || st.LastIndex != 1 {
				t.Errorf("log state on a refusing disk: %+v, %v; want the first entry only", st, err)
			}
			if got, err := d.Chunks.Get(h); err != nil || string(got) != string(data) {
				t.Errorf("read a chunk on a refusing disk: %v", err)
			}

			fsys.Fail(nil)
			if err := d.Append([]meta.Entry{e2}); err != nil {
				t.Errorf("append once the disk is back: %v", err)
			}
			if err := d.Chunks.Put(h2, data2); err != nil {
				t.Errorf("new chunk once the disk is back: %v", err)
			}
		})
	}
}
