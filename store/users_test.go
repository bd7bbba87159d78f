package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

func tokenHash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func userAddOp(name string, u meta.User) meta.Op {
	u.Name = name
	return meta.Op{Kind: meta.OpUserAdd, User: &u, Time: 10}
}

// usApply applies op and, when it fails, checks that it changed nothing.
// Every op must keep the tree and its indexes consistent.
func usApply(t *testing.T, db *bbolt.DB, op meta.Op, code meta.Code) meta.Result {
	t.Helper()
	var before string
	db.View(func(tx *bbolt.Tx) error { before = nsDigest(tx); return nil })
	r := nsApply(t, db, op)
	if r.Code != code {
		t.Fatalf("%+v: got %q, want %q", op, r.Code, code)
	}
	db.View(func(tx *bbolt.Tx) error {
		if code != meta.CodeOK && nsDigest(tx) != before {
			t.Errorf("%+v failed but changed the database", op)
		}
		for _, check := range []func(*bbolt.Tx) error{nsCheckTree, nsCheckIndexes, usCheckTokens} {
			if err := check(tx); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	return r
}

// usCheckTokens verifies that tokens holds exactly the non-zero token
// hash of every user.
func usCheckTokens(tx *bbolt.Tx) error {
	want := map[string]string{}
	us, err := listUsers(tx)
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.TokenHash != [32]byte{} {
			want[string(u.TokenHash[:])] = u.Name
		}
		for _, k := range u.Keys {
			h := meta.AccessKeyHash(k.ID)
			want[string(h[:])] = u.Name
		}
	}
	got := map[string]string{}
	bucketIn(tx, bucketTokens).forEach(func(k, v []byte) error { got[string(k)] = string(v); return nil })
	if len(got) != len(want) {
		return fmt.Errorf("tokens %d keys, users hold %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("token of %s points at %q", v, got[k])
		}
	}
	return nil
}

func usUser(t *testing.T, db *bbolt.DB, name string) (meta.User, bool) {
	t.Helper()
	var u meta.User
	var ok bool
	if err := db.View(func(tx *bbolt.Tx) (err error) { u, ok, err = userByName(tx, name); return err }); err != nil {
		t.Fatal(err)
	}
	return u, ok
}

func usByToken(t *testing.T, db *bbolt.DB, token string) (string, bool) {
	t.Helper()
	var u meta.User
	var ok bool
	if err := db.View(func(tx *bbolt.Tx) (err error) { u, ok, err = userByToken(tx, tokenHash(token)); return err }); err != nil {
		t.Fatal(err)
	}
	return u.Name, ok
}

func TestUserAdd(t *testing.T) {
	db := nsOpenDB(t)
	r := usApply(t, db, userAddOp("alice", meta.User{AutoUid: true, AutoGid: true, Admin: true, Groups: []uint32{7}, TokenHash: tokenHash("a")}), meta.CodeOK)
	if u := r.User; u == nil || u.Uid != 1000 || u.Gid != 1000 || u.TokenHash != ([32]byte{}) || !u.Admin || u.Created != 10 {
		t.Fatalf("result user %+v", r.User)
	}
	home := nsLookupAt(t, db, 0, "/home/alice")
	if in := r.Inode; in == nil || in.Ino != home.Ino || in.Uid != 1000 || in.Gid != 1000 || in.Mode != 0o700 || in.Type != meta.TypeDir {
		t.Fatalf("home %+v, result %+v", home, r.Inode)
	}
	if h := nsLookupAt(t, db, 0, "/home"); h.Uid != 0 || h.Gid != 0 || h.Mode != 0o755 {
		t.Fatalf("/home %+v", h)
	}
	stored, ok := usUser(t, db, "alice")
	if !ok || stored.AutoUid || stored.AutoGid || stored.TokenHash != tokenHash("a") || !slices.Equal(stored.Groups, []uint32{7}) {
		t.Fatalf("stored %+v", stored)
	}

	// A file owned by uid 1001 keeps that uid from the next automatic
	// pick: a new user must not receive someone's files.
	nsWant(t, nsApply(t, db, meta.Op{Kind: meta.OpCreate, Path: "/x", Uid: 1001}), meta.CodeOK)
	r = usApply(t, db, userAddOp("bob", meta.User{AutoUid: true, Gid: 50, TokenHash: tokenHash("b")}), meta.CodeOK)
	if r.User.Uid != 1002 || r.User.Gid != 50 {
		t.Fatalf("bob %+v", r.User)
	}
	usApply(t, db, userAddOp("carol", meta.User{Uid: 1000}), meta.CodeExists)
	usApply(t, db, userAddOp("carol", meta.User{Uid: 1001, TokenHash: tokenHash("b")}), meta.CodeExists)
	usApply(t, db, userAddOp("bob", meta.User{Uid: 5}), meta.CodeExists)
	r = usApply(t, db, userAddOp("carol", meta.User{Uid: 1001, Gid: 1001}), meta.CodeOK)
	if r.User.Uid != 1001 || r.Inode.Uid != 1001 {
		t.Fatalf("carol %+v %+v", r.User, r.Inode)
	}
	if name, ok := usByToken(t, db, "carol"); ok {
		t.Fatalf("a user without a token is found by one: %s", name)
	}

	for _, name := range []string{"", "Alice", "1abc", "-x", "a b", "a/b", "a.b", "abcdefghijabcdefghijabcdefghijabc", "é"} {
		usApply(t, db, userAddOp(name, meta.User{AutoUid: true}), meta.CodeInvalid)
	}
	for _, name := range []string{"_", "a", "a-1_b", "abcdefghijabcdefghijabcdefghijab"} {
		usApply(t, db, userAddOp(name, meta.User{AutoUid: true}), meta.CodeOK)
	}
	usApply(t, db, meta.Op{Kind: meta.OpUserAdd}, meta.CodeInvalid)

	var list []meta.User
	db.View(func(tx *bbolt.Tx) (err error) { list, err = listUsers(tx); return err })
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	if want := []string{"_", "a", "a-1_b", "abcdefghijabcdefghijabcdefghijab", "alice", "bob", "carol"}; !slices.Equal(names, want) {
		t.Fatalf("users %q, want %q", names, want)
	}
}

func TestUserBootstrap(t *testing.T) {
	db := nsOpenDB(t)
	op := userAddOp("root", meta.User{Uid: 0, Admin: true, TokenHash: tokenHash("r")})
	op.Bootstrap = true
	usApply(t, db, op, meta.CodeOK)
	// A second router seeding the first admin finds one there.
	op2 := userAddOp("admin", meta.User{Uid: 1, Admin: true, TokenHash: tokenHash("s")})
	op2.Bootstrap = true
	usApply(t, db, op2, meta.CodeExists)
	if name, ok := usByToken(t, db, "r"); !ok || name != "root" {
		t.Fatalf("bootstrap user by token: %q %v", name, ok)
	}
	// The first admin is root and gets no home: the cluster stays empty.
	err := db.View(func(tx *bbolt.Tx) error {
		if _, err := lookupPath(tx, "/home"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("after the bootstrap, /home: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUserTokenAndRemove(t *testing.T) {
	db := nsOpenDB(t)
	usApply(t, db, userAddOp("alice", meta.User{AutoUid: true, TokenHash: tokenHash("a1")}), meta.CodeOK)
	usApply(t, db, userAddOp("bob", meta.User{AutoUid: true, TokenHash: tokenHash("b")}), meta.CodeOK)
	if name, ok := usByToken(t, db, "a1"); !ok || name != "alice" {
		t.Fatalf("by token: %q %v", name, ok)
	}
	for _, tok := range []string{"a2", "", "x"} {
		if _, ok := usByToken(t, db, tok); ok {
			t.Fatalf("token %q finds a user", tok)
		}
	}
	rotate := func(name, tok string) meta.Op {
		return meta.Op{Kind: meta.OpUserToken, User: &meta.User{Name: name, TokenHash: tokenHash(tok)}}
	}
	usApply(t, db, rotate("alice", "b"), meta.CodeExists)
	usApply(t, db, rotate("nobody", "n"), meta.CodeNotFound)
	usApply(t, db, meta.Op{Kind: meta.OpUserToken}, meta.CodeInvalid)
	if r := usApply(t, db, rotate("alice", "a2"), meta.CodeOK); r.User == nil || r.User.Name != "alice" || r.User.TokenHash != ([32]byte{}) {
		t.Fatalf("rotate result %+v", r.User)
	}
	if _, ok := usByToken(t, db, "a1"); ok {
		t.Fatal("the old token still works")
	}
	if name, ok := usByToken(t, db, "a2"); !ok || name != "alice" {
		t.Fatalf("new token: %q %v", name, ok)
	}
	// An all-zero hash revokes the token.
	usApply(t, db, meta.Op{Kind: meta.OpUserToken, User: &meta.User{Name: "alice"}}, meta.CodeOK)
	if _, ok := usByToken(t, db, "a2"); ok {
		t.Fatal("a revoked token still works")
	}

	usApply(t, db, meta.Op{Kind: meta.OpUserRemove, User: &meta.User{Name: "nobody"}}, meta.CodeNotFound)
	usApply(t, db, meta.Op{Kind: meta.OpUserRemove}, meta.CodeInvalid)
	usApply(t, db, meta.Op{Kind: meta.OpUserRemove, User: &meta.User{Name: "bob"}}, meta.CodeOK)
	if _, ok := usUser(t, db, "bob"); ok {
		t.Fatal("removed user still there")
	}
	if _, ok := usByToken(t, db, "b"); ok {
		t.Fatal("removed user's token still works")
	}
	if home := nsLookupAt(t, db, 0, "/home/bob"); home.Uid != 1001 {
		t.Fatalf("the home of a removed user: %+v", home)
	}
	// Added again, bob finds his home, given to his new uid.
	r := usApply(t, db, userAddOp("bob", meta.User{AutoUid: true, AutoGid: true}), meta.CodeOK)
	if home := nsLookupAt(t, db, 0, "/home/bob"); home.Ino != r.Inode.Ino || home.Uid != 1002 || home.Gid != 1002 || home.CTime != 10 {
		t.Fatalf("home kept: %+v, result %+v", home, r.Inode)
	}
}

func TestUserHomeConflicts(t *testing.T) {
	db := nsOpenDB(t)
	usApply(t, db, putOp("/home", 1), meta.CodeOK)
	usApply(t, db, userAddOp("alice", meta.User{AutoUid: true}), meta.CodeExists)
	usApply(t, db, deleteOp("/home"), meta.CodeOK)
	usApply(t, db, putOp("/home/alice", 1), meta.CodeOK)
	usApply(t, db, userAddOp("alice", meta.User{AutoUid: true}), meta.CodeExists)
	usApply(t, db, userAddOp("bob", meta.User{AutoUid: true}), meta.CodeOK)
}

func TestUserOpsNeedRoot(t *testing.T) {
	db := nsOpenDB(t)
	usApply(t, db, userAddOp("alice", meta.User{AutoUid: true, TokenHash: tokenHash("a")}), meta.CodeOK)
	for _, c := range []*meta.Cred{alice, bob, hostBob, {Uid: 0}} {
		add := userAddOp("eve", meta.User{AutoUid: true})
		add.Cred = c
		usApply(t, db, add, meta.CodePerm)
		usApply(t, db, meta.Op{Kind: meta.OpUserRemove, User: &meta.User{Name: "alice"}, Cred: c}, meta.CodePerm)
		usApply(t, db, meta.Op{Kind: meta.OpUserToken, User: &meta.User{Name: "alice", TokenHash: tokenHash("e")}, Cred: c}, meta.CodePerm)
	}
	add := userAddOp("eve", meta.User{AutoUid: true})
	add.Cred = admin
	// The home belongs to the new user, not to the admin who added it.
	if r := usApply(t, db, add, meta.CodeOK); r.Inode.Uid != 1001 {
		t.Fatalf("home made by an admin: %+v", r.Inode)
	}
	usApply(t, db, meta.Op{Kind: meta.OpUserRemove, User: &meta.User{Name: "eve"}, Cred: admin}, meta.CodeOK)
}

func TestUserAccessKeys(t *testing.T) {
	db := nsOpenDB(t)
	usApply(t, db, userAddOp("alice", meta.User{AutoUid: true, TokenHash: tokenHash("a")}), meta.CodeOK)
	usApply(t, db, userAddOp("bob", meta.User{AutoUid: true, TokenHash: tokenHash("b")}), meta.CodeOK)
	keyOp := func(kind meta.OpKind, name, id string) meta.Op {
		return meta.Op{Kind: kind, Time: 20, User: &meta.User{Name: name, Keys: []meta.AccessKey{{ID: id, Secret: []byte("sealed")}}}}
	}
	byKey := func(id string) (string, bool) {
		var u meta.User
		var ok bool
		db.View(func(tx *bbolt.Tx) (err error) { u, ok, err = userByToken(tx, meta.AccessKeyHash(id)); return err })
		return u.Name, ok
	}
	const k1, k2 = "AKAAAAAAAAAAAAAAAAA2", "AKBBBBBBBBBBBBBBBBB7"
	r := usApply(t, db, keyOp(meta.OpUserKeyAdd, "alice", k1), meta.CodeOK)
	if r.User == nil || len(r.User.Keys) != 0 {
		t.Fatalf("the result carries the user's keys: %+v", r.User)
	}
	if name, ok := byKey(k1); !ok || name != "alice" {
		t.Fatalf("by key: %q %v", name, ok)
	}
	if u, _ := usUser(t, db, "alice"); len(u.Keys) != 1 || u.Keys[0].ID != k1 || string(u.Keys[0].Secret) != "sealed" || u.Keys[0].Created != 20 {
		t.Fatalf("stored keys %+v", u.Keys)
	}
	// An ID is held once in the whole cluster; malformed ones and empty
	// secrets are refused; a key is not a token.
	usApply(t, db, keyOp(meta.OpUserKeyAdd, "bob", k1), meta.CodeExists)
	usApply(t, db, keyOp(meta.OpUserKeyAdd, "bob", "short"), meta.CodeInvalid)
	usApply(t, db, keyOp(meta.OpUserKeyAdd, "bob", "akbbbbbbbbbbbbbbbbb7"), meta.CodeInvalid)
	usApply(t, db, meta.Op{Kind: meta.OpUserKeyAdd, User: &meta.User{Name: "bob", Keys: []meta.AccessKey{{ID: k2}}}}, meta.CodeInvalid)
	usApply(t, db, keyOp(meta.OpUserKeyAdd, "nobody", k2), meta.CodeNotFound)
	if _, ok := usByToken(t, db, k1); ok {
		t.Fatal("an access key ID works as a token")
	}
	for i := range meta.MaxAccessKeys - 1 {
		usApply(t, db, keyOp(meta.OpUserKeyAdd, "alice", "AKCCCCCCCCCCCCCCCCC"+string(rune('A'+i))), meta.CodeOK)
	}
	usApply(t, db, keyOp(meta.OpUserKeyAdd, "alice", k2), meta.CodeInvalid)

	usApply(t, db, keyOp(meta.OpUserKeyRemove, "bob", k1), meta.CodeNotFound)
	usApply(t, db, keyOp(meta.OpUserKeyRemove, "alice", k1), meta.CodeOK)
	if _, ok := byKey(k1); ok {
		t.Fatal("a removed key still finds its user")
	}
	usApply(t, db, keyOp(meta.OpUserKeyAdd, "bob", k1), meta.CodeOK)
	// Removing a user removes its keys; the token stays alice's alone.
	usApply(t, db, meta.Op{Kind: meta.OpUserRemove, User: &meta.User{Name: "alice"}}, meta.CodeOK)
	if _, ok := byKey("AKCCCCCCCCCCCCCCCCCA"); ok {
		t.Fatal("a removed user's key still works")
	}
	if name, ok := byKey(k1); !ok || name != "bob" {
		t.Fatalf("bob's key: %q %v", name, ok)
	}
	admin := &meta.Cred{Uid: 1000}
	op := keyOp(meta.OpUserKeyAdd, "bob", k2)
	op.Cred = admin
	usApply(t, db, op, meta.CodePerm)
}
