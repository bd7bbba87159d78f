package role

import (
	"crypto/rand"
	"encoding/binary"

	"shoal/store"
)

// LoadID returns the node ID kept in dir (see store.LoadNodeID). With
// want == 0 it derives a random non-zero ID the first time and keeps it;
// with want != 0 it keeps want, and refuses a directory that already
// belongs to another ID.
func LoadID(dir string, want uint64) (uint64, error) {
	if have, ok, err := store.LoadNodeID(dir, want); err != nil || ok {
		return have, err
	}
	id := want
	for id == 0 {
		var r [8]byte
		if _, err := rand.Read(r[:]); err != nil {
			return 0, err
		}
		// Keep IDs below 2^53 so they survive JSON readers that use floats.
		id = binary.BigEndian.Uint64(r[:]) >> 11
	}
	if err := store.SaveNodeID(dir, id); err != nil {
		return 0, err
	}
	return id, nil
}
