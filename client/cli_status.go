package client

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// runStatus prints the cluster: the groups, their members as each
// primary reports them, the standby pool, then every node as gossip sees
// it. A group whose primary did not report still shows what gossip knows,
// with its error below the tables.
func runStatus(s *session, _ []string) error {
	cl, err := s.c.Cluster(s.ctx)
	if err != nil {
		return err
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
	fmt.Fprintln(tw, "NODE\tID\tROLE\tGROUP\tTERM\tSTATUS\tIN-SYNC\tUSED\tCAP\tADDR")
	for _, n := range cl.Nodes {
		capacity := "-"
		if n.Cap > 0 {
			capacity = humanBytes(int64(min(n.Cap, 1<<63-1)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.ID, n.Role, orDash(n.Group), n.Term,
			n.Status, yesNo(n.InSync), humanBytes(int64(min(n.Used, 1<<63-1))), capacity, n.Addr)
	}
	return tw.Flush()
}

func printGroups(w io.Writer, groups []Group) {
	fmt.Fprintln(w, "GROUP\tPRIMARY\tTERM\tUSED\tFREE\tCHUNKS\tUNDER-REPLICATED\tREPAIR")
	for _, g := range groups {
		name := g.Name
		if g.Meta {
			name += " (meta)"
		}
		free := "unlimited"
		if g.Free != nil {
			free = humanBytes(*g.Free)
		}
		chunks, under, repair := "?", "?", "?"
		if g.Error == "" {
			chunks, under = fmt.Sprint(g.Chunks), fmt.Sprint(g.UnderReplicated)
			repair = fmt.Sprintf("copied %d (%s), collected %d", g.Repair.Copied, humanBytes(g.Repair.CopiedBytes), g.Repair.Collected)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", name, orDash(g.Primary), g.Term, humanBytes(g.Used), free, chunks, under, repair)
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
	fmt.Fprintln(w, "GROUP\tMEMBER\tVOTER\tLIVE\tSYNCED\tCHUNKS\tUSED\tDISK")
	for _, g := range groups {
		if len(g.MemberDetails) == 0 {
			for _, name := range g.Members {
				fmt.Fprintf(w, "%s\t%s\t?\t?\t?\t?\t?\t?\n", g.Name, name)
			}
			continue
		}
		for _, m := range g.MemberDetails {
			disk := "ok"
			if m.DiskError != "" {
				disk = m.DiskError
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", g.Name, m.Name, yesNo(m.Voter), yesNo(m.Live), yesNo(m.Synced),
				m.Chunks, humanBytes(m.Used), disk)
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
