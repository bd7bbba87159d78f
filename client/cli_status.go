package client

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Exit codes of shoal status beyond exitOK and exitFail (the router
// could not be asked).
const (
	// exitDegraded: reads and writes are served, but redundancy is short:
	// a voting member is dead, behind or refusing writes, chunks are
	// missing from a member, or a data group has no primary or its primary
	// did not report. (A dead node its group replaced is not counted: its
	// group is whole again.)
	exitDegraded = 3
	// exitUnavailable: the cluster cannot serve: the meta group has no
	// primary (no name can be looked up or changed), or no group can take
	// writes.
	exitUnavailable = 4
)

// runStatus prints one answer of the router, taken at one moment: the
// groups, their members as each primary reports them, the standby pool,
// the nodes that left their group (replaced or removed), then every node
// as gossip sees it. No figure appears in two tables from two sources:
// the member table is the primary's (whether a member is synced, how far
// behind, its chunks as of the primary's last count, shown in the group
// table's COUNTED column), the node table gossip's (state, disk used,
// capacity). A group whose primary did not report still shows what
// gossip knows, with its error below the tables. The last line judges the
// whole, and so does the exit code: exitOK, exitDegraded or
// exitUnavailable.
func runStatus(s *session, _ []string) error {
	cl, err := s.c.Cluster(s.ctx)
	if errors.Is(err, ErrUnavailable) {
		// The router answers, but not with the view: it could not check
		// the token (the meta group keeps the users) or reach the groups.
		if s.json {
			if err := s.printJSON(statusJSON{Health: "unavailable", Why: []string{"the router could not answer: " + err.Error()}}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(s.stdout, "HEALTH: unavailable: the router could not answer: %v\n", err)
		}
		return exitStatus(exitUnavailable)
	}
	if err != nil {
		return err
	}
	if s.json {
		code, why := clusterHealth(cl)
		if err := s.printJSON(statusJSON{Health: healthNames[code], Why: why, Cluster: &cl}); err != nil {
			return err
		}
		if code != exitOK {
			return exitStatus(code)
		}
		return nil
	}
	tw := tabwriter.NewWriter(s.stdout, 0, 4, 2, ' ', 0)
	printGroups(tw, cl.Groups)
	fmt.Fprintln(tw)
	printGroupMembers(tw, cl.Groups)
	fmt.Fprintln(tw)
	standbys := "none"
	if len(cl.Standbys) > 0 {
		standbys = strings.Join(cl.Standbys, ", ")
	}
	fmt.Fprintf(tw, "STANDBYS: %s\n\n", standbys)
	if len(cl.Departed) > 0 {
		fmt.Fprintln(tw, "DEPARTED\tGROUP\tSINCE\tWHY")
		for _, d := range cl.Departed {
			since := "before the router started"
			if !d.Since.IsZero() {
				since = d.Since.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, d.Group, since, d.Why)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "NODE\tID\tROLE\tGROUP\tTERM\tSTATUS\tUSED\tCAP\tADDR")
	for _, n := range cl.Nodes {
		capacity := "-"
		if n.Cap > 0 {
			capacity = humanBytes(int64(min(n.Cap, 1<<63-1)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", n.Name, n.ID, n.Role, orDash(n.Group), n.Term,
			n.Status, humanBytes(int64(min(n.Used, 1<<63-1))), capacity, n.Addr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	code, why := clusterHealth(cl)
	switch code {
	case exitOK:
		fmt.Fprintln(s.stdout, "\nHEALTH: ok")
		return nil
	case exitDegraded:
		fmt.Fprintf(s.stdout, "\nHEALTH: degraded (serving, with less redundancy): %s\n", strings.Join(why, "; "))
	default:
		fmt.Fprintf(s.stdout, "\nHEALTH: unavailable: %s\n", strings.Join(why, "; "))
	}
	return exitStatus(code)
}

// statusJSON is what status --json prints: the verdict the last line of
// the text gives, and the router's view it judged (GET /v1/cluster).
type statusJSON struct {
	Health  string   `json:"health"` // ok, degraded or unavailable, as the exit code says
	Why     []string `json:"why,omitempty"`
	Cluster *Cluster `json:"cluster,omitempty"`
}

var healthNames = map[int]string{exitOK: "ok", exitDegraded: "degraded", exitUnavailable: "unavailable"}

// clusterHealth judges a view of the cluster (see the exit codes above)
// and says why it is not healthy.
func clusterHealth(cl Cluster) (code int, why []string) {
	var down, short []string
	writable := false
	for _, g := range cl.Groups {
		switch {
		case g.Primary == "" && g.Meta:
			down = append(down, fmt.Sprintf("the meta group %s has no primary: no name can be looked up or changed", g.Name))
			continue
		case g.Primary == "":
			short = append(short, fmt.Sprintf("group %s has no primary", g.Name))
			continue
		case g.Error != "" && g.Meta:
			down = append(down, fmt.Sprintf("the meta group's primary %s did not report: %s", g.Primary, g.Error))
			continue
		case g.Error != "":
			short = append(short, fmt.Sprintf("group %s's primary %s did not report: %s", g.Name, g.Primary, g.Error))
			continue
		}
		if g.Free == nil || *g.Free > 0 {
			writable = true
		}
		for _, m := range g.MemberDetails {
			switch {
			case !m.Voter:
				short = append(short, fmt.Sprintf("%s of %s is not a voting member yet", m.Name, g.Name))
			case !m.Live:
				short = append(short, fmt.Sprintf("%s of %s does not answer its primary", m.Name, g.Name))
			case m.DiskError != "":
				short = append(short, fmt.Sprintf("%s of %s: its disk refuses writes (%s)", m.Name, g.Name, m.DiskError))
			case !m.Synced:
				short = append(short, fmt.Sprintf("%s of %s is not synced", m.Name, g.Name))
			}
		}
		if g.UnderReplicated > 0 {
			short = append(short, fmt.Sprintf("group %s has %d chunks not on every member", g.Name, g.UnderReplicated))
		}
	}
	if !writable && len(down) == 0 {
		down = append(down, "no group can take writes (none has a primary with room)")
	}
	switch {
	case len(down) > 0:
		return exitUnavailable, append(down, short...)
	case len(short) > 0:
		return exitDegraded, short
	}
	return exitOK, nil
}

func printGroups(w io.Writer, groups []Group) {
	fmt.Fprintln(w, "GROUP\tPRIMARY\tTERM\tUSED\tFREE\tCHUNKS\tUNDER-REPLICATED\tCOUNTED\tREPAIR")
	for _, g := range groups {
		name := g.Name
		if g.Meta {
			name += " (meta)"
		}
		free := "unlimited"
		if g.Free != nil {
			free = humanBytes(*g.Free)
		}
		chunks, under, counted, repair := "?", "?", "?", "?"
		if g.Error == "" {
			chunks, under, counted = fmt.Sprint(g.Chunks), fmt.Sprint(g.UnderReplicated), "not yet"
			if !g.Repair.LastRound.IsZero() {
				counted = g.Repair.LastRound.Local().Format("15:04:05")
			}
			repair = fmt.Sprintf("copied %d (%s), collected %d", g.Repair.Copied, humanBytes(g.Repair.CopiedBytes), g.Repair.Collected)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", name, orDash(g.Primary), g.Term, humanBytes(g.Used), free, chunks, under, counted, repair)
	}
	for _, g := range groups {
		if g.Error != "" {
			fmt.Fprintf(w, "group %s: %s\n", g.Name, g.Error)
		}
	}
}

// printGroupMembers lists each group's members as its primary reports
// them, with the write a member's disk refuses, if any; for a group
// without a report, the names gossip knows.
func printGroupMembers(w io.Writer, groups []Group) {
	fmt.Fprintln(w, "GROUP\tMEMBER\tVOTER\tLIVE\tSYNCED\tBEHIND\tCHUNKS\tCHUNK BYTES\tDISK")
	for _, g := range groups {
		if len(g.MemberDetails) == 0 {
			for _, name := range g.Members {
				fmt.Fprintf(w, "%s\t%s\t?\t?\t?\t?\t?\t?\t?\n", g.Name, name)
			}
			continue
		}
		for _, m := range g.MemberDetails {
			disk := "ok"
			if m.DiskError != "" {
				disk = m.DiskError
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", g.Name, m.Name, yesNo(m.Voter), yesNo(m.Live), yesNo(m.Synced),
				g.Commit-min(m.Match, g.Commit), m.Chunks, humanBytes(m.Used), disk)
		}
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// humanBytes shows a byte count in binary units: 512 B, 1.5 KiB, 4.0 GiB.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	unit := ""
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"} {
		v /= 1024
		unit = u
		if v < 1024 {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// runDf prints the cluster's room in one line under a header, as df does.
func runDf(s *session, _ []string) error {
	st, err := s.c.Statfs(s.ctx)
	if err != nil {
		return err
	}
	if s.json {
		return s.printJSON(st)
	}
	size := func(n int64) string {
		switch {
		case n < 0:
			return "unlimited"
		case s.bytes:
			return fmt.Sprint(n)
		}
		return humanBytes(n)
	}
	use := "-"
	if st.Capacity > 0 {
		use = fmt.Sprintf("%d%%", (st.Used*100+st.Capacity-1)/st.Capacity) // rounded up, as df does
	}
	tw := tabwriter.NewWriter(s.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIZE\tUSED\tFREE\tUSE%\tGROUPS")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", size(st.Capacity), size(st.Used), size(st.Free), use, st.Groups)
	return tw.Flush()
}
