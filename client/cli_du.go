package client

import (
	"errors"
	"fmt"
	"path"
	"text/tabwriter"
)

// duRow is one line of du: what a directory (or file) holds.
type duRow struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	Files int64  `json:"files"`
	Dirs  int64  `json:"dirs"`
}

// runDu prints what each argument holds, below its directories down to
// --max-depth (each after what is below it, as du prints), from the
// totals the cluster keeps: one stat per argument and one listing per
// directory shown.
func runDu(s *session, args []string) error {
	if len(args) == 0 {
		args = []string{"/"}
	}
	depth := s.depth
	switch {
	case s.summarize:
		depth = 0
	case depth < 0:
		return fmt.Errorf("-d %d: give a depth of 0 (REMOTE alone) or more", depth)
	}
	var rows []duRow
	denied := 0
	for _, a := range args {
		p := path.Clean("/" + a)
		st, err := s.c.Stat(s.ctx, p)
		if err != nil {
			return onPath(p, err)
		}
		if st.Type != TypeDir {
			rows = append(rows, duRow{Path: p, Bytes: st.Size, Files: 1})
			continue
		}
		if st.Usage == nil {
			return fmt.Errorf("%s: no totals: you may not read this directory (or the cluster is older than du)", p)
		}
		below, n, err := s.duBelow(p, depth)
		if err != nil {
			return err
		}
		denied += n
		rows = append(rows, below...)
		rows = append(rows, duRow{Path: p, Bytes: st.Usage.Bytes, Files: st.Usage.Files, Dirs: st.Usage.Dirs})
	}
	if denied > 0 {
		fmt.Fprintf(s.stderr, "shoal du: %d directories passed over: you may not list what holds them\n", denied)
	}
	if s.json {
		return s.printJSON(rows)
	}
	tw := tabwriter.NewWriter(s.stdout, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		size := fmt.Sprint(r.Bytes)
		if s.human {
			size = humanBytes(r.Bytes)
		}
		fmt.Fprintf(tw, "%s\t%s\n", size, r.Path)
	}
	return tw.Flush()
}

// duBelow returns the rows of the directories below dir, down to depth
// levels, in name order with each after those below it, and how many it
// could not see (listed without their attributes).
func (s *session) duBelow(dir string, depth int) ([]duRow, int, error) {
	if depth == 0 {
		return nil, 0, nil
	}
	entries, err := s.c.List(s.ctx, dir)
	if errors.Is(err, ErrPermission) {
		return nil, 1, nil
	}
	if err != nil {
		return nil, 0, onPath(dir, err)
	}
	var rows []duRow
	denied := 0
	for _, e := range entries {
		if e.Type != TypeDir {
			continue
		}
		p := path.Join(dir, e.Name)
		if e.Usage == nil {
			denied++
			continue
		}
		below, n, err := s.duBelow(p, depth-1)
		if err != nil {
			return nil, 0, err
		}
		denied += n
		rows = append(rows, below...)
		rows = append(rows, duRow{Path: p, Bytes: e.Usage.Bytes, Files: e.Usage.Files, Dirs: e.Usage.Dirs})
	}
	return rows, denied, nil
}
