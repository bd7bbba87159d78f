package e2e

// TestPermissionMatrix compares the router's permission checks with the
// Linux kernel's: each case builds the same small tree, with the same
// owners and modes, in the cluster and in a local directory, performs
// one operation as the same user in both (through the API with that
// user's token, and locally in a child process running as that uid, gid
// and groups), and compares the outcomes and the state left behind.
//
// An outcome is an errno class: success, EACCES (403 permission_denied),
// EPERM (403 not_permitted), ENOENT (404), EEXIST, ENOTDIR, EISDIR and
// ENOTEMPTY (409 exists, not_dir, is_dir, not_empty). The state is the
// existence, type, mode, owner and content of the names a case touches.
// Each API operation is the one that checks what the system call checks:
// a PUT over an existing file for open(O_WRONLY|O_TRUNC) and write,
// op=create&excl=1 for open(O_CREAT|O_EXCL), DELETE with only=file or
// only=dir for unlink and rmdir, op=rename, op=setattr with mode, uid or
// gid for chmod and lchown, op=stat for lstat, and a GET of a directory
// for readdir (whose entries are compared by name only: the API's also
// carry attributes).
//
// The local operation runs in a copy of this test binary, started with
// the user's credentials and permMatrixOpEnv naming the operation: the
// init function below performs it, prints the errno and exits before
// any test runs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// permMatrixOpEnv names the operation a child process performs.
const permMatrixOpEnv = "SHOAL_PERM_MATRIX_OP"

func init() {
	if op := os.Getenv(permMatrixOpEnv); op != "" {
		os.Exit(permMatrixChild(op, os.Args[1:]))
	}
}

// permMatrixChild performs one file system operation on local paths as
// the process's credentials allow, and prints the errno (0 for success)
// on the first line of stdout, followed by what was read, if anything.
func permMatrixChild(op string, args []string) int {
	syscall.Umask(0)
	var out []byte
	var err error
	arg := func(i int) string {
		if i >= len(args) {
			fmt.Fprintf(os.Stderr, "%s: missing argument %d\n", op, i)
			os.Exit(2)
		}
		return args[i]
	}
	num := func(i int) int {
		n, perr := strconv.ParseInt(arg(i), 0, 64)
		if perr != nil {
			fmt.Fprintf(os.Stderr, "%s: argument %d: %v\n", op, i, perr)
			os.Exit(2)
		}
		return int(n)
	}
	switch op {
	case "read":
		out, err = os.ReadFile(arg(0))
	case "write":
		// No O_CREAT: an existing file is opened for writing as the
		// kernel checks it, without fs.protected_regular's rules.
		var f *os.File
		if f, err = os.OpenFile(arg(0), os.O_WRONLY|os.O_TRUNC, 0); err == nil {
			_, err = f.Write([]byte(arg(1)))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	case "create":
		var f *os.File
		if f, err = os.OpenFile(arg(0), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
			err = f.Close()
		}
	case "unlink":
		err = syscall.Unlink(arg(0))
	case "rmdir":
		err = syscall.Rmdir(arg(0))
	case "rename":
		err = syscall.Rename(arg(0), arg(1))
	case "chmod":
		err = syscall.Chmod(arg(0), uint32(num(1)))
	case "chown":
		err = syscall.Lchown(arg(0), num(1), num(2))
	case "list":
		var es []os.DirEntry
		es, err = os.ReadDir(arg(0))
		for _, e := range es {
			out = append(out, e.Name()+"\n"...)
		}
	case "stat":
		var st syscall.Stat_t
		err = syscall.Lstat(arg(0), &st)
	default:
		fmt.Fprintf(os.Stderr, "unknown operation %q\n", op)
		return 2
	}
	errno := syscall.Errno(0)
	if err != nil && !errors.As(err, &errno) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", op, err)
		return 2
	}
	fmt.Printf("%d\n", int(errno))
	os.Stdout.Write(out)
	return 0
}

// The users of the matrix. The owner owns the trees; the member is in
// the owner's group; the other is in neither. The owner has a second
// group, so it may give a file to a group other than its own.
const (
	pmOwnerUid, pmOwnerGid, pmOwnerExtra = 2001, 3001, 3010
	pmMemberUid, pmMemberGid             = 2002, 3002
	pmOtherUid, pmOtherGid               = 2003, 3003
)

type pmSubject struct {
	name     string
	uid, gid uint32
	groups   []uint32
	token    string
}

// pmNode is a directory or file of a case's tree, made as root.
type pmNode struct {
	rel      string
	dir      bool
	mode     uint32
	uid, gid uint32
}

func (n pmNode) String() string {
	kind := "file"
	if n.dir {
		kind = "dir"
	}
	return fmt.Sprintf("%s %s %04o %d:%d", kind, n.rel, n.mode, n.uid, n.gid)
}

// pmCase is one operation by one subject on a fresh tree.
type pmCase struct {
	subject string
	nodes   []pmNode
	op      string   // as permMatrixChild names them
	args    []string // names as its nodes give them
	mode    uint32   // chmod
	uid     int64    // chown; -1 leaves it
	gid     int64    // chown; -1 leaves it
	// watch are the names whose state is compared after the operation.
	watch []string
}

func (c pmCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", c.subject, c.op, strings.Join(c.args, " "))
	switch c.op {
	case "chmod":
		fmt.Fprintf(&b, " %04o", c.mode)
	case "chown":
		fmt.Fprintf(&b, " %d:%d", c.uid, c.gid)
	}
	b.WriteString(" in [")
	for i, n := range c.nodes {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(n.String())
	}
	b.WriteString("]")
	return b.String()
}

func pmDir(rel string, mode, uid, gid uint32) pmNode {
	return pmNode{rel: rel, dir: true, mode: mode, uid: uid, gid: gid}
}

func pmFile(rel string, mode, uid, gid uint32) pmNode {
	return pmNode{rel: rel, mode: mode, uid: uid, gid: gid}
}

func pmContent(rel string) string { return "content of " + rel + "\n" }

// permMatrixCases lists the cases: every operation by the owner, a
// member of the owner's group, another user and root.
func permMatrixCases() []pmCase {
	subjects := []string{"owner", "member", "other", "root"}
	var cs []pmCase
	// each adds c once for every subject.
	each := func(c pmCase) {
		for _, s := range subjects {
			c.subject = s
			cs = append(cs, c)
		}
	}
	o, og := uint32(pmOwnerUid), uint32(pmOwnerGid)
	owners := map[string][2]uint32{
		"owner": {pmOwnerUid, pmOwnerGid}, "member": {pmMemberUid, pmMemberGid},
		"other": {pmOtherUid, pmOtherGid}, "root": {0, 0},
	}
	fileModes := []uint32{0o000, 0o400, 0o600, 0o640, 0o644, 0o660, 0o666, 0o604, 0o060}
	dirModes := []uint32{0o700, 0o711, 0o750, 0o755, 0o770, 0o777, 0o730, 0o300, 0o1777, 0o1770}

	// Reading and overwriting a file: its mode decides, in a directory
	// everyone may search.
	for _, m := range fileModes {
		for _, op := range []string{"read", "write"} {
			each(pmCase{nodes: []pmNode{pmDir("d", 0o755, o, og), pmFile("d/f", m, o, og)},
				op: op, args: []string{"d/f"}, watch: []string{"d/f"}})
		}
	}
	// Overwriting a setuid or setgid file drops those bits as the kernel
	// drops them (file_remove_privs): setgid without group execute only
	// for a writer outside the file's group, as since Linux 6.2
	// (setattr_should_drop_sgid; older kernels keep it).
	for _, m := range []uint32{0o4666, 0o2666, 0o2676, 0o6766} {
		each(pmCase{nodes: []pmNode{pmDir("d", 0o755, o, og), pmFile("d/f", m, o, og)},
			op: "write", args: []string{"d/f"}, watch: []string{"d/f"}})
	}
	// Reading a readable file: the search permission of its directory
	// decides.
	for _, m := range []uint32{0o700, 0o711, 0o750, 0o300, 0o730, 0o1770} {
		each(pmCase{nodes: []pmNode{pmDir("d", m, o, og), pmFile("d/f", 0o644, o, og)},
			op: "read", args: []string{"d/f"}})
	}
	// Creating and deleting in a directory of each mode.
	for _, m := range append(slices.Clone(dirModes), 0o555) {
		each(pmCase{nodes: []pmNode{pmDir("d", m, o, og)},
			op: "create", args: []string{"d/n"}, watch: []string{"d", "d/n"}})
		if m != 0o555 {
			each(pmCase{nodes: []pmNode{pmDir("d", m, o, og), pmFile("d/f", 0o644, o, og)},
				op: "unlink", args: []string{"d/f"}, watch: []string{"d/f"}})
		}
	}
	// Listing: read permission on the directory, search not needed.
	for _, m := range []uint32{0o700, 0o750, 0o755, 0o300, 0o744, 0o1770} {
		each(pmCase{nodes: []pmNode{pmDir("d", m, o, og), pmFile("d/f", 0o644, o, og)},
			op: "list", args: []string{"d"}})
	}
	// Creating over an existing name: EEXIST, even where the caller may
	// not write.
	each(pmCase{nodes: []pmNode{pmDir("d", 0o555, o, og), pmFile("d/f", 0o600, o, og)},
		op: "create", args: []string{"d/f"}, watch: []string{"d/f"}})
	// A new file in a setgid directory takes its group.
	for _, g := range []uint32{og, pmOtherGid} {
		each(pmCase{nodes: []pmNode{pmDir("d", 0o2777, o, g)},
			op: "create", args: []string{"d/n"}, watch: []string{"d/n"}})
	}
	// The sticky bit: in a sticky directory only the file's owner, the
	// directory's owner or root may delete a name or rename it away.
	for _, d := range []struct {
		owner string
		mode  uint32
	}{{"owner", 0o1777}, {"owner", 0o1770}, {"root", 0o1777}} {
		du := owners[d.owner]
		for _, fileOwner := range []string{"owner", "member", "other"} {
			fu := owners[fileOwner]
			if fileOwner != d.owner { // the directory owner's own file: above
				each(pmCase{nodes: []pmNode{pmDir("d", d.mode, du[0], og), pmFile("d/f", 0o644, fu[0], fu[1])},
					op: "unlink", args: []string{"d/f"}, watch: []string{"d/f"}})
			}
			if d.mode == 0o1777 {
				each(pmCase{nodes: []pmNode{pmDir("d", d.mode, du[0], og), pmFile("d/f", 0o644, fu[0], fu[1]), pmDir("e", 0o777, o, og)},
					op: "rename", args: []string{"d/f", "e/f"}, watch: []string{"d/f", "e/f"}})
			}
		}
	}
	// Renaming the member's file from one directory to another: both
	// directories' modes decide.
	for _, m := range [][2]uint32{{0o777, 0o777}, {0o755, 0o777}, {0o777, 0o755}, {0o730, 0o770},
		{0o1777, 0o777}, {0o777, 0o1777}, {0o300, 0o300}, {0o1770, 0o1770}} {
		each(pmCase{nodes: []pmNode{pmDir("a", m[0], o, og), pmFile("a/f", 0o644, pmMemberUid, pmMemberGid), pmDir("b", m[1], o, og)},
			op: "rename", args: []string{"a/f", "b/g"}, watch: []string{"a/f", "b/g"}})
	}
	// Renaming over another's file in a sticky directory.
	for _, victim := range []string{"owner", "member", "other"} {
		vu := owners[victim]
		each(pmCase{nodes: []pmNode{pmDir("a", 0o777, o, og), pmFile("a/f", 0o666, o, og),
			pmDir("b", 0o1777, pmOtherUid, pmOtherGid), pmFile("b/g", 0o644, vu[0], vu[1])},
			op: "rename", args: []string{"a/f", "b/g"}, watch: []string{"a/f", "b/g"}})
	}
	// Moving a directory to another parent needs write permission on it
	// (its ".." changes).
	for _, m := range []uint32{0o755, 0o775, 0o777} {
		each(pmCase{nodes: []pmNode{pmDir("a", 0o777, o, og), pmDir("a/s", m, o, og), pmDir("b", 0o777, o, og)},
			op: "rename", args: []string{"a/s", "b/s"}, watch: []string{"a/s", "b/s"}})
	}
	// unlink of a directory, rmdir of a file and of a non-empty
	// directory: permission is checked before the type.
	for _, m := range []uint32{0o755, 0o1777} {
		each(pmCase{nodes: []pmNode{pmDir("d", m, o, og), pmDir("d/s", 0o777, pmOtherUid, pmOtherGid)},
			op: "unlink", args: []string{"d/s"}, watch: []string{"d/s"}})
		each(pmCase{nodes: []pmNode{pmDir("d", m, o, og), pmFile("d/f", 0o666, pmOtherUid, pmOtherGid)},
			op: "rmdir", args: []string{"d/f"}, watch: []string{"d/f"}})
		each(pmCase{nodes: []pmNode{pmDir("d", m, o, og), pmDir("d/s", 0o777, pmOtherUid, pmOtherGid), pmFile("d/s/x", 0o666, pmOtherUid, pmOtherGid)},
			op: "rmdir", args: []string{"d/s"}, watch: []string{"d/s", "d/s/x"}})
	}
	// chmod: the owner or root only; setgid is dropped silently for an
	// owner outside the file's group.
	for _, g := range []uint32{og, pmOwnerExtra, pmOtherGid} {
		for _, m := range []uint32{0o640, 0o2755} {
			each(pmCase{nodes: []pmNode{pmDir("d", 0o755, o, og), pmFile("d/f", 0o644, o, g)},
				op: "chmod", args: []string{"d/f"}, mode: m, watch: []string{"d/f"}})
		}
		each(pmCase{nodes: []pmNode{pmDir("d", 0o755, o, og), pmDir("d/s", 0o755, o, g)},
			op: "chmod", args: []string{"d/s"}, mode: 0o2775, watch: []string{"d/s"}})
	}
	// chown of the uid: only root, but an owner may "change" it to its
	// own. Either drops setuid, and setgid as a write does (the same
	// Linux 6.2 rule for setgid without group execute).
	for _, f := range []struct{ mode, gid uint32 }{{0o6755, og}, {0o2745, og}, {0o2745, pmOtherGid}} {
		for _, u := range []int64{pmOwnerUid, pmMemberUid} {
			each(pmCase{nodes: []pmNode{pmDir("d", 0o755, o, og), pmFile("d/f", f.mode, o, f.gid)},
				op: "chown", args: []string{"d/f"}, uid: u, gid: -1, watch: []string{"d/f"}})
		}
	}
	// chown of the gid: the owner to a group it is in, root to any.
	for _, m := range []uint32{0o2755, 0o2745} {
		for _, g := range []int64{pmOwnerGid, pmOwnerExtra, pmMemberGid, pmOtherGid} {
			each(pmCase{nodes: []pmNode{pmDir("d", 0o755, o, og), pmFile("d/f", m, o, og)},
				op: "chown", args: []string{"d/f"}, uid: -1, gid: g, watch: []string{"d/f"}})
		}
	}
	// A directory without search permission hides what it holds, from
	// its owner too: EACCES, never ENOENT.
	for _, m := range []uint32{0o600, 0o666} {
		nodes := []pmNode{pmDir("d", m, o, og), pmFile("d/f", 0o666, o, og)}
		each(pmCase{nodes: nodes, op: "read", args: []string{"d/f"}})
		each(pmCase{nodes: nodes, op: "stat", args: []string{"d/missing"}})
		if m == 0o600 {
			each(pmCase{nodes: nodes, op: "stat", args: []string{"d/f"}})
			each(pmCase{nodes: nodes, op: "write", args: []string{"d/f"}, watch: []string{"d/f"}})
			each(pmCase{nodes: nodes, op: "chmod", args: []string{"d/f"}, mode: 0o600, watch: []string{"d/f"}})
			each(pmCase{nodes: nodes, op: "list", args: []string{"d"}})
		}
	}
	for i := range cs {
		if cs[i].op != "chown" {
			cs[i].uid, cs[i].gid = -1, -1
		}
	}
	return cs
}

// pmEnv is what the cases run against.
type pmEnv struct {
	c        *cluster
	http     *http.Client
	admin    string // the admin's token: root
	subjects map[string]pmSubject
	local    string // the local root of the trees
	exe      string // a copy of this test binary every user may run
}

// TestPermissionMatrix: see the top of this file.
func TestPermissionMatrix(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: TestPermissionMatrix compares the API with the kernel's own checks " +
			"by running each operation locally as another uid, which needs root (setuid); run it as root")
	}
	start := time.Now()
	c := newCluster(t, 3)
	e := &pmEnv{c: c, http: c.httpClient(), admin: c.Creds.Token, subjects: map[string]pmSubject{}}
	e.http.Transport.(*http.Transport).MaxIdleConnsPerHost = 16
	e.http.Timeout = 30 * time.Second
	t.Cleanup(e.http.CloseIdleConnections)
	e.makeLocalRoot(t)

	// The users, through the CLI as an admin would add them.
	for _, s := range []pmSubject{
		{name: "owner", uid: pmOwnerUid, gid: pmOwnerGid, groups: []uint32{pmOwnerExtra}},
		{name: "member", uid: pmMemberUid, gid: pmMemberGid, groups: []uint32{pmOwnerGid}},
		{name: "other", uid: pmOtherUid, gid: pmOtherGid},
	} {
		flags := []string{"--uid", itoa(int(s.uid)), "--gid", itoa(int(s.gid))}
		if len(s.groups) > 0 {
			var gs []string
			for _, g := range s.groups {
				gs = append(gs, itoa(int(g)))
			}
			flags = append(flags, "--groups", strings.Join(gs, ","))
		}
		s.token = c.addUser("pm-"+s.name, flags...)
		e.subjects[s.name] = s
	}
	e.subjects["root"] = pmSubject{name: "root", token: e.admin}
	var me struct{ Uid, Gid uint32 }
	st, _, b, err := e.api(e.admin, "GET", "/v1/whoami", nil)
	if err != nil || st != 200 || json.Unmarshal(b, &me) != nil || me.Uid != 0 || me.Gid != 0 {
		t.Fatalf("the admin is not root (uid 0, gid 0), so it cannot stand for root here: %d %s %v", st, b, err)
	}
	if st, _, b, err := e.api(e.admin, "POST", "/v1/fs/m?op=mkdir&mode=755&uid=0&gid=0", nil); err != nil || st != 201 {
		t.Fatalf("mkdir /m: %d %s %v", st, b, err)
	}

	// Every user must reach the local root, or every case would differ.
	for _, s := range e.subjects {
		if class, _, err := e.localOp(s, "list", e.local); err != nil || class != "ok" {
			t.Fatalf("%s (uid %d) cannot list the local root %s: %s %v; is a directory above it closed to others ($TMPDIR)?",
				s.name, s.uid, e.local, class, err)
		}
	}

	cases := permMatrixCases()
	results := make([][]string, len(cases))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range work {
				results[i] = e.run(i, cases[i])
			}
		})
	}
	for i := range cases {
		work <- i
	}
	close(work)
	wg.Wait()
	failed := 0
	for i, r := range results {
		for _, msg := range r {
			failed++
			t.Errorf("case %d: %s: %s", i, cases[i], msg)
		}
	}
	t.Logf("%d cases, %d mismatches, in %v", len(cases), failed, time.Since(start).Round(time.Millisecond))
}

// makeLocalRoot makes the local directory the trees are built in, and
// the copy of the test binary the users run: both where every user may
// reach them.
func (e *pmEnv) makeLocalRoot(t *testing.T) {
	dir, err := os.MkdirTemp("", "shoal-perm-matrix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{dir, filepath.Join(dir, "bin"), filepath.Join(dir, "t")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	e.exe = filepath.Join(dir, "bin", "e2e.test")
	if err := os.WriteFile(e.exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	e.local = filepath.Join(dir, "t")
}

// api sends one request with token tok and returns the status, the
// error code of an error answer, and the body.
func (e *pmEnv) api(tok, method, p string, body []byte) (int, string, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.c.API+p, rd)
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, "", nil, fmt.Errorf("%s %s: %w", method, p, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, fmt.Errorf("%s %s: reading the answer: %w", method, p, err)
	}
	code := ""
	if resp.StatusCode >= 400 {
		var ae struct{ Error string }
		json.Unmarshal(b, &ae)
		code = ae.Error
	}
	return resp.StatusCode, code, b, nil
}

// apiClass is the errno an API answer stands for.
func apiClass(status int, code string) string {
	switch {
	case status >= 200 && status < 300:
		return "ok"
	case status == 403 && code == "permission_denied":
		return "EACCES"
	case status == 403 && code == "not_permitted":
		return "EPERM"
	case status == 404 && code == "not_found":
		return "ENOENT"
	case status == 409:
		switch code {
		case "exists":
			return "EEXIST"
		case "not_dir":
			return "ENOTDIR"
		case "is_dir":
			return "EISDIR"
		case "not_empty":
			return "ENOTEMPTY"
		}
	}
	return fmt.Sprintf("HTTP %d %s", status, code)
}

// errnoClass names an errno as apiClass does.
func errnoClass(e syscall.Errno) string {
	switch e {
	case 0:
		return "ok"
	case syscall.EACCES:
		return "EACCES"
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EEXIST:
		return "EEXIST"
	case syscall.ENOTDIR:
		return "ENOTDIR"
	case syscall.EISDIR:
		return "EISDIR"
	case syscall.ENOTEMPTY:
		return "ENOTEMPTY"
	}
	return fmt.Sprintf("errno %d (%v)", int(e), e)
}

// run builds case i's tree in both worlds, performs its operation in
// both, and returns what differs. The case's names are its number and
// the name its nodes give, "c012.d/f" for d/f, so each case has trees
// of its own in one directory both worlds share: /m in the cluster, the
// local root here.
func (e *pmEnv) run(i int, tc pmCase) []string {
	prefix := fmt.Sprintf("c%03d.", i)
	remote := func(rel string) string { return "/m/" + prefix + rel }
	local := func(rel string) string { return filepath.Join(e.local, prefix+rel) }
	if err := e.setup(remote, local, tc.nodes, tc.op == "read"); err != nil {
		return []string{"setup: " + err.Error()}
	}
	subj := e.subjects[tc.subject]
	newData := "new content by " + tc.subject + "\n"

	// Locally, as the subject, while the API does the same.
	type localResult struct {
		class, data string
		err         error
	}
	done := make(chan localResult, 1)
	go func() {
		var args []string
		for _, a := range tc.args {
			args = append(args, local(a))
		}
		switch tc.op {
		case "write":
			args = append(args, newData)
		case "chmod":
			args = append(args, fmt.Sprintf("0%o", tc.mode))
		case "chown":
			args = append(args, strconv.FormatInt(tc.uid, 10), strconv.FormatInt(tc.gid, 10))
		}
		class, data, err := e.localOp(subj, tc.op, args...)
		done <- localResult{class, data, err}
	}()

	// Through the API, with the subject's token.
	p := "/v1/fs" + remote(tc.args[0])
	var method string
	var body []byte
	switch tc.op {
	case "read", "list":
		method = "GET"
	case "stat":
		method, p = "GET", p+"?op=stat"
	case "write":
		method, body = "PUT", []byte(newData)
	case "create":
		method, p = "POST", p+"?op=create&excl=1"
	case "unlink":
		method, p = "DELETE", p+"?only=file"
	case "rmdir":
		method, p = "DELETE", p+"?only=dir"
	case "rename":
		method, p = "POST", p+"?op=rename&to="+remote(tc.args[1])
	case "chmod":
		method, p = "POST", p+fmt.Sprintf("?op=setattr&mode=%o", tc.mode)
	case "chown":
		method, p = "POST", p+"?op=setattr"
		if tc.uid >= 0 {
			p += "&uid=" + strconv.FormatInt(tc.uid, 10)
		}
		if tc.gid >= 0 {
			p += "&gid=" + strconv.FormatInt(tc.gid, 10)
		}
	}
	status, code, apiData, apiErr := e.api(subj.token, method, p, body)
	lr := <-done
	switch {
	case apiErr != nil:
		return []string{apiErr.Error()}
	case lr.err != nil:
		return []string{lr.err.Error()}
	}
	apiCl := apiClass(status, code)

	var diffs []string
	if apiCl != lr.class {
		diffs = append(diffs, fmt.Sprintf("local %s, API %s (%d %s: %s)", lr.class, apiCl, status, code, strings.TrimSpace(string(apiData))))
	} else if lr.class == "ok" {
		switch tc.op {
		case "read":
			if string(apiData) != lr.data {
				diffs = append(diffs, fmt.Sprintf("read %q locally, %q through the API", lr.data, apiData))
			}
		case "list":
			// The names only: the API's entries also carry attributes.
			var l struct{ Entries []struct{ Name string } }
			json.Unmarshal(apiData, &l)
			var names []string
			for _, en := range l.Entries {
				names = append(names, en.Name+"\n")
			}
			if got := strings.Join(names, ""); got != lr.data {
				diffs = append(diffs, fmt.Sprintf("listed %q locally, %q through the API", lr.data, got))
			}
		}
	}
	for _, w := range tc.watch {
		ls, err := localState(local(w))
		if err != nil {
			diffs = append(diffs, err.Error())
			continue
		}
		rs, err := e.remoteState(remote(w))
		if err != nil {
			diffs = append(diffs, err.Error())
			continue
		}
		if ls != rs {
			diffs = append(diffs, fmt.Sprintf("after the op (local %s, API %s), %s is %s locally but %s in the cluster", lr.class, apiCl, w, ls, rs))
		}
	}
	return diffs
}

// localOp performs op on local paths as subj, in a child process, and
// returns the errno's class and what the op read.
func (e *pmEnv) localOp(subj pmSubject, op string, args ...string) (string, string, error) {
	cmd := exec.Command(e.exe, args...)
	cmd.Dir = "/"
	cmd.Env = []string{permMatrixOpEnv + "=" + op}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: subj.uid, Gid: subj.gid, Groups: subj.groups}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("local %s as %s: %v: %s", op, subj.name, err, stderr.Bytes())
	}
	first, data, _ := strings.Cut(string(out), "\n")
	n, err := strconv.Atoi(first)
	if err != nil {
		return "", "", fmt.Errorf("local %s as %s printed %q", op, subj.name, out)
	}
	return errnoClass(syscall.Errno(n)), data, nil
}

// setup makes nodes in both worlds, as root, with the names remote and
// local give them. Files are empty unless content is set: then each
// holds a line naming it.
func (e *pmEnv) setup(remote, local func(string) string, nodes []pmNode, content bool) error {
	for _, n := range nodes {
		lp, rp := local(n.rel), "/v1/fs"+remote(n.rel)
		var data []byte
		if content && !n.dir {
			data = []byte(pmContent(n.rel))
		}
		var err error
		if n.dir {
			err = os.Mkdir(lp, 0o700)
		} else {
			err = os.WriteFile(lp, data, 0o600)
		}
		if err == nil {
			err = os.Chown(lp, int(n.uid), int(n.gid))
		}
		if err == nil {
			// After the chown, which drops setuid and setgid.
			err = syscall.Chmod(lp, n.mode)
		}
		if err != nil {
			return err
		}
		attrs := fmt.Sprintf("mode=%o&uid=%d&gid=%d", n.mode, n.uid, n.gid)
		switch {
		case n.dir:
			if st, _, b, err := e.api(e.admin, "POST", rp+"?op=mkdir&"+attrs, nil); err != nil || st != 201 {
				return fmt.Errorf("mkdir %s: %d %s %v", rp, st, b, err)
			}
		case data == nil:
			if st, _, b, err := e.api(e.admin, "POST", rp+"?op=create&excl=1&"+attrs, nil); err != nil || st != 201 {
				return fmt.Errorf("create %s: %d %s %v", rp, st, b, err)
			}
		default:
			if st, _, b, err := e.api(e.admin, "PUT", rp, data); err != nil || st != 201 {
				return fmt.Errorf("put %s: %d %s %v", rp, st, b, err)
			}
			if st, _, b, err := e.api(e.admin, "POST", rp+"?op=setattr&"+attrs, nil); err != nil || st != 200 {
				return fmt.Errorf("setattr %s: %d %s %v", rp, st, b, err)
			}
		}
	}
	return nil
}

// localState describes a local name: absent, or its type, mode, owner
// and, for a file, content.
func localState(p string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		if err == syscall.ENOENT {
			return "absent", nil
		}
		return "", fmt.Errorf("lstat %s: %w", p, err)
	}
	s := fmt.Sprintf("%04o %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return "dir " + s, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("file %s %q", s, b), nil
}

// remoteState is localState for a path in the cluster, read as root.
func (e *pmEnv) remoteState(p string) (string, error) {
	status, _, b, err := e.api(e.admin, "GET", "/v1/fs"+p+"?op=stat", nil)
	switch {
	case err != nil:
		return "", err
	case status == 404:
		return "absent", nil
	case status != 200:
		return "", fmt.Errorf("stat %s as root: %d %s", p, status, b)
	}
	var st struct {
		Type     string
		Mode     uint32
		Uid, Gid uint32
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", err
	}
	s := fmt.Sprintf("%04o %d:%d", st.Mode, st.Uid, st.Gid)
	if st.Type == "dir" {
		return "dir " + s, nil
	}
	status, _, b, err = e.api(e.admin, "GET", "/v1/fs"+p, nil)
	if err != nil || status != 200 {
		return "", fmt.Errorf("read %s as root: %d %s %v", p, status, b, err)
	}
	return fmt.Sprintf("%s %s %q", st.Type, s, b), nil
}
