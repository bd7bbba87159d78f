package role

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/gossip"
	"shoal/replication"
)

// What a storage node's state says when Prometheus scrapes it: read then,
// from the node's status, its store and its gossip view, so that serving
// requests pays nothing for these. Counters of work done (log writes,
// promotions, reads, scrub) are kept by replication.Metrics.
var (
	descNodeInfo = prometheus.NewDesc("shoal_node_info",
		"Always 1: the group this storage node serves (\"\" for a standby) and its role (primary, replica or standby).",
		[]string{"group", "role"}, nil)
	descTerm = prometheus.NewDesc("shoal_replication_term",
		"The term of the ballot this node leads, or the highest it promised.", nil, nil)
	descPrimary = prometheus.NewDesc("shoal_replication_is_primary",
		"1 while this node is its group's primary and takes requests.", nil, nil)
	descInSync = prometheus.NewDesc("shoal_replication_in_sync",
		"1 while this node is a voting member whose log and disk can take writes.", nil, nil)
	descCommit = prometheus.NewDesc("shoal_replication_commit_index",
		"The highest log index this node knows committed on a majority.", nil, nil)
	descApplied = prometheus.NewDesc("shoal_replication_applied_index",
		"The highest log index applied to this node's namespace.", nil, nil)
	descLast = prometheus.NewDesc("shoal_replication_last_index",
		"The highest log index in this node's log.", nil, nil)
	descMemberLag = prometheus.NewDesc("shoal_group_member_lag_entries",
		"On a primary: committed entries each member's log does not hold yet.",
		[]string{"member"}, nil)
	descMemberSynced = prometheus.NewDesc("shoal_group_member_synced",
		"On a primary: 1 for each member that holds the whole log and takes writes.",
		[]string{"member"}, nil)
	descMemberLive = prometheus.NewDesc("shoal_group_member_live",
		"On a primary: 1 for each member its gossip view counts live.",
		[]string{"member"}, nil)
	descUnder = prometheus.NewDesc("shoal_group_under_replicated_chunks",
		"On a primary: chunks that fewer than all voting members hold, as of the last repair comparison.", nil, nil)
	descRepairCopies = prometheus.NewDesc("shoal_group_repair_copies_total",
		"On a primary: chunk copies repair made since this node became primary.", nil, nil)
	descRepairBytes = prometheus.NewDesc("shoal_group_repair_bytes_total",
		"On a primary: bytes of chunk copies repair made since this node became primary.", nil, nil)
	descCollected = prometheus.NewDesc("shoal_group_gc_collected_chunks_total",
		"On a primary: unreferenced chunks garbage collection removed since this node became primary.", nil, nil)
	descChunks = prometheus.NewDesc("shoal_storage_chunks",
		"Chunks this node holds.", nil, nil)
	descChunkBytes = prometheus.NewDesc("shoal_storage_chunk_bytes",
		"Bytes of the chunk files this node holds.", nil, nil)
	descMetaBytes = prometheus.NewDesc("shoal_storage_meta_bytes",
		"Bytes of metadata this node holds: meta.db in use and the log's files.", nil, nil)
	descCapacity = prometheus.NewDesc("shoal_storage_capacity_bytes",
		"Bytes of data this node may hold: its --capacity, at most what its disk has room for above the metadata reserve.", nil, nil)
	descGossip = prometheus.NewDesc("shoal_gossip_members",
		"Members of the cluster in this process's gossip view, by state (alive, suspect, failed, left).",
		[]string{"state"}, nil)
)

// nodeCollector collects a storage node's state when scraped.
type nodeCollector struct{ n *Node }

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeInfo, descTerm, descPrimary, descInSync, descCommit, descApplied, descLast,
		descMemberLag, descMemberSynced, descMemberLive, descUnder, descRepairCopies, descRepairBytes, descCollected,
		descChunks, descChunkBytes, descMetaBytes, descCapacity, descGossip} {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	n.mu.Lock()
	r, group, g := n.repl, n.group, n.gossip
	n.mu.Unlock()

	u := n.db.Usage()
	gauge(ch, descChunks, float64(n.db.Chunks.Count()))
	gauge(ch, descChunkBytes, float64(u.Chunks))
	gauge(ch, descMetaBytes, float64(u.Meta))
	gauge(ch, descCapacity, float64(n.db.Chunks.Limits().ChunkCap(u)))
	if g != nil {
		collectGossip(ch, g.Members())
	}
	role := gossip.RoleStandby
	if r == nil {
		ch <- prometheus.MustNewConstMetric(descNodeInfo, prometheus.GaugeValue, 1, group, string(role))
		return
	}
	st := r.Status()
	role = gossip.RoleReplica
	if st.Role != replication.Follower {
		role = gossip.RolePrimary
	}
	ch <- prometheus.MustNewConstMetric(descNodeInfo, prometheus.GaugeValue, 1, group, string(role))
	gauge(ch, descTerm, float64(st.Ballot.Term))
	gauge(ch, descPrimary, bit(st.Ready))
	gauge(ch, descInSync, bit(st.InSync))
	gauge(ch, descCommit, float64(st.Commit))
	gauge(ch, descApplied, float64(st.Applied))
	gauge(ch, descLast, float64(st.LastIndex))
	if !st.Ready {
		return
	}
	info, err := r.GroupInfo()
	if err != nil {
		return // stepped down since: the series show on the next scrape
	}
	for _, m := range info.Members {
		lag := uint64(0)
		if m.Match < info.Commit {
			lag = info.Commit - m.Match
		}
		ch <- prometheus.MustNewConstMetric(descMemberLag, prometheus.GaugeValue, float64(lag), m.Name)
		ch <- prometheus.MustNewConstMetric(descMemberSynced, prometheus.GaugeValue, bit(m.Synced), m.Name)
		ch <- prometheus.MustNewConstMetric(descMemberLive, prometheus.GaugeValue, bit(m.Live), m.Name)
	}
	gauge(ch, descUnder, float64(info.Repair.UnderReplicated))
	ch <- prometheus.MustNewConstMetric(descRepairCopies, prometheus.CounterValue, float64(info.Repair.Copied))
	ch <- prometheus.MustNewConstMetric(descRepairBytes, prometheus.CounterValue, float64(info.Repair.CopiedBytes))
	ch <- prometheus.MustNewConstMetric(descCollected, prometheus.CounterValue, float64(info.Repair.Collected))
}

// gossipCollector collects a router's gossip view when scraped.
type gossipCollector struct{ g *gossip.Node }

func (c gossipCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descGossip }
func (c gossipCollector) Collect(ch chan<- prometheus.Metric) { collectGossip(ch, c.g.Members()) }

// collectGossip counts members by state, every state shown (0 included).
func collectGossip(ch chan<- prometheus.Metric, members []gossip.Member) {
	counts := map[gossip.Status]int{}
	for _, m := range members {
		counts[m.Status]++
	}
	for _, s := range []gossip.Status{gossip.StatusAlive, gossip.StatusSuspect, gossip.StatusFailed, gossip.StatusLeft} {
		ch <- prometheus.MustNewConstMetric(descGossip, prometheus.GaugeValue, float64(counts[s]), s.String())
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// registerAll registers cs with reg, or none of them.
func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			unregisterAll(reg, cs[:i]...)
			return fmt.Errorf("register metrics: %w (is another node of this process named the same?)", err)
		}
	}
	return nil
}

// unregisterAll unregisters cs from reg.
func unregisterAll(reg prometheus.Registerer, cs ...prometheus.Collector) {
	for _, c := range cs {
		reg.Unregister(c)
	}
}

// nodeRegisterer is reg with every series labelled with the process's
// node name, so that the nodes of one process (`shoal dev`) stay apart.
func nodeRegisterer(reg prometheus.Registerer, name string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, reg)
}
