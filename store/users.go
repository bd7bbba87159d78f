package store

// The cluster's users, replicated with the namespace (the same log, the
// same transactions) in two buckets:
//
//	users   user name            ->  msgpack(User)
//	tokens  SHA-256 of a token   ->  user name
//	        meta.AccessKeyHash   ->  user name (S3 access keys)
//
// Only a hash of each token is kept, so a copy of the database (a
// snapshot sent to a new member, a backup) lets nobody sign in. A router
// hashes the bearer token of a request and finds its user with
// UserByToken. tokens holds one key for every user whose TokenHash is not
// all zeros, one for each access key of every user, and nothing else.
//
// Only root (an admin's Cred) or the cluster itself may change users.
// OpUserAdd also makes the user's home, /home/NAME, so a new account has
// a place it may write.

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
	"go.etcd.io/bbolt"

	"shoal/meta"
)

var (
	bucketUsers  = []byte("users")
	bucketTokens = []byte("tokens")
)

const (
	// firstAutoUid is the lowest uid OpUserAdd picks, above the system
	// accounts of a mount host (useradd's UID_MIN).
	firstAutoUid = 1000
	homeMode     = 0o700
	// maxUserName is useradd's limit, and keeps a home's name far below
	// NAME_MAX.
	maxUserName = 32
)

// validUserName reports whether s matches ^[a-z_][a-z0-9_-]{0,31}$, the
// names useradd accepts by default, which are safe as a path name.
func validUserName(s string) bool {
	if len(s) == 0 || len(s) > maxUserName {
		return false
	}
	for i, c := range []byte(s) {
		lower := c >= 'a' && c <= 'z' || c == '_'
		if !lower && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// userOpCode says whether c may change users: root and the cluster may.
func userOpCode(c *meta.Cred) meta.Code {
	if c == nil || c.Root {
		return meta.CodeOK
	}
	return meta.CodePerm
}

func (n *namespace) user(name string) (meta.User, bool, error) {
	v, err := n.users().get([]byte(name))
	if err != nil || v == nil {
		return meta.User{}, false, err
	}
	u, err := decodeUser(name, v)
	return u, err == nil, err
}

func decodeUser(name string, v []byte) (meta.User, error) {
	var u meta.User
	if err := msgpack.Unmarshal(v, &u); err != nil {
		return meta.User{}, fmt.Errorf("users: decode user %q: %w: %w", name, meta.ErrCorrupt, err)
	}
	if u.Name != name {
		return meta.User{}, fmt.Errorf("users: record %q holds user %q: %w", name, u.Name, meta.ErrCorrupt)
	}
	return u, nil
}

func (n *namespace) putUser(u meta.User) error {
	v, err := msgpack.Marshal(&u)
	if err != nil {
		return fmt.Errorf("users: encode user %q: %w", u.Name, err)
	}
	return n.users().put([]byte(u.Name), v)
}

// tokenFree reports whether hash may become a user's token: all zeros (no
// token) always may, any other hash only when nobody holds it.
func (n *namespace) tokenFree(hash [32]byte) (bool, error) {
	if hash == [32]byte{} {
		return true, nil
	}
	v, err := n.tokens().get(hash[:])
	return v == nil, err
}

// redacted is u as a Result carries it: without its token hash, which a
// result recorded for retries (requests.go) need not keep.
func redacted(u meta.User) *meta.User {
	u.TokenHash = [32]byte{}
	u.Keys = nil
	return &u
}

// userAdd adds op.User and makes its home. With op.Bootstrap it applies
// only while there is no user at all.
func (n *namespace) userAdd(op *meta.Op) (meta.Result, error) {
	if code := userOpCode(op.Cred); code != meta.CodeOK {
		return reject(code)
	}
	n.cred = nil // the home is the cluster's doing, not the admin's
	if op.User == nil || !validUserName(op.User.Name) {
		return reject(meta.CodeInvalid)
	}
	if op.Bootstrap {
		if k, _, err := n.users().cursor().first(); err != nil || k != nil {
			return meta.Result{Code: meta.CodeExists}, err
		}
	}
	u := *op.User
	u.AutoUid, u.AutoGid, u.Created = false, false, op.Time
	u.Groups = append([]uint32(nil), u.Groups...)
	if _, taken, err := n.user(u.Name); err != nil || taken {
		return meta.Result{Code: meta.CodeExists}, err
	}
	uids, err := n.userUids()
	if err != nil {
		return meta.Result{}, err
	}
	switch {
	case op.User.AutoUid:
		var ok bool
		if u.Uid, ok, err = n.freeUid(uids); err != nil || !ok {
			return meta.Result{Code: meta.CodeExists}, err
		}
	case uids[u.Uid]:
		return reject(meta.CodeExists)
	}
	if op.User.AutoGid {
		u.Gid = u.Uid
	}
	if free, err := n.tokenFree(u.TokenHash); err != nil || !free {
		return meta.Result{Code: meta.CodeExists}, err
	}
	// The first admin, made by a router at bootstrap, is root: like root
	// on a host it has no home under /home, and an empty cluster stays
	// empty until someone writes to it.
	var home homePlan
	if !op.Bootstrap {
		var code meta.Code
		if home, code, err = n.planHome(u.Name); err != nil || code != meta.CodeOK {
			return meta.Result{Code: code}, err
		}
	}
	if err := n.putUser(u); err != nil {
		return meta.Result{}, err
	}
	if u.TokenHash != [32]byte{} {
		if err := n.tokens().put(u.TokenHash[:], []byte(u.Name)); err != nil {
			return meta.Result{}, err
		}
	}
	if op.Bootstrap {
		return meta.Result{User: redacted(u)}, nil
	}
	dir, err := n.makeHome(home, u, op.Time)
	if err != nil {
		return meta.Result{}, err
	}
	return meta.Result{User: redacted(u), Inode: ptr(dir.Attrs())}, nil
}

// userUids returns the uids of all users.
func (n *namespace) userUids() (map[uint32]bool, error) {
	uids := map[uint32]bool{}
	err := n.users().forEach(func(k, v []byte) error {
		u, err := decodeUser(string(k), v)
		uids[u.Uid] = true
		return err
	})
	return uids, err
}

// freeUid picks the lowest uid from firstAutoUid up that no user has and
// that owns no inode: the files of a removed user stay, and a new user
// must not receive them with the uid. An explicit uid may reuse one on
// purpose.
func (n *namespace) freeUid(taken map[uint32]bool) (uint32, bool, error) {
	c := n.owners().cursor()
	for uid := uint64(firstAutoUid); uid <= 1<<32-1; uid++ {
		if taken[uint32(uid)] {
			continue
		}
		k, _, err := c.seek(ownerKey(uint32(uid), 0))
		if err != nil {
			return 0, false, err
		}
		if len(k) >= 4 && binary.BigEndian.Uint32(k) == uint32(uid) {
			continue
		}
		return uint32(uid), true, nil
	}
	return 0, false, nil
}

// homePlan is where OpUserAdd puts a home, decided before its first write.
type homePlan struct {
	home, dir         meta.Inode // /home and /home/NAME, when they exist
	haveHome, haveDir bool
}

// planHome finds /home and /home/name. Either may be missing, and an
// existing /home/name directory is kept (a user added again finds its
// files), but a file at either path fails the op with CodeExists.
func (n *namespace) planHome(name string) (homePlan, meta.Code, error) {
	var p homePlan
	ino, ok, err := n.child(RootIno, "home")
	if err != nil || !ok {
		return p, meta.CodeOK, err
	}
	if p.home, err = n.get(ino); err != nil {
		return p, meta.CodeOK, err
	}
	if p.home.Type != meta.TypeDir {
		return p, meta.CodeExists, nil
	}
	p.haveHome = true
	if ino, ok, err = n.child(p.home.Ino, name); err != nil || !ok {
		return p, meta.CodeOK, err
	}
	if p.dir, err = n.get(ino); err != nil {
		return p, meta.CodeOK, err
	}
	if p.dir.Type != meta.TypeDir {
		return p, meta.CodeExists, nil
	}
	p.haveDir = true
	return p, meta.CodeOK, nil
}

// makeHome makes what p found missing: /home (root's, 0755) and the home
// itself (the user's, 0700); or gives the existing home to the user.
func (n *namespace) makeHome(p homePlan, u meta.User, now int64) (meta.Inode, error) {
	if p.haveDir {
		d := p.dir
		d.Uid, d.Gid, d.CTime = u.Uid, u.Gid, now
		return d, n.save(d)
	}
	home := p.home
	if !p.haveHome {
		root, err := n.get(RootIno)
		if err != nil {
			return meta.Inode{}, err
		}
		if home, err = n.addDir(&root, "home", defaultDirMode, &meta.Op{Time: now}); err != nil {
			return meta.Inode{}, err
		}
	}
	return n.addDir(&home, u.Name, homeMode, &meta.Op{Time: now, Uid: u.Uid, Gid: u.Gid})
}

// userRemove removes the user op.User.Name and its token. Its home and
// files stay, owned by its uid.
func (n *namespace) userRemove(op *meta.Op) (meta.Result, error) {
	if code := userOpCode(op.Cred); code != meta.CodeOK {
		return reject(code)
	}
	if op.User == nil {
		return reject(meta.CodeInvalid)
	}
	u, ok, err := n.user(op.User.Name)
	if err != nil || !ok {
		return meta.Result{Code: meta.CodeNotFound}, err
	}
	if err := n.dropToken(u); err != nil {
		return meta.Result{}, err
	}
	for _, k := range u.Keys {
		h := meta.AccessKeyHash(k.ID)
		if err := n.tokens().del(h[:]); err != nil {
			return meta.Result{}, err
		}
	}
	return meta.Result{}, n.users().del([]byte(u.Name))
}

// userKeyAdd gives the user op.User.Name the access key op.User.Keys[0],
// whose ID no user may hold yet.
func (n *namespace) userKeyAdd(op *meta.Op) (meta.Result, error) {
	if code := userOpCode(op.Cred); code != meta.CodeOK {
		return reject(code)
	}
	if op.User == nil || len(op.User.Keys) != 1 || !meta.ValidAccessKeyID(op.User.Keys[0].ID) || len(op.User.Keys[0].Secret) == 0 {
		return reject(meta.CodeInvalid)
	}
	u, ok, err := n.user(op.User.Name)
	if err != nil || !ok {
		return meta.Result{Code: meta.CodeNotFound}, err
	}
	if len(u.Keys) >= meta.MaxAccessKeys {
		return reject(meta.CodeInvalid) // the router says why before proposing
	}
	k := op.User.Keys[0]
	k.Created = op.Time
	h := meta.AccessKeyHash(k.ID)
	if free, err := n.tokenFree(h); err != nil || !free {
		return meta.Result{Code: meta.CodeExists}, err
	}
	if err := n.tokens().put(h[:], []byte(u.Name)); err != nil {
		return meta.Result{}, err
	}
	u.Keys = append(u.Keys, k)
	return meta.Result{User: redacted(u)}, n.putUser(u)
}

// userKeyRemove takes the access key op.User.Keys[0].ID from the user
// op.User.Name; requests signed with it fail from then on.
func (n *namespace) userKeyRemove(op *meta.Op) (meta.Result, error) {
	if code := userOpCode(op.Cred); code != meta.CodeOK {
		return reject(code)
	}
	if op.User == nil || len(op.User.Keys) != 1 {
		return reject(meta.CodeInvalid)
	}
	u, ok, err := n.user(op.User.Name)
	if err != nil || !ok {
		return meta.Result{Code: meta.CodeNotFound}, err
	}
	i := slices.IndexFunc(u.Keys, func(k meta.AccessKey) bool { return k.ID == op.User.Keys[0].ID })
	if i < 0 {
		return reject(meta.CodeNotFound)
	}
	h := meta.AccessKeyHash(u.Keys[i].ID)
	if err := n.tokens().del(h[:]); err != nil {
		return meta.Result{}, err
	}
	u.Keys = slices.Delete(u.Keys, i, i+1)
	return meta.Result{User: redacted(u)}, n.putUser(u)
}

// dropToken removes the token index entry of u, if it has one.
func (n *namespace) dropToken(u meta.User) error {
	if u.TokenHash == [32]byte{} {
		return nil
	}
	if v, err := n.tokens().get(u.TokenHash[:]); err != nil || string(v) != u.Name {
		return err
	}
	return n.tokens().del(u.TokenHash[:])
}

// userToken gives the user op.User.Name the token hash op.User.TokenHash
// in place of its old one, which stops working (all zeros: no token).
func (n *namespace) userToken(op *meta.Op) (meta.Result, error) {
	if code := userOpCode(op.Cred); code != meta.CodeOK {
		return reject(code)
	}
	if op.User == nil {
		return reject(meta.CodeInvalid)
	}
	u, ok, err := n.user(op.User.Name)
	if err != nil || !ok {
		return meta.Result{Code: meta.CodeNotFound}, err
	}
	if free, err := n.tokenFree(op.User.TokenHash); err != nil || !free {
		return meta.Result{Code: meta.CodeExists}, err
	}
	if err := n.dropToken(u); err != nil {
		return meta.Result{}, err
	}
	u.TokenHash = op.User.TokenHash
	if u.TokenHash != [32]byte{} {
		if err := n.tokens().put(u.TokenHash[:], []byte(u.Name)); err != nil {
			return meta.Result{}, err
		}
	}
	return meta.Result{User: redacted(u)}, n.putUser(u)
}

// userBuckets returns the user buckets of tx, which InitNamespace makes.
func userBuckets(tx *bbolt.Tx) (users, tokens bucket, err error) {
	users, tokens = bucketIn(tx, bucketUsers), bucketIn(tx, bucketTokens)
	if !users.exists() || !tokens.exists() {
		return bucket{}, bucket{}, fmt.Errorf("users: buckets %s and %s missing: call InitNamespace when opening the store", bucketUsers, bucketTokens)
	}
	return users, tokens, nil
}

// userByToken returns the user whose token hashes to hash, if any. An
// all-zero hash is nobody's token.
func userByToken(tx *bbolt.Tx, hash [32]byte) (meta.User, bool, error) {
	users, tokens, err := userBuckets(tx)
	if err != nil || hash == [32]byte{} {
		return meta.User{}, false, err
	}
	name, err := tokens.get(hash[:])
	if err != nil || name == nil {
		return meta.User{}, false, err
	}
	v, err := users.get(name)
	if err != nil {
		return meta.User{}, false, err
	}
	if v == nil {
		return meta.User{}, false, fmt.Errorf("users: token of missing user %q: %w", name, meta.ErrCorrupt)
	}
	u, err := decodeUser(string(name), v)
	if err != nil {
		return meta.User{}, false, err
	}
	// The index found the name; the stored hashes have the last word, in
	// constant time so its timing tells nothing about a near miss.
	if !u.Holds(hash) {
		return meta.User{}, false, nil
	}
	return u, true, nil
}

// userByName returns the user called name, if any.
func userByName(tx *bbolt.Tx, name string) (meta.User, bool, error) {
	users, _, err := userBuckets(tx)
	if err != nil {
		return meta.User{}, false, err
	}
	v, err := users.get([]byte(name))
	if err != nil || v == nil {
		return meta.User{}, false, err
	}
	u, err := decodeUser(name, v)
	return u, err == nil, err
}

// listUsers returns every user, sorted by name.
func listUsers(tx *bbolt.Tx) ([]meta.User, error) {
	users, _, err := userBuckets(tx)
	if err != nil {
		return nil, err
	}
	var out []meta.User
	err = users.forEach(func(k, v []byte) error {
		u, err := decodeUser(string(k), v)
		out = append(out, u)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
