// Package gossip tracks cluster membership over serf/memberlist, publishes each node's role in its gossip tags, and computes every group's primary from that view with the pure functions Elect and Decide.
package gossip
