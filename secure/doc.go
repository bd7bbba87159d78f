// Package secure makes and loads the secrets a Shoal cluster runs on: its
// certificate authority and the certificates it signs, the gossip key, the
// users' tokens and the data key, and it builds the TLS settings of every
// connection and the encryption of file content at rest. It does no
// network or cluster I/O itself; callers pass what it returns to the
// transports, the router and the client.
package secure
