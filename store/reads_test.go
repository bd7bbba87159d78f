package store

import (
	"errors"
	"reflect"
	"testing"

	"shoal/meta"
)

// The DB methods answer as the transaction functions of the same name.
func TestDBReads(t *testing.T) {
	d := crOpen(t, t.TempDir())
	crSeed(t, d)
	if in, err := d.Reader().LookupAt(0, "/f1", nil, 0); err != nil || !reflect.DeepEqual(in, lookupT(t, d, "/f1")) {
		t.Errorf("LookupAt(/f1) = %+v, %v", in, err)
	}
	if _, err := d.Reader().LookupAt(0, "/missing", nil, 0); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("LookupAt(/missing): %v, want ErrNotFound", err)
	}
	if ents, err := d.ReadDirAt(0, "/d0", nil); err != nil || len(ents) != 1 || ents[0].Name != "f" {
		t.Errorf("ReadDirAt(/d0) = %+v, %v", ents, err)
	}
	if err := d.Reader().CheckPut(0, "/d0", nil); !errors.Is(err, meta.ErrIsDir) {
		t.Errorf("CheckPut over a directory: %v, want ErrIsDir", err)
	}
	if users, err := d.Reader().Users(); err != nil || len(users) != 0 {
		t.Errorf("Users() = %v, %v", users, err)
	}
	if _, ok, err := d.Reader().UserByName("nobody"); ok || err != nil {
		t.Errorf("UserByName(nobody) = %v, %v", ok, err)
	}
	if _, ok, err := d.Reader().UserByToken([32]byte{1}); ok || err != nil {
		t.Errorf("UserByToken = %v, %v", ok, err)
	}
	if _, _, err := d.Reader().Owned(0, 0, 0); !errors.Is(err, meta.ErrInvalid) {
		t.Errorf("Owned with limit 0: %v, want ErrInvalid", err)
	}
	if owned, _, err := d.Reader().Owned(0, 0, 100); err != nil || len(owned) == 0 {
		t.Errorf("Owned(root) = %d inodes, %v", len(owned), err)
	}
	chunks := 0
	if err := d.ForEachChunk(func(meta.ChunkRef) error { chunks++; return nil }); err != nil || chunks == 0 {
		t.Errorf("ForEachChunk saw %d chunks, %v", chunks, err)
	}
}
