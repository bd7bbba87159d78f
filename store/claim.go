package store

// The claim file of a data directory DIR records the group that claimed
// the node, or that released it:
//
//	DIR/claim       group=NAME
//	                boot=1    (only for the first member of a group formed
//	                          from standbys)
//	or              released=NAME  (a member its group let go: a standby)
//	DIR/claim.tmp   the next content while it is written (writeDurable)
//
// It is written durably before the claim is answered, so a standby that
// restarts keeps serving the group that claimed it and refuses others,
// and a released member stays in the standby pool whatever --group its
// command line names. When present, it overrides --group.

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"unicode"
)

const claimFile = "claim"

// Claim is a standby's allocation to a group.
type Claim struct {
	Group string
	Boot  bool
	// Released is the group that let the node go; Group is then empty.
	Released string
}

// LoadClaim returns the claim kept in dir, and false if dir keeps none.
func LoadClaim(dir string) (Claim, bool, error) { return loadClaim(OSFS{}, dir) }

// SaveClaim keeps c in dir, replacing any claim kept there.
func SaveClaim(dir string, c Claim) error { return saveClaim(OSFS{}, dir, c) }

func loadClaim(fsys FS, dir string) (Claim, bool, error) {
	p := filepath.Join(dir, claimFile)
	b, err := readFile(fsys, p)
	if errors.Is(err, fs.ErrNotExist) {
		return Claim{}, false, nil
	}
	if err != nil {
		return Claim{}, false, fmt.Errorf("read claim: %w", err)
	}
	var c Claim
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "group":
			c.Group = v
		case "boot":
			c.Boot = v == "1"
		case "released":
			c.Released = v
		}
	}
	if c.Group == "" && c.Released != "" && CheckGroupName(c.Released) == nil {
		return Claim{Released: c.Released}, true, nil
	}
	if c.Group == "" {
		return Claim{}, false, fmt.Errorf("claim file %s names no group (%q): remove it to return the node to the standby pool", p, b)
	}
	if err := CheckGroupName(c.Group); err != nil {
		return Claim{}, false, fmt.Errorf("claim file %s is corrupt: %v: remove it to return the node to the standby pool", p, err)
	}
	return c, true, nil
}

func saveClaim(fsys FS, dir string, c Claim) error {
	if c.Group == "" && c.Released != "" {
		if err := CheckGroupName(c.Released); err != nil {
			return fmt.Errorf("record release: %w", err)
		}
		if err := writeDurable(fsys, filepath.Join(dir, claimFile), []byte("released="+c.Released+"\n"), 0o644); err != nil {
			return fmt.Errorf("record release from group %s: %w", c.Released, err)
		}
		return nil
	}
	if err := CheckGroupName(c.Group); err != nil {
		return fmt.Errorf("record claim: %w", err)
	}
	s := "group=" + c.Group + "\n"
	if c.Boot {
		s += "boot=1\n"
	}
	if err := writeDurable(fsys, filepath.Join(dir, claimFile), []byte(s), 0o644); err != nil {
		return fmt.Errorf("record claim by group %s: %w", c.Group, err)
	}
	return nil
}

// maxGroupName bounds the name of a claimed group, so it fits in the
// gossip tags.
const maxGroupName = 64

// CheckGroupName is the rule for the name of a group that claims a
// standby: 1 to 64 bytes that the claim file holds and gives back
// unchanged, so no control character (a newline would start another line
// of the file) and no white space at either end (trimmed on load).
func CheckGroupName(g string) error {
	switch {
	case g == "" || len(g) > maxGroupName:
		return fmt.Errorf("group name %q is not 1 to %d bytes long", g, maxGroupName)
	case strings.ContainsFunc(g, unicode.IsControl):
		return fmt.Errorf("group name %q holds a control character", g)
	case strings.TrimSpace(g) != g:
		return fmt.Errorf("group name %q starts or ends with white space", g)
	}
	return nil
}
