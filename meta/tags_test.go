package meta

import (
	"reflect"
	"strings"
	"testing"
)

// TestMsgpackNamesUnique: two fields of one struct under the same msgpack
// name would decode one into the other (a bool read as a number fails
// the whole message), and only on the wire.
func TestMsgpackNamesUnique(t *testing.T) {
	for _, v := range []any{
		LockOp{}, LockWaiterRef{}, LockHolder{}, LockWaiter{}, LockState{},
		Ballot{}, ChunkRef{}, Inode{}, Object{}, Usage{}, DirEntry{}, Cred{}, User{}, AccessKey{},
		Op{}, SetAttr{}, Member{}, Result{}, Entry{}, OwnedInode{}, BucketDigest{},
	} {
		typ := reflect.TypeOf(v)
		seen := map[string]string{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if other, ok := seen[name]; ok {
				t.Errorf("%s: fields %s and %s are both %q on the wire", typ.Name(), other, f.Name, name)
			}
			seen[name] = f.Name
		}
	}
}
