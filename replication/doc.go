// Package replication keeps a group's members identical: the primary orders
// mutations in a log, replicates them over msgpack, acknowledges a write
// once a majority holds it durably, and a new primary recovers every
// committed entry from a majority before it accepts writes.
package replication
