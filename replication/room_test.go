package replication

import (
	"errors"
	"strings"
	"testing"

	"shoal/meta"
)

// Ops that add names or content cost room, inline content twice (log and
// namespace); ops that remove, rename or only change attributes, and the
// primary's own, cost none.
func TestDataCost(t *testing.T) {
	inline := &meta.Inode{Type: meta.TypeFile, Size: 16 << 10, Data: make([]byte, 16<<10)}
	for _, tt := range []struct {
		op   meta.Op
		free bool
		min  int64
	}{
		{op: meta.Op{Kind: meta.OpPut, Path: "/f", File: inline}, min: 32 << 10},
		{op: meta.Op{Kind: meta.OpPut, Path: "/f", File: &meta.Inode{Type: meta.TypeFile, Chunks: make([]meta.ChunkRef, 100)}}, min: 100 * 2 * 32},
		{op: meta.Op{Kind: meta.OpMkdir, Path: "/d"}, min: 1},
		{op: meta.Op{Kind: meta.OpCreate, Path: "/c"}, min: 1},
		{op: meta.Op{Kind: meta.OpCopy, Path: "/a", To: "/b"}, min: 1},
		{op: meta.Op{Kind: meta.OpSymlink, Path: "/l", Target: "/a"}, min: 1},
		{op: meta.Op{Kind: meta.OpLink, Path: "/a", To: "/h"}, min: 1},
		{op: meta.Op{Kind: meta.OpUserAdd, User: &meta.User{Name: "u"}}, min: 1},
		{op: meta.Op{Kind: meta.OpUpdate, Path: "/f", File: inline}, min: 32 << 10},
		{op: meta.Op{Kind: meta.OpUpdate, Path: "/f", File: &meta.Inode{Type: meta.TypeFile}}, free: true},
		{op: meta.Op{Kind: meta.OpUpdate, Path: "/f", Attr: &meta.SetAttr{Valid: meta.SetMode, Mode: 0o600}}, free: true},
		{op: meta.Op{Kind: meta.OpDelete, Path: "/f", Recursive: true}, free: true},
		{op: meta.Op{Kind: meta.OpRename, Path: "/a", To: "/b"}, free: true},
		{op: meta.Op{Kind: meta.OpRelease, Path: "/a"}, free: true},
		{op: meta.Op{Kind: meta.OpUserRemove, User: &meta.User{Name: "u"}}, free: true},
		{op: meta.Op{Kind: meta.OpUserToken, User: &meta.User{Name: "u"}}, free: true},
		{op: meta.Op{Kind: meta.OpNoop}, free: true},
		{op: meta.Op{Kind: meta.OpConfig, Members: []meta.Member{{ID: 1}}}, free: true},
	} {
		c := dataCost(tt.op)
		if tt.free && c != 0 || !tt.free && c < tt.min {
			t.Errorf("op kind %d: cost %d, want free %v or at least %d", tt.op.Kind, c, tt.free, tt.min)
		}
	}
}

// The primary takes an op that adds data only with room for it itself and
// a majority of voters with room; everything else goes through.
func TestSpaceCheck(t *testing.T) {
	voters := []meta.Member{{ID: 1}, {ID: 2}, {ID: 3}}
	mkdir := meta.Op{Kind: meta.OpMkdir, Path: "/d"}
	rm := meta.Op{Kind: meta.OpDelete, Path: "/d"}
	cost := dataCost(mkdir)
	for _, tt := range []struct {
		name   string
		ops    []meta.Op
		room   int64
		noRoom map[uint64]bool
		want   string // per op: . taken, x refused
		says   string
	}{
		{"room for all", []meta.Op{mkdir, mkdir, rm}, 10 * cost, nil, "...", ""},
		{"room for the first", []meta.Op{mkdir, mkdir, rm}, cost + 1, nil, ".x.", "primary's disk"},
		{"no room", []meta.Op{mkdir, rm}, 0, nil, "x.", "primary's disk"},
		{"negative room", []meta.Op{rm, mkdir}, -5, nil, ".x", "has 0 bytes left"},
		{"one member full", []meta.Op{mkdir}, 10 * cost, map[uint64]bool{2: true}, ".", ""},
		{"two members full", []meta.Op{mkdir, rm}, 10 * cost, map[uint64]bool{2: true, 3: true}, "x.", "2 of the group's 3 voters"},
		{"a full non-voter counts for nothing", []meta.Op{mkdir}, 10 * cost, map[uint64]bool{2: true, 4: true}, ".", ""},
		{"the primary's own flag is ignored", []meta.Op{mkdir}, 10 * cost, map[uint64]bool{1: true, 2: true}, ".", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			errs := spaceCheck(tt.ops, tt.room, 1, voters, tt.noRoom)
			got := ""
			for _, err := range errs {
				switch {
				case err == nil:
					got += "."
				case errors.Is(err, meta.ErrNoSpace) && strings.Contains(err.Error(), tt.says):
					got += "x"
				default:
					t.Fatalf("refused with %v, want ErrNoSpace saying %q", err, tt.says)
				}
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
