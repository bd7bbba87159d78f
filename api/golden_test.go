package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// The golden JSON below is what routers have sent and clients have read:
// a change to a field's name, type or omitempty shows up here as a
// difference from it, in one direction or the other.

var (
	t0   = time.Date(2024, 5, 1, 12, 30, 45, 123456789, time.UTC)
	free = int64(10736369664)
	attr = Attr{Ino: 42, Type: TypeFile, Size: 5, Mode: 0o4755, ModeOctal: "4755", Nlink: 2, Uid: 1000, Gid: 100,
		ATime: t0, MTime: t0.Add(time.Second), CTime: time.Unix(0, 0).UTC(), Gen: 3}
	attrGolden = `"ino": 42, "type": "file", "size": 5, "mode": 2541, "mode_octal": "4755", "nlink": 2, "uid": 1000, "gid": 100,
		"atime": "2024-05-01T12:30:45.123456789Z", "mtime": "2024-05-01T12:30:46.123456789Z",
		"ctime": "1970-01-01T00:00:00Z", "gen": 3`
	symlink = Attr{Ino: 7, Type: TypeSymlink, Size: 4, Mode: 0o777, ModeOctal: "0777", Nlink: 1, ATime: t0, MTime: t0, CTime: t0, Target: "/x/y"}
)

var goldens = []struct {
	name   string
	value  any // a pointer, so that decoding into a fresh one compares
	golden string
}{
	{"Stat of a file", &Stat{Path: "/d/f", Attr: attr, Hash: "abc"},
		`{"path": "/d/f", ` + attrGolden + `, "hash": "abc"}`},
	{"Stat of a typed file", &Stat{Path: "/d/f", Attr: attr, Hash: "abc", ContentType: "text/plain"},
		`{"path": "/d/f", ` + attrGolden + `, "hash": "abc", "content_type": "text/plain"}`},
	{"Stat of a directory", &Stat{Path: "/d", Attr: Attr{Ino: 9, Type: TypeDir, Mode: 0o755, ModeOctal: "0755", Nlink: 3, ATime: t0, MTime: t0, CTime: t0,
		Usage: &Usage{Bytes: 1 << 30, Files: 12, Dirs: 3}}},
		`{"path": "/d", "ino": 9, "type": "dir", "size": 0, "mode": 493, "mode_octal": "0755", "nlink": 3, "uid": 0, "gid": 0,
		  "atime": "2024-05-01T12:30:45.123456789Z", "mtime": "2024-05-01T12:30:45.123456789Z", "ctime": "2024-05-01T12:30:45.123456789Z",
		  "gen": 0, "usage": {"bytes": 1073741824, "files": 12, "dirs": 3}, "hash": ""}`},
	{"Stat of a symlink", &Stat{Path: "/d/l", Attr: symlink},
		`{"path": "/d/l", "ino": 7, "type": "symlink", "size": 4, "mode": 511, "mode_octal": "0777", "nlink": 1, "uid": 0, "gid": 0,
		 "atime": "2024-05-01T12:30:45.123456789Z", "mtime": "2024-05-01T12:30:45.123456789Z",
		 "ctime": "2024-05-01T12:30:45.123456789Z", "gen": 0, "target": "/x/y", "hash": ""}`},
	{"Listing", &Listing{Path: "/d", Entries: []DirEntry{{Name: "f", Attr: attr}}},
		`{"path": "/d", "entries": [{"name": "f", ` + attrGolden + `}]}`},
	{"empty Listing", &Listing{Path: "/", Entries: []DirEntry{}}, `{"path": "/", "entries": []}`},
	{"Health", &Health{Ready: false, Checks: []HealthCheck{{Name: "router", Ready: false, Why: "no group can take writes"}}},
		`{"ready": false, "checks": [{"name": "router", "ready": false, "why": "no group can take writes"}]}`},
	{"ChunkList", &ChunkList{Path: "/d/f", Chunks: []ChunkInfo{
		{Hash: "9c57", Size: 16, Group: "g1", Key: "0000002a"}, {Hash: "4cf0", Size: 8, Group: "g2"}}},
		`{"path": "/d/f", "inline": false, "chunks": [
		  {"hash": "9c57", "size": 16, "group": "g1", "key": "0000002a"},
		  {"hash": "4cf0", "size": 8, "group": "g2"}]}`},
	{"inline ChunkList", &ChunkList{Path: "/s", Inline: true, Chunks: []ChunkInfo{}},
		`{"path": "/s", "inline": true, "chunks": []}`},
	{"Lease", &Lease{Path: "/jobs/n.lock", Ino: 12, Token: 7, Key: "9f0c", Mode: LockExclusive, TTLSeconds: 30, ExpiresInSeconds: 29.5, WaitedSeconds: 1.25},
		`{"path": "/jobs/n.lock", "ino": 12, "token": 7, "key": "9f0c", "mode": "exclusive", "ttl_seconds": 30,
		  "expires_in_seconds": 29.5, "waited_seconds": 1.25}`},
	{"LockInfo", &LockInfo{Path: "/f", Ino: 12, Holders: []LockHolder{
		{Token: 7, Mode: LockExclusive, Owner: "alice@a:12", Uid: 1000, TTLSeconds: 30, ExpiresInSeconds: 20, HeldSeconds: 10},
		{Token: 9, Mode: LockShared, Uid: 0, TTLSeconds: 30, ExpiresInSeconds: 25, HeldSeconds: 5, Start: 10, End: ptr(uint64(20)), Pid: 4242, Mine: true}},
		Waiting: 3, Queue: []LockWaiter{{Mode: LockShared, Owner: "bob", Uid: 1001}}},
		`{"path": "/f", "ino": 12, "holders": [
		  {"token": 7, "mode": "exclusive", "owner": "alice@a:12", "uid": 1000, "ttl_seconds": 30, "expires_in_seconds": 20, "held_seconds": 10, "start": 0},
		  {"token": 9, "mode": "shared", "uid": 0, "ttl_seconds": 30, "expires_in_seconds": 25, "held_seconds": 5, "start": 10, "end": 20, "pid": 4242, "mine": true}],
		  "waiting": 3, "queue": [{"mode": "shared", "owner": "bob", "uid": 1001}]}`},
	{"LockedBody", &LockedBody{ErrorBody: ErrorBody{Code: CodeLocked, Message: "lock /f: lock is held"}, Lock: LockInfo{Path: "/f", Ino: 12, Holders: []LockHolder{}}},
		`{"error": "locked", "message": "lock /f: lock is held", "lock": {"path": "/f", "ino": 12, "holders": [], "waiting": 0}}`},
	{"LockSessionBody", &LockSessionBody{Inos: []uint64{12, 13}}, `{"inos": [12, 13]}`},
	{"MatchRequest", &MatchRequest{Size: 10, ChunkSize: 4, First: 1, Sums: []string{"9c57", "4cf0"}},
		`{"size": 10, "chunk_size": 4, "first": 1, "sums": ["9c57", "4cf0"]}`},
	{"MatchResult", &MatchResult{Path: "/d/f", Size: 10, Hash: "chunks:77", Same: []bool{true, false}},
		`{"path": "/d/f", "size": 10, "hash": "chunks:77", "same": [true, false]}`},
	{"Statfs", &Statfs{Capacity: -1, Used: 1000, Free: -1, Groups: 3, ChunkSize: 4 << 20, InlineMax: 16 << 10, MaxWrite: 64 << 20, ChunkUploads: true, MaxRanges: 256, MaxFileSize: 1 << 40},
		`{"capacity": -1, "used": 1000, "free": -1, "groups": 3, "chunk_size": 4194304, "inline_max": 16384, "max_write": 67108864, "chunk_uploads": true, "max_ranges": 256, "max_file_size": 1099511627776}`},
	{"Cluster", &Cluster{
		Nodes: []Node{
			{ID: "3", Name: "n3", Role: "primary", Group: "g1", Term: 4, Status: "alive", Addr: "10.0.0.3:7000",
				InSync: true, Used: 1 << 20, Cap: 10 << 30},
			{ID: "18446744073709551615", Name: "r1", Role: "router", Status: "suspect", Addr: "10.0.0.9:8080"},
		},
		Groups: []Group{
			{Name: "g1", Meta: true, Primary: "n3", Term: 4, Members: []string{"n2", "n3"}, Used: 1 << 20, Free: &free,
				Commit: 9, Chunks: 12, UnderReplicated: 1, Repair: RepairProgress{Copied: 5, CopiedBytes: 5120, Collected: 3, LastRound: t0},
				MemberDetails: []GroupMember{{ID: "3", Name: "n3", Addr: "10.0.0.3:7000", Voter: true, Live: true, Synced: true,
					Match: 9, Chunks: 12, Used: 1 << 20},
					{ID: "2", Name: "n2", Addr: "10.0.0.2:7000", Voter: true, Live: true, Match: 7, Chunks: 12, Used: 1 << 20,
						DiskError: "disk refused a write: read-only file system"}}},
			{Name: "g2", Term: 2, Members: []string{}, MemberDetails: []GroupMember{},
				Error: `no primary for group "g2": an election may be in progress`},
		},
		Standbys: []string{"n5"},
		Departed: []Departed{{Name: "n4", Group: "g1", Since: t0, Why: "n4 is declared failed"}, {Name: "n6", Group: "g2", Why: "failed"}},
	}, `{
	  "nodes": [
	    {"id": 3, "name": "n3", "role": "primary", "group": "g1", "term": 4, "status": "alive",
	     "addr": "10.0.0.3:7000", "in_sync": true, "used": 1048576, "cap": 10737418240},
	    {"id": 18446744073709551615, "name": "r1", "role": "router", "group": "", "term": 0, "status": "suspect",
	     "addr": "10.0.0.9:8080", "in_sync": false, "used": 0, "cap": 0}],
	  "groups": [
	    {"name": "g1", "meta": true, "primary": "n3", "term": 4, "members": ["n2", "n3"], "used": 1048576,
	     "free": 10736369664, "commit": 9, "chunks": 12, "under_replicated": 1,
	     "repair": {"copied": 5, "copied_bytes": 5120, "collected": 3, "last_round": "2024-05-01T12:30:45.123456789Z"},
	     "member_details": [{"id": 3, "name": "n3", "addr": "10.0.0.3:7000", "voter": true, "live": true,
	                         "synced": true, "match": 9, "chunks": 12, "used": 1048576},
	                        {"id": 2, "name": "n2", "addr": "10.0.0.2:7000", "voter": true, "live": true,
	                         "synced": false, "match": 7, "chunks": 12, "used": 1048576,
	                         "disk_error": "disk refused a write: read-only file system"}]},
	    {"name": "g2", "meta": false, "primary": "", "term": 2, "members": [], "used": 0, "free": null,
	     "commit": 0, "chunks": 0, "under_replicated": 0, "repair": {"copied": 0, "copied_bytes": 0, "collected": 0},
	     "member_details": [], "error": "no primary for group \"g2\": an election may be in progress"}],
	  "standbys": ["n5"],
	  "departed": [{"name": "n4", "group": "g1", "since": "2024-05-01T12:30:45.123456789Z", "why": "n4 is declared failed"},
	               {"name": "n6", "group": "g2", "why": "failed"}]
	}`},
	{"Events", &Events{Events: []Event{{Seq: 7, Time: t0, Kind: EventPrimary, Node: "n3", Group: "g1", Term: 4,
		Message: "n3 took over group g1 from n2 at term 4 (n2 is failed)"}, {Seq: 8, Time: t0, Kind: EventJoined, Node: "r1", Message: "r1 joined"}}, Last: 8},
		`{"events": [{"seq": 7, "time": "2024-05-01T12:30:45.123456789Z", "kind": "primary", "node": "n3", "group": "g1", "term": 4,
		  "message": "n3 took over group g1 from n2 at term 4 (n2 is failed)"},
		  {"seq": 8, "time": "2024-05-01T12:30:45.123456789Z", "kind": "joined", "node": "r1", "message": "r1 joined"}], "last": 8}`},
	{"User", &User{Name: "alice", Uid: 1000, Gid: 1000, Groups: []uint32{5, 6}, Admin: true, Mount: true, Created: t0,
		Home: "/home/alice", Token: "tok"},
		`{"name": "alice", "uid": 1000, "gid": 1000, "groups": [5, 6], "admin": true, "mount": true,
		  "created": "2024-05-01T12:30:45.123456789Z", "home": "/home/alice", "token": "tok"}`},
	{"insecure root", &User{Name: "root (--insecure)", Admin: true},
		`{"name": "root (--insecure)", "uid": 0, "gid": 0, "admin": true, "mount": false}`},
	{"UserList", &UserList{Users: []User{{Name: "bob", Uid: 1001, Gid: 100, Created: time.Unix(0, 0).UTC(), Home: "/home/bob"}}},
		`{"users": [{"name": "bob", "uid": 1001, "gid": 100, "admin": false, "mount": false,
		  "created": "1970-01-01T00:00:00Z", "home": "/home/bob"}]}`},
	{"OwnedPage", &OwnedPage{User: "alice", Files: []OwnedFile{{Path: "/home/alice/f", Attr: attr}, {Attr: symlink}}, Next: 8},
		`{"user": "alice", "files": [{"path": "/home/alice/f", ` + attrGolden + `},
		  {"path": "", "ino": 7, "type": "symlink", "size": 4, "mode": 511, "mode_octal": "0777", "nlink": 1, "uid": 0, "gid": 0,
		   "atime": "2024-05-01T12:30:45.123456789Z", "mtime": "2024-05-01T12:30:45.123456789Z",
		   "ctime": "2024-05-01T12:30:45.123456789Z", "gen": 0, "target": "/x/y"}], "next": 8}`},
	{"last OwnedPage", &OwnedPage{User: "bob", Files: []OwnedFile{}}, `{"user": "bob", "files": []}`},
	{"KeyringResult", &KeyringResult{Nodes: 3, Responses: 2, Errors: 1, Keys: map[string]int{"a2V5": 2},
		Primary: map[string]int{"a2V5": 2}, Messages: map[string]string{"n3": "timeout"}},
		`{"nodes": 3, "responses": 2, "errors": 1, "keys": {"a2V5": 2}, "primary": {"a2V5": 2}, "messages": {"n3": "timeout"}}`},
	{"KeyringResult without messages", &KeyringResult{Nodes: 1, Responses: 1, Keys: map[string]int{}, Primary: map[string]int{}},
		`{"nodes": 1, "responses": 1, "errors": 0, "keys": {}, "primary": {}}`},
	{"ErrorBody", &ErrorBody{Code: CodeNotFound, Message: "/a: no such file or directory"},
		`{"error": "not_found", "message": "/a: no such file or directory"}`},
}

// TestGolden encodes each value and compares it with its golden JSON, then
// decodes the golden JSON and compares it with the value.
func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.Compact(&want, []byte(g.golden)); err != nil {
				t.Fatalf("golden JSON: %v", err)
			}
			got, err := json.Marshal(g.value)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("encoded\n%s\nwant\n%s", got, want.Bytes())
			}
			back := reflect.New(reflect.TypeOf(g.value).Elem())
			if err := json.Unmarshal(want.Bytes(), back.Interface()); err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			if !reflect.DeepEqual(back.Interface(), g.value) {
				t.Errorf("golden decoded as\n%+v\nwant\n%+v", back.Elem(), reflect.ValueOf(g.value).Elem())
			}
		})
	}
}

// TestCodes pins the error codes: clients match on these strings.
func TestCodes(t *testing.T) {
	// A map literal: two constants with one value would not compile.
	want := map[Code]string{
		CodeInvalidPath: "invalid_path", CodeInvalidOp: "invalid_op", CodeTimeout: "timeout",
		CodeNotFound: "not_found", CodeExists: "exists", CodeNotEmpty: "not_empty", CodeNotDir: "not_dir",
		CodeIsDir: "is_dir", CodeConflict: "conflict", CodeNotPermitted: "not_permitted",
		CodePermissionDenied: "permission_denied", CodeUnauthorized: "unauthorized",
		CodeTooManyRequests: "too_many_requests", CodeTooLarge: "too_large", CodeBadRange: "bad_range",
		CodeMethodNotAllowed: "method_not_allowed", CodeNoSpace: "no_space", CodeUnavailable: "unavailable",
		CodeSealed: "sealed", CodeInternal: "internal",
	}
	for c, s := range want {
		if string(c) != s {
			t.Errorf("code %q, want %q", c, s)
		}
	}
}

func TestNodeID(t *testing.T) {
	for _, c := range []struct {
		id   NodeID
		json string
	}{
		{"0", `0`},
		{"18446744073709551615", `18446744073709551615`},
		{"18446744073709551616", `"18446744073709551616"`}, // past 64 bits: not a number a router sends
		{"007", `"007"`}, // not a JSON number
		{"-1", `"-1"`},
		{"n3", `"n3"`},
		{"", `""`},
	} {
		got, err := json.Marshal(c.id)
		if err != nil || string(got) != c.json {
			t.Errorf("Marshal(%q) = %s, %v; want %s", c.id, got, err, c.json)
		}
		var back NodeID
		if err := json.Unmarshal(got, &back); err != nil || back != c.id {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q", got, back, err, c.id)
		}
	}
	for in, want := range map[string]NodeID{`3`: "3", `"3"`: "3", ` 12 `: "12", `null`: ""} {
		var id NodeID
		if err := json.Unmarshal([]byte(in), &id); err != nil || id != want {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q", in, id, err, want)
		}
	}
	var id NodeID
	if err := json.Unmarshal([]byte(`true`), &id); err == nil {
		t.Errorf("Unmarshal(true) = %q, want an error", id)
	}
}

func ptr[T any](v T) *T { return &v }
