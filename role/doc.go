// Package role runs a Shoal process in its role: a storage node (primary,
// replica or standby) that follows its group's election from gossip and
// drives replication, or a router that serves the HTTP API.
package role
