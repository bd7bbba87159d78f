package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"shoal/api"
)

// User is an account of the cluster (the /v1/users API). Token is set only
// in the answer that made it: the cluster keeps a hash of it, nothing
// else, so it cannot be shown again.
type User = api.User

// NewUser describes a user to add. A nil Uid takes the lowest free uid
// from 1000; a nil Gid is the uid.
type NewUser struct {
	Name     string
	Uid, Gid *uint32
	Groups   []uint32
	// Admin makes the user root in permission checks, able to manage
	// users and keys. Mount lets the user's token act for the uids of a
	// mount host's users (with that host's certificate).
	Admin, Mount bool
}

// OwnedFile is one inode a user owns, with one of its paths ("" for a
// file that is open somewhere but has no name left).
type OwnedFile = api.OwnedFile

// KeyringResult is what the cluster's members answered to a gossip
// keyring operation.
type KeyringResult = api.KeyringResult

// apiCall makes a request to an API path outside /v1/fs with a small JSON
// answer, decoded into out when not nil.
func (c *Client) apiCall(ctx context.Context, method, path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.callURL(ctx, method, path, u, out)
}

// secretCall is apiCall for a request whose answer carries a secret the
// router makes for it (a token, an access key): only the cluster's hash
// of it is kept, so a retry after the request may have reached a router
// would answer a secret other than the one kept. It is sent again only
// when no router could be reached.
func (c *Client) secretCall(ctx context.Context, method, path string, q url.Values, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := c.send(ctx, request{method: method, what: path, url: u, bound: boundWhole, secret: true})
	if err != nil {
		return err
	}
	return decodeJSON(resp, path, out)
}

func userPath(name string) string { return "/v1/users/" + url.PathEscape(name) }

// AddUser adds a user (admins only) and returns it with its token, which
// is shown this once, and its home directory.
func (c *Client) AddUser(ctx context.Context, u NewUser) (User, error) {
	q := url.Values{}
	if u.Uid != nil {
		q.Set("uid", strconv.FormatUint(uint64(*u.Uid), 10))
	}
	if u.Gid != nil {
		q.Set("gid", strconv.FormatUint(uint64(*u.Gid), 10))
	}
	if len(u.Groups) > 0 {
		gs := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		q.Set("groups", strings.Join(gs, ","))
	}
	if u.Admin {
		q.Set("admin", "1")
	}
	if u.Mount {
		q.Set("mount", "1")
	}
	var out User
	err := c.secretCall(ctx, http.MethodPost, userPath(u.Name), q, &out)
	return out, err
}

// Users lists every user (admins only).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out api.UserList
	err := c.apiCall(ctx, http.MethodGet, "/v1/users", nil, &out)
	return out.Users, err
}

// RemoveUser removes a user (admins only): its token stops working at
// once; its home and files stay.
func (c *Client) RemoveUser(ctx context.Context, name string) error {
	return c.apiCall(ctx, http.MethodDelete, userPath(name), nil, nil)
}

// RotateToken gives a user a new token and returns it; the old one stops
// working. Users may rotate their own; admins anyone's.
func (c *Client) RotateToken(ctx context.Context, name string) (User, error) {
	var out User
	err := c.secretCall(ctx, http.MethodPost, userPath(name)+"/token", nil, &out)
	return out, err
}

// AccessKey is an S3 access key of a user. Secret is set only in the
// answer that made it: it cannot be read back.
type AccessKey = api.AccessKey

// AddAccessKey makes an S3 access key for the user name (the user itself
// or an admin may); requests signed with it act as that user.
func (c *Client) AddAccessKey(ctx context.Context, name string) (AccessKey, error) {
	var out AccessKey
	err := c.secretCall(ctx, http.MethodPost, userPath(name)+"/keys", nil, &out)
	return out, err
}

// AccessKeys lists the S3 access keys of the user name, without secrets.
func (c *Client) AccessKeys(ctx context.Context, name string) ([]AccessKey, error) {
	var out api.AccessKeyList
	err := c.apiCall(ctx, http.MethodGet, userPath(name)+"/keys", nil, &out)
	return out.Keys, err
}

// RemoveAccessKey removes the access key id of the user name: requests
// signed with it fail from then on.
func (c *Client) RemoveAccessKey(ctx context.Context, name, id string) error {
	return c.apiCall(ctx, http.MethodDelete, userPath(name)+"/keys/"+url.PathEscape(id), nil, nil)
}

// WhoAmI returns the user the client's token belongs to.
func (c *Client) WhoAmI(ctx context.Context) (User, error) {
	var out User
	err := c.apiCall(ctx, http.MethodGet, "/v1/whoami", nil, &out)
	return out, err
}

// Owned lists, in inode order, up to limit inodes the user owns with
// inode numbers above after, and returns the after of the next page (0
// when this was the last). Users may list their own; admins anyone's.
func (c *Client) Owned(ctx context.Context, name string, after uint64, limit int) ([]OwnedFile, uint64, error) {
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.OwnedPage
	err := c.apiCall(ctx, http.MethodGet, userPath(name)+"/files", q, &out)
	return out.Files, out.Next, err
}

// Keyring runs a gossip keyring operation on the whole cluster (admins
// only): op is list, install, use or remove; key is base64 (not for list).
func (c *Client) Keyring(ctx context.Context, op, key string) (KeyringResult, error) {
	var out KeyringResult
	if op == "list" {
		return out, c.apiCall(ctx, http.MethodGet, "/v1/keyring", nil, &out)
	}
	return out, c.apiCall(ctx, http.MethodPost, "/v1/keyring", url.Values{"op": {op}, "key": {key}}, &out)
}

// ChunkInfo is one chunk of a file's content: its name on the disks of
// the group that keeps it.
type ChunkInfo = api.ChunkInfo

// Chunks lists the chunks of the file at path, in order (admins only);
// none for a small file kept in its metadata.
func (c *Client) Chunks(ctx context.Context, path string) ([]ChunkInfo, error) {
	var out api.ChunkList
	err := c.call(ctx, http.MethodGet, path, url.Values{"op": {"chunks"}}, &out)
	return out.Chunks, err
}
