package store

// The node ID file of a data directory DIR:
//
//	DIR/node-id       the node's ID in decimal, then a newline
//	DIR/node-id.tmp   the next content while it is written (writeDurable)
//
// It is written durably before the node first uses the ID, so a restarted
// node is the same member of its group.

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

const idFile = "node-id"

// LoadNodeID returns the node ID kept in dir, and false if dir keeps none
// yet. With want != 0 it refuses a directory that belongs to another ID.
func LoadNodeID(dir string, want uint64) (uint64, bool, error) {
	return loadNodeID(OSFS{}, dir, want)
}

// SaveNodeID keeps id in dir, which it creates if needed.
func SaveNodeID(dir string, id uint64) error { return saveNodeID(OSFS{}, dir, id) }

func loadNodeID(fsys FS, dir string, want uint64) (uint64, bool, error) {
	p := filepath.Join(dir, idFile)
	b, err := readFile(fsys, p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read node ID: %w", err)
	}
	have, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if perr != nil || have == 0 {
		return 0, false, fmt.Errorf("node ID file %s is corrupt (%q): remove it to derive a new ID", p, b)
	}
	if want != 0 && want != have {
		return 0, false, fmt.Errorf("data directory %s belongs to node %d, not %d: use --id %d or another --data", dir, have, want, have)
	}
	return have, true, nil
}

func saveNodeID(fsys FS, dir string, id uint64) error {
	if err := mkdirAllDurable(fsys, dir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	p := filepath.Join(dir, idFile)
	if err := writeDurable(fsys, p, []byte(strconv.FormatUint(id, 10)+"\n"), 0o644); err != nil {
		return fmt.Errorf("keep node ID in %s: %w", p, err)
	}
	return nil
}
