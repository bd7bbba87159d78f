package role

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	return c, true, nil
}

func saveClaim(dir string, c claim) error {
	s := "group=" + c.Group + "\n"
	if c.Boot {
		s += "boot=1\n"
	}
	if err := writeDurable(filepath.Join(dir, claimFile), []byte(s)); err != nil {
		return fmt.Errorf("record claim by group %s: %w", c.Group, err)
	}
	return nil
}
