// Package harness runs real Shoal clusters, a shoal process per node, for
// the end-to-end tests, the fault campaign and 'shoal bench --local': it
// builds the binary, makes the secrets, picks free ports, starts, kills,
// pauses and restarts processes, waits until the router reports the
// cluster healthy, and records acknowledged writes to read back after a
// fault. Its one poll loop (WaitFor, Await) always has a deadline and says
// what it waited for.
//
// It stands above client and below everything that starts processes. No
// non-test code of client, gossip, replication, router or role may import
// it; their tests may.
package harness
