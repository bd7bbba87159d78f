package store

// Orphan leases (see meta.OpKeepOrphan). A file unlinked while a mount
// has it open stays, with no name, while that mount keeps renewing its
// lease; the meta group's primary collects the orphans whose lease ran
// out by the group's clock, so a mount that died leaves nothing behind
// for longer than its lease. Bucket, made with the first orphan:
//
//	orphans  inode -> the group clock its lease runs out at (8 bytes, big-endian)

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"shoal/meta"
)

var bucketOrphans = []byte("orphans")

func decodeLease(ino []byte, v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("namespace: lease of orphan %x is %d bytes, not 8: %w", ino, len(v), meta.ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// leaseOrphan sets the lease of the orphan ino to run out at until.
func (n *namespace) leaseOrphan(ino uint64, until int64) error {
	b, err := createBucket(n.tx, bucketOrphans)
	if err != nil {
		return err
	}
	return b.put(inoKey(ino), binary.BigEndian.AppendUint64(nil, uint64(until)))
}

// forgetOrphan drops the lease of ino, whose inode goes.
func (n *namespace) forgetOrphan(ino uint64) error {
	if n.tx == nil || !hasBucket(n.tx, bucketOrphans) {
		return nil
	}
	return bucketIn(n.tx, bucketOrphans).del(inoKey(ino))
}

// keepOrphan extends the lease of the orphan at op.Path to op.TTL from
// the op's clock. Not an orphan (named again, or gone): CodeNotFound, and
// the mount stops keeping it.
func (n *namespace) keepOrphan(op *meta.Op) (meta.Result, error) {
	if op.TTL < int64(meta.MinOrphanTTL) || op.TTL > int64(meta.MaxOrphanTTL) {
		return reject(meta.CodeInvalid)
	}
	in, _, code, err := n.orphanAt(op)
	if err != nil || code != meta.CodeOK {
		return meta.Result{Code: code}, err
	}
	return meta.Result{}, n.leaseOrphan(in.Ino, n.clock+op.TTL)
}

// collectOrphans drops the orphans whose lease ran out by the op's clock,
// at most meta.MaxOrphansCollected of them; only the cluster itself (or
// root) sends it.
func (n *namespace) collectOrphans() (meta.Result, error) {
	if c := n.cred; c != nil && !c.Root {
		return reject(meta.CodePerm)
	}
	due, err := orphansDue(n.tx, n.clock, meta.MaxOrphansCollected)
	if err != nil {
		return meta.Result{}, err
	}
	for _, ino := range due {
		in, had, err := n.stored(ino)
		if err != nil {
			return meta.Result{}, err
		}
		if had && in.Nlink == 0 && in.Type == meta.TypeFile {
			if err := n.dropInode(in); err != nil {
				return meta.Result{}, err
			}
		}
		if err := n.forgetOrphan(ino); err != nil {
			return meta.Result{}, err
		}
	}
	return meta.Result{}, nil
}

// orphansDue returns up to max orphans whose lease ran out by clock.
func orphansDue(tx *bolt.Tx, clock int64, max int) ([]uint64, error) {
	if !hasBucket(tx, bucketOrphans) {
		return nil, nil
	}
	var due []uint64
	err := bucketIn(tx, bucketOrphans).forEach(func(k, v []byte) error {
		until, err := decodeLease(k, v)
		if err != nil {
			return err
		}
		if len(k) != 8 {
			return fmt.Errorf("namespace: orphan key %x is not 8 bytes: %w", k, meta.ErrCorrupt)
		}
		if until <= clock && len(due) < max {
			due = append(due, binary.BigEndian.Uint64(k))
		}
		return nil
	})
	return due, err
}

// renewOrphanLeases is part of a new primary's first entry (see
// renewLeases): an orphan whose lease had not run out keeps it for at
// least meta.DefaultOrphanTTL from then, so its mount has time to renew
// it with the new primary.
func renewOrphanLeases(tx *bolt.Tx, clock int64) error {
	if !hasBucket(tx, bucketOrphans) {
		return nil
	}
	b := bucketIn(tx, bucketOrphans)
	type change struct {
		k     []byte
		until int64
	}
	var changes []change
	err := b.forEach(func(k, v []byte) error {
		until, err := decodeLease(k, v)
		if err == nil && until > clock {
			changes = append(changes, change{append([]byte(nil), k...), max(until, clock+int64(meta.DefaultOrphanTTL))})
		}
		return err
	})
	for _, c := range changes {
		if err == nil {
			err = b.put(c.k, binary.BigEndian.AppendUint64(nil, uint64(c.until)))
		}
	}
	return err
}

// OrphansDue reports whether some orphan's lease ran out by the group
// clock clock: then an OpCollectOrphans has work to do.
func (d *DB) OrphansDue(clock int64) (bool, error) {
	var due []uint64
	err := d.view(func(tx *bolt.Tx) error {
		var err error
		due, err = orphansDue(tx, clock, 1)
		return err
	})
	return len(due) > 0, err
}
