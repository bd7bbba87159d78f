package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// BenchmarkVerify measures what checking every record and bucket costs on
// a meta.db of 100,000 files with one chunk each, in 1,000 directories,
// and a log of 10,000 entries (--log-retain's default): Verify on an open
// store (the page cache warm), and Open, which verifies before it
// returns. SHOAL_VERIFY_FILES changes the number of files.
func BenchmarkVerify(b *testing.B) {
	files := 100_000
	if n, err := fmt.Sscan(os.Getenv("SHOAL_VERIFY_FILES"), &files); n != 1 || err != nil {
		files = 100_000
	}
	dir := b.TempDir()
	vbBuild(b, dir, files)
	fi, err := os.Stat(filepath.Join(dir, metaFile))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("meta.db of %d files: %.1f MiB", files, float64(fi.Size())/(1<<20))
	b.Run("Verify", func(b *testing.B) {
		d := crOpen(b, dir)
		defer d.Close()
		var n int64
		for b.Loop() {
			var err error
			if n, err = d.Verify(); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(n)
	})
	b.Run("Pages", func(b *testing.B) {
		p := filepath.Join(dir, metaFile)
		db, err := bbolt.Open(p, 0o600, &bbolt.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		for b.Loop() {
			free, err := checkFile(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := checkPages(p, db, free); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Open", func(b *testing.B) {
		for b.Loop() {
			d, err := Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			d.Close()
		}
	})
}

// vbBuild fills the store at dir, a thousand ops per transaction and
// without fsync.
func vbBuild(b *testing.B, dir string, files int) {
	db := openUnsynced(b, dir)
	defer db.Close()
	const batch = 1000
	for i := 0; i < files; i += batch {
		err := db.Update(func(tx *bbolt.Tx) error {
			for j := i; j < min(i+batch, files); j++ {
				op := putOp(fmt.Sprintf("/d%03d/file-%06d", j%1000, j), int64(j))
				if _, err := applyOp(tx, &op, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		lg := bucketIn(tx, bucketLog)
		for i := uint64(1); i <= 10_000; i++ {
			e := meta.Entry{Index: i, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: putOp(fmt.Sprintf("/d%03d/file-%06d", i%1000, i), int64(i))}
			if err := putMsgpack(lg, key(i), &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// openUnsynced makes a store at dir and opens its meta.db with bbolt
// alone and without fsync, for a benchmark to fill quickly before it
// measures; the caller closes it.
func openUnsynced(b *testing.B, dir string) *bbolt.DB {
	d := crOpen(b, dir)
	d.Close()
	db, err := bbolt.Open(filepath.Join(dir, metaFile), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	return db
}
