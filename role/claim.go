package role

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// claimFile records, in a standby's data directory, the group that claimed
// it:
//
//	group=NAME
//	boot=1        (only for the first member of a group formed from standbys)
//
// It is written (durably) before the claim is answered, so a standby that
// restarts keeps serving the group that claimed it and refuses others.
const claimFile = "claim"

// claim is a standby's allocation to a group.
type claim struct {
	Group string
	Boot  bool
}

func loadClaim(dir string) (claim, bool, error) {
	p := filepath.Join(dir, claimFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return claim{}, false, nil
	}
	if err != nil {
		return claim{}, false, fmt.Errorf("read claim: %w", err)
	}
	var c claim
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "group":
			c.Group = v
		case "boot":
			c.Boot = v == "1"
		}
	}
	if c.Group == "" {
		return claim{}, false, fmt.Errorf("claim file %s names no group (%q): remove it to return the node to the standby pool", p, b)
	}
	if err := checkGroupName(c.Group); err != nil {
		return claim{}, false, fmt.Errorf("claim file %s is corrupt: %v: remove it to return the node to the standby pool", p, err)
	}
	return c, true, nil
}

func saveClaim(dir string, c claim) error {
	if err := checkGroupName(c.Group); err != nil {
		return fmt.Errorf("record claim: %w", err)
	}
	s := "group=" + c.Group + "\n"
	if c.Boot {
		s += "boot=1\n"
	}
	if err := writeDurable(filepath.Join(dir, claimFile), []byte(s)); err != nil {
		return fmt.Errorf("record claim by group %s: %w", c.Group, err)
	}
	return nil
}

// maxGroupName bounds the name of a claimed group, so it fits in the
// gossip tags.
const maxGroupName = 64

// checkGroupName is the rule for the name of a group that claims a
// standby: 1 to maxGroupName bytes that the claim file holds and gives
// back unchanged, so no control character (a newline would start another
// line of the file) and no white space at either end (trimmed on load).
func checkGroupName(g string) error {
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
