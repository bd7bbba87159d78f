// Package meta is the vocabulary the cluster agrees on: the namespace
// operations a log entry carries (Op and its kinds), the inodes and
// results they make, the log records themselves (Entry, Ballot), content
// hashes and chunk references, and the namespace error codes. It has no
// behaviour beyond naming and checking values: store applies ops,
// replication orders them, router builds them.
package meta
