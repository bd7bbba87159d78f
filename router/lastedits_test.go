package router

import (
	"context"
	"testing"

	"shoal/meta"
)

// TestLastEditServesItsCallerOnly: the note of a file's content serves
// the caller whose change made it, and no other, so a caller who may not
// write the file is refused by a read before anything is stored; it is
// kept only for a file named by number, and an older change's note does
// not replace a newer one's.
func TestLastEditServesItsCallerOnly(t *testing.T) {
	as := func(c *meta.Cred) context.Context {
		return context.WithValue(context.Background(), callerKey{}, &caller{cred: c})
	}
	alice := as(&meta.Cred{Uid: 1000, Gid: 1000, Groups: []uint32{4, 24}})
	alsoAlice := as(&meta.Cred{Uid: 1000, Gid: 1000, Groups: []uint32{4, 24}})
	bob := as(&meta.Cred{Uid: 1001, Gid: 1000})
	aliceInOtherGroups := as(&meta.Cred{Uid: 1000, Gid: 1000, Groups: []uint32{4}})
	insecure := context.Background()
	f := target{at: 7, path: "/"}
	file := &meta.Inode{Size: 3, Data: []byte("abc")}

	var e lastEdits
	e.put(alice, f, 5, file)
	if got := e.get(alsoAlice, f); got == nil || got.Gen != 5 || got.Ino != 7 || string(got.Data) != "abc" {
		t.Fatalf("the note for its own caller: %+v, want generation 5 of inode 7", got)
	}
	for name, ctx := range map[string]context.Context{"another user": bob, "the same uid in other groups": aliceInOtherGroups, "no caller": insecure} {
		if got := e.get(ctx, f); got != nil {
			t.Errorf("%s got the note of alice's change: %+v", name, got)
		}
	}
	e.put(bob, f, 4, file)
	if got := e.get(alice, f); got == nil || got.Gen != 5 {
		t.Errorf("a note of generation 4 replaced one of 5: alice gets %+v", got)
	}
	e.put(insecure, f, 6, file)
	if got := e.get(insecure, f); got == nil || got.Gen != 6 {
		t.Errorf("without security, the note serves every request: %+v", got)
	}
	byPath := target{path: "/a/f"}
	e.put(insecure, byPath, 1, file)
	if got := e.get(insecure, byPath); got != nil {
		t.Errorf("a file named by path is noted: %+v", got)
	}
}
