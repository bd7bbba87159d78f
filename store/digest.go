package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Digest returns a hash of the whole namespace (every inode, entry and the
// inode counter). Members of a group that applied the same log have equal
// digests; tests and operators compare them to prove convergence.
func Digest(d *DB) (string, error) {
	h := sha256.New()
	err := d.view(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketInodes, bucketDentries, bucketNSMeta} {
			b := bucketIn(tx, name)
			if !b.exists() {
				return fmt.Errorf("digest: bucket %s missing", name)
			}
			fmt.Fprintf(h, "%s\n", name)
			if err := b.forEach(func(k, v []byte) error {
				fmt.Fprintf(h, "%x=%x\n", k, v)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
