// Package replication keeps a group's members identical: the primary orders
// mutations in a log, replicates them over msgpack, acknowledges a write
// once a majority holds it durably, and a new primary recovers every
// committed entry from a majority before it accepts writes. A new group
// forms first: its first member leads alone and adds the others one at
// a time, and it serves no client request until its configuration holds
// GroupSize voters (Status.Forming): in a group of three or more, the
// first write it acknowledges survives the loss of any one member.
//
// The protocol is a Machine (machine*.go): a state machine with no
// goroutine, lock, clock or I/O that takes one input at a time (a peer's
// request or answer, proposals, a tick, the gossip view, the outcome of a
// durable write) and returns a Ready, the work to do in order. A Node
// (driver.go) owns one Machine and is its only caller: one loop steps the
// inputs and carries out each Ready against store and the transport. The
// chunk maintainer (repair, garbage collection, scrub) and the verifier of
// the metadata store at rest run beside it. A member whose store finds
// meta.db corrupt stops answering as a member at once; once its owner has
// replaced the file with an empty one (store.Quarantine) it is rebuilding:
// it promises nothing to a recovering primary and does not lead until its
// primary finds it whole.
package replication
