package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"shoal/meta"
)

const mib = 1 << 20

// The default capacity is what the data takes now plus what the disk has
// left, less the reserve: chunks can fill it, and the room left on the
// disk is then the reserve, whatever meta.db holds. Every byte of meta.db
// in use counts against it like a chunk's.
func TestDefaultCapacity(t *testing.T) {
	for _, tt := range []struct {
		name    string
		u       Usage
		reserve int64
		want    int64
	}{
		{"empty disk", Usage{Meta: 64 << 10, Disk: DiskSpace{Size: 1 << 30, Free: 1000 * mib}}, 20 * mib, 64<<10 + 980*mib},
		{"chunks and a big meta.db", Usage{Chunks: 300 * mib, Meta: 50 * mib, Disk: DiskSpace{Size: 1 << 30, Free: 500 * mib}}, 20 * mib, 830 * mib},
		{"full disk", Usage{Chunks: 300 * mib, Meta: 50 * mib, Disk: DiskSpace{Size: 1 << 30, Free: 10 * mib}}, 20 * mib, 340 * mib},
		{"nothing at all", Usage{Disk: DiskSpace{Size: 1 << 30}}, 20 * mib, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultCapacity(tt.u, tt.reserve)
			if c != tt.want {
				t.Fatalf("DefaultCapacity = %d, want %d", c, tt.want)
			}
			l := Limits{Capacity: c, Reserve: tt.reserve}
			// The chunks may take what the disk has above the reserve,
			// and not a byte more.
			room := max(tt.u.Disk.Free-tt.reserve, 0)
			if room > 0 {
				if err := l.ChunkRoom(tt.u, 0, room); err != nil {
					t.Errorf("a chunk of the %d bytes above the reserve: %v", room, err)
				}
			}
			if err := l.ChunkRoom(tt.u, 0, room+1); !errors.Is(err, meta.ErrNoSpace) {
				t.Errorf("a chunk of %d bytes, one past the reserve: %v, want ErrNoSpace", room+1, err)
			}
			// Metadata that grows takes room from the chunks.
			grown := tt.u
			grown.Meta += mib
			grown.Disk.Free -= mib
			if room >= mib {
				if err := l.ChunkRoom(grown, 0, room-mib+1); !errors.Is(err, meta.ErrNoSpace) {
					t.Errorf("after meta.db grew by 1 MiB, a chunk of %d bytes: %v, want ErrNoSpace", room-mib+1, err)
				}
			}
		})
	}
}

func TestDefaultReserve(t *testing.T) {
	for _, tt := range []struct{ size, want int64 }{
		{64 * mib, 4 * mib},         // at least MinReserve
		{10 * mib, 10 * mib / 4},    // but never more than a quarter
		{1 << 30, 1 << 30 / 50},     // 2%
		{1 << 40, MaxReserve},       // at most MaxReserve
		{100 << 30, 100 << 30 / 50}, // 2 GiB would be 2%: capped
	} {
		want := min(tt.want, MaxReserve)
		if got := DefaultReserve(tt.size); got != want {
			t.Errorf("DefaultReserve(%d) = %d, want %d", tt.size, got, want)
		}
	}
}

// Room for metadata: up to the capacity and to the reserve, counting
// meta.db's free pages, which it reuses without growing; nothing bounds
// it when neither is known.
func TestMetaRoom(t *testing.T) {
	disk := DiskSpace{Size: 1 << 30, Free: 30 * mib}
	for _, tt := range []struct {
		name string
		l    Limits
		u    Usage
		want int64
	}{
		{"no limits, no disk", Limits{}, Usage{Chunks: 1 << 40}, math.MaxInt64},
		{"disk above the reserve", Limits{Reserve: 20 * mib}, Usage{Disk: disk}, 10 * mib},
		{"free pages count", Limits{Reserve: 20 * mib}, Usage{MetaFree: 5 * mib, Disk: disk}, 15 * mib},
		{"disk under the reserve", Limits{Reserve: 40 * mib}, Usage{Disk: disk}, -10 * mib},
		{"capacity first", Limits{Capacity: 100 * mib, Reserve: 20 * mib}, Usage{Chunks: 90 * mib, Meta: 5 * mib, Disk: disk}, 5 * mib},
	} {
		if got := tt.l.MetaRoom(tt.u); got != tt.want {
			t.Errorf("%s: MetaRoom = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// A chunk store never takes its disk under the reserve, however many
// chunks are written at once, and says why it refuses.
func TestChunkStoreKeepsReserve(t *testing.T) {
	m := NewMemFS()
	m.SetSize(200 << 10)
	s, err := OpenChunkStore(m, crashDir)
	if err != nil {
		t.Fatal(err)
	}
	const reserve = 50 << 10
	s.SetLimits(Limits{Reserve: reserve})
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Go(func() {
			b := bytes.Repeat([]byte{byte(i)}, 10<<10)
			errs[i] = s.Put(meta.HashOf(b), b)
		})
	}
	wg.Wait()
	stored := 0
	for _, err := range errs {
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, meta.ErrNoSpace) || !strings.Contains(err.Error(), "kept for metadata"):
			t.Fatalf("refused chunk: %v, want ErrNoSpace saying the room is kept for metadata", err)
		}
	}
	if d, err := m.Statfs(crashDir); err != nil || d.Free < reserve || stored == 0 {
		t.Fatalf("%d chunks of 10 KiB stored at once, %d bytes free (%v); want some stored and the %d reserved left", stored, d.Free, err, reserve)
	}
	// Written one at a time (no write in flight counted twice), chunks
	// fill the disk to the reserve exactly.
	for i := len(errs); ; i++ {
		b := bytes.Repeat([]byte{byte(i)}, 10<<10)
		if err := s.Put(meta.HashOf(b), b); err != nil {
			break
		}
		stored++
	}
	if d, err := m.Statfs(crashDir); err != nil || d.Free != reserve || stored != 15 {
		t.Errorf("%d chunks of 10 KiB stored, %d bytes free (%v); want 15 stored and the %d reserved left", stored, d.Free, err, reserve)
	}
}

// Everything the node writes counts: small files kept inline in the log
// and the namespace take capacity and disk room as chunks do, and a chunk
// finds less room once they are there.
func TestInlineDataAndLogCount(t *testing.T) {
	fsys := NewFailFS(OSFS{})
	d, err := OpenOn(fsys, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	before := d.Usage()
	if before.Meta <= 0 || before.Disk.Size <= 0 {
		t.Fatalf("usage of a new store %+v: want meta.db counted and the disk measured", before)
	}
	d.SetLimits(Limits{Capacity: before.Used() + 4*mib})
	room := d.Room()
	if room > 4*mib || room < 4*mib-64<<10 {
		t.Fatalf("room of a new store with 4 MiB of capacity to spare: %d", room)
	}

	const files, size = 64, 16 << 10 // 1 MiB of inline content
	ballot := meta.Ballot{Term: 1, Node: 1}
	var es []meta.Entry
	for i := range files {
		data := bytes.Repeat([]byte{byte(i)}, size)
		es = append(es, meta.Entry{Index: uint64(i + 1), Ballot: ballot, Op: meta.Op{Kind: meta.OpPut, Path: fmt.Sprintf("/f%d", i), Time: 1,
			File: &meta.Inode{Type: meta.TypeFile, Size: size, Data: data}}})
	}
	if err := d.Append(es); err != nil {
		t.Fatal(err)
	}
	logged := d.Usage()
	if grew := logged.Meta - before.Meta; grew < files*size {
		t.Errorf("meta.db grew by %d bytes with %d bytes of inline content in the log, want at least that", grew, files*size)
	}
	if _, _, err := d.Apply(uint64(files)); err != nil {
		t.Fatal(err)
	}
	applied := d.Usage()
	if grew := applied.Meta - logged.Meta; grew < files*size {
		t.Errorf("meta.db grew by %d bytes applying %d bytes of inline content, want at least that", grew, files*size)
	}
	if r := d.Room(); r > room-2*files*size {
		t.Errorf("room %d after 2 MiB of inline content (log and namespace), was %d", r, room)
	}
	// What is left of the capacity holds less than the 4 MiB it had.
	b := bytes.Repeat([]byte{'c'}, 3*mib)
	if err := d.Chunks.Put(meta.HashOf(b), b); !errors.Is(err, meta.ErrNoSpace) || !strings.Contains(err.Error(), "capacity") {
		t.Errorf("a 3 MiB chunk after 2 MiB of inline content in 4 MiB of capacity: %v, want ErrNoSpace for the capacity", err)
	}

	// A disk down to its reserve leaves metadata no room, whatever the
	// capacity says.
	d.SetLimits(Limits{Reserve: 8 * mib})
	fsys.SetFree(8 * mib)
	if r := d.Room(); r > applied.MetaFree {
		t.Errorf("room %d with the disk at its reserve, want at most meta.db's free pages (%d)", r, applied.MetaFree)
	}
}

// Opening a store that has everything writes nothing to meta.db: a node
// whose disk is full must come back up.
func TestOpenWritesNothing(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Append([]meta.Entry{{Index: 1, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: meta.Op{Kind: meta.OpMkdir, Path: "/d"}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Apply(1); err != nil {
		t.Fatal(err)
	}
	d.Close()
	p := filepath.Join(dir, metaFile)
	was, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := d.State(); err != nil || st.Applied != 1 {
		t.Errorf("reopened: %+v, %v", st, err)
	}
	d.Close()
	now, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(was, now) {
		t.Error("opening the store again wrote to meta.db")
	}
}
