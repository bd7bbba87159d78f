package api

import "time"

// User is an account of the cluster: the answer of GET /v1/whoami,
// POST /v1/users/NAME (add) and POST /v1/users/NAME/token (rotate), and
// the entries of UserList. Token is set only in the answer that made it:
// the cluster keeps a hash of it, nothing else, so it cannot be shown
// again.
type User struct {
	Name   string   `json:"name"`
	Uid    uint32   `json:"uid"`
	Gid    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	Admin  bool     `json:"admin"`
	Mount  bool     `json:"mount"`
	// Created is when the user was added, in UTC; absent (the zero time)
	// for a user the cluster does not keep: --insecure's root.
	Created time.Time `json:"created,omitzero"`
	Home    string    `json:"home,omitempty"`
	Token   string    `json:"token,omitempty"`
}

// UserList is the answer of GET /v1/users (admins only).
type UserList struct {
	Users []User `json:"users"`
}

// OwnedFile is one inode a user owns, with one of its paths ("" for a
// file that is open somewhere but has no name left).
type OwnedFile struct {
	Path string `json:"path"`
	Attr
}

// OwnedPage is the answer of GET /v1/users/NAME/files: one page, in inode
// order, of the inodes the user owns.
type OwnedPage struct {
	User  string      `json:"user"`
	Files []OwnedFile `json:"files"`
	// Next is the after= of the next page; absent (0) on the last page.
	Next uint64 `json:"next,omitempty"`
}

// KeyringResult is the answer of GET and POST /v1/keyring (admins only):
// what the cluster's members answered to a gossip keyring operation.
type KeyringResult struct {
	Nodes     int               `json:"nodes"`
	Responses int               `json:"responses"`
	Errors    int               `json:"errors"`
	Keys      map[string]int    `json:"keys"`    // base64 key: members holding it
	Primary   map[string]int    `json:"primary"` // base64 key: members sending with it
	Messages  map[string]string `json:"messages,omitempty"`
}

// AccessKey is an S3 access key of a user. The secret is in the answer
// of POST /v1/users/NAME/keys only: it cannot be read back.
type AccessKey struct {
	User    string    `json:"user"`
	ID      string    `json:"access_key_id"`
	Secret  string    `json:"secret_access_key,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

// AccessKeyList is the answer of GET /v1/users/NAME/keys.
type AccessKeyList struct {
	User string      `json:"user"`
	Keys []AccessKey `json:"keys"`
}
