package role

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// idFile keeps a node's ID in its data directory, so a restarted node is
// the same member of its group.
const idFile = "node-id"

// LoadID returns the node ID kept in dir. With want == 0 it derives a
// random non-zero ID the first time and keeps it; with want != 0 it keeps
// want, and refuses a directory that already belongs to another ID.
func LoadID(dir string, want uint64) (uint64, error) {
	p := filepath.Join(dir, idFile)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		have, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil || have == 0 {
			return 0, fmt.Errorf("node ID file %s is corrupt (%q): remove it to derive a new ID", p, b)
		}
		if want != 0 && want != have {
			return 0, fmt.Errorf("data directory %s belongs to node %d, not %d: use --id %d or another --data", dir, have, want, have)
		}
		return have, nil
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("read node ID: %w", err)
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("create data directory: %w", err)
	}
	if err := writeDurable(p, []byte(strconv.FormatUint(id, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("keep node ID in %s: %w", p, err)
	}
	return id, nil
}

// writeDurable replaces the file at p with data so that after a crash it
// holds either the old content or the new, never a torn write.
func writeDurable(p string, data []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
