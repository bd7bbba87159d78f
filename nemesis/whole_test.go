package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/harness"
	"shoal/meta"
	"shoal/store"
)

// The campaign over the whole cluster: a meta group and two data groups
// of three, a standby and a router, each in a network namespace of its
// own, while clients write files large enough to be cut into chunks that
// the router spreads over the groups. Faults hit any node, whole groups,
// the meta group's majority, links across groups, primaries and the
// router; members stay down long enough to be replaced by the standby,
// and come back to be released to the standby pool. The checks are the
// one-group campaign's: the whole history with the final reads is
// linearizable (so nothing acknowledged was lost and every chunk of every
// file read back whole), and every group's voters converge (the same
// namespace; the same chunks).
//
// SHOAL_NEMESIS=1 runs a fixed pair of seeds; SHOAL_NEMESIS_LONG=N adds N
// random ones, as for the one-group campaign; SHOAL_NEMESIS_SECONDS sets
// how long each schedule's faults last (60 s).
func TestWholeCampaign(t *testing.T) {
	needCampaign(t)
	seeds := []uint64{11, 12}
	if n, err := strconv.Atoi(os.Getenv("SHOAL_NEMESIS_LONG")); err == nil && n > 0 {
		base := uint64(time.Now().UnixNano())
		for i := range n {
			seeds = append(seeds, base+uint64(i))
		}
	}
	// A minute of faults deals the whole deck (every kind) in a schedule.
	secs := 60
	if s, err := strconv.Atoi(os.Getenv("SHOAL_NEMESIS_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	var total campaignStats
	for i, seed := range seeds {
		ok := t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			st := runWholeSchedule(t, 20+i%60, seed, time.Duration(secs)*time.Second)
			total.add(st)
		})
		if !ok {
			break
		}
	}
	t.Logf("whole-cluster campaign: %d schedules, %s", total.schedules, total.wholeString())
}

// The groups of the whole-cluster campaign; g1 is the meta group.
var wholeGroups = []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 3}, {Name: "g3", Size: 3}}

// chunked writes a value as a file of wholeSize bytes, the value repeated:
// with 4 KiB chunks and nothing inline, every file is three chunks that
// the router places over the groups. A read that does not decode to a
// whole repetition (a chunk lost, swapped or cut short) is reported as a
// value no write made, which the checker flags.
var chunked = codec{
	encode: func(v string) []byte {
		return bytes.Repeat([]byte(v+"|"), wholeSize/(len(v)+1)+1)[:wholeSize]
	},
	decode: func(b []byte) string {
		i := bytes.IndexByte(b, '|')
		if i <= 0 || len(b) != wholeSize {
			return fmt.Sprintf("corrupt(%d bytes)", len(b))
		}
		v := string(b[:i])
		if want := bytes.Repeat([]byte(v+"|"), wholeSize/(len(v)+1)+1)[:wholeSize]; !bytes.Equal(b, want) {
			return "corrupt(" + v + ")"
		}
		return v
	},
}

const wholeSize = 12<<10 + 5

// WholeKind is a fault of the whole-cluster campaign.
type WholeKind int

const (
	WholeKillNode         WholeKind = iota // kill -9 any storage node, standby included
	WholeKillPrimary                       // kill -9 a random group's primary
	WholeKillDataGroup                     // kill -9 every member of a data group
	WholeKillMetaMajority                  // kill -9 two of the meta group
	WholePausePrimary                      // SIGSTOP a random group's primary
	WholePauseRouter                       // SIGSTOP the router
	WholeKillRouter                        // kill -9 the router
	WholeCutGroups                         // a data group | the meta group, both ways
	WholeIsolateNode                       // one storage node | everyone
	WholeCorruptChunk                      // flip a byte of a chunk file on a node's disk
	WholeFillDisk                          // fill a node's file system (a loop-mounted ext4)
	WholeReadOnlyDisk                      // a node's file system turns read-only, as ext4 does on a disk error
	WholeClockSkew                         // a node or the router restarts with its clock an hour ahead or behind
	WholeScaleOut                          // one member of every group fills its disk: standbys form a new group
	numWholeKinds
)

var wholeKindNames = [...]string{"kill-node", "kill-primary", "kill-data-group", "kill-meta-majority",
	"pause-primary", "pause-router", "kill-router", "cut-data|meta", "isolate-node", "corrupt-chunk", "fill-disk",
	"read-only-disk", "clock-skew", "scale-out"}

func (k WholeKind) String() string {
	if k >= 0 && int(k) < len(wholeKindNames) {
		return wholeKindNames[k]
	}
	return fmt.Sprintf("whole-kind(%d)", int(k))
}

// groupProcs lists the processes the router shows as members of group
// now (after replacements they are not the ones started in it).
func (c *Cluster) groupProcs(ctx context.Context, group string) []*harness.Proc {
	view, err := c.View(ctx)
	if err != nil {
		return nil
	}
	for _, g := range view.Groups {
		if g.Name != group {
			continue
		}
		var out []*harness.Proc
		for _, name := range g.Members {
			if p := c.Node(name); p != nil {
				out = append(out, p)
			}
		}
		return out
	}
	return nil
}

// groupNames lists the groups the router shows now, the meta group
// first: the campaign's own and those scale-out formed since.
func (c *Cluster) groupNames(ctx context.Context) []string {
	names := []string{wholeGroups[0].Name}
	if view, err := c.View(ctx); err == nil {
		for _, g := range view.Groups {
			if g.Name != names[0] {
				names = append(names, g.Name)
			}
		}
	}
	if len(names) == 1 {
		for _, g := range wholeGroups[1:] {
			names = append(names, g.Name)
		}
	}
	return names
}

// InjectWhole applies a fault of kind k and returns how to undo it.
func (c *Cluster) InjectWhole(ctx context.Context, k WholeKind, r *rand.Rand) (undo func() error, desc string, err error) {
	groups := c.groupNames(ctx)
	g := groups[r.IntN(len(groups))]
	data := groups[1+r.IntN(len(groups)-1)]
	primary, _ := c.Cluster.Primary(ctx, g)
	if primary == nil {
		primary = c.Nodes[r.IntN(len(c.Nodes))]
	}
	killAll := func(ps []*harness.Proc) func() error {
		for _, p := range ps {
			p.Kill()
		}
		return func() error {
			for _, p := range ps {
				if err := p.Start(); err != nil {
					return err
				}
			}
			return nil
		}
	}
	hosts := func(ps []*harness.Proc) []*Host {
		var hs []*Host
		for _, p := range ps {
			hs = append(hs, c.Host(p))
		}
		return hs
	}
	switch k {
	case WholeKillNode:
		p := c.Nodes[r.IntN(len(c.Nodes))]
		return killAll([]*harness.Proc{p}), "kill -9 " + p.Name, nil
	case WholeKillPrimary:
		return killAll([]*harness.Proc{primary}), "kill -9 primary " + primary.Name + " of " + g, nil
	case WholeKillDataGroup:
		ps := c.groupProcs(ctx, data)
		return killAll(ps), fmt.Sprintf("kill -9 all %d members of %s", len(ps), data), nil
	case WholeKillMetaMajority:
		ps := c.groupProcs(ctx, "g1")
		r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		ps = ps[:min(2, len(ps))]
		return killAll(ps), fmt.Sprintf("kill -9 %d of the meta group", len(ps)), nil
	case WholePausePrimary:
		if err := primary.Pause(); err != nil {
			return nil, "", err
		}
		return primary.Resume, "pause primary " + primary.Name + " of " + g, nil
	case WholePauseRouter:
		if err := c.Router.Pause(); err != nil {
			return nil, "", err
		}
		return c.Router.Resume, "pause the router", nil
	case WholeKillRouter:
		return killAll([]*harness.Proc{c.Router}), "kill -9 the router", nil
	case WholeCutGroups:
		err := c.Net.Partition(hosts(c.groupProcs(ctx, data)), hosts(c.groupProcs(ctx, "g1")))
		return c.Net.Heal, "cut " + data + " | g1", err
	case WholeIsolateNode:
		p := c.Nodes[r.IntN(len(c.Nodes))]
		err := c.Net.Isolate(c.Host(p))
		return c.Net.Heal, "isolate " + p.Name, err
	case WholeCorruptChunk:
		p := c.Nodes[r.IntN(len(c.Nodes))]
		desc, err := corruptChunk(c.DataDir(p), r)
		return func() error { return nil }, desc + " on " + p.Name, err
	case WholeFillDisk:
		p := c.Nodes[r.IntN(len(c.Nodes))]
		undo, err := fillDisk(c.DataDir(p))
		return undo, "fill the disk of " + p.Name, err
	case WholeReadOnlyDisk:
		p := c.Nodes[r.IntN(len(c.Nodes))]
		undo, err := readOnlyDisk(p, c.DataDir(p))
		return undo, "turn the disk of " + p.Name + " read-only", err
	case WholeClockSkew:
		p := c.Router
		if i := r.IntN(len(c.Nodes) + 1); i < len(c.Nodes) {
			p = c.Nodes[i]
		}
		off, way := time.Hour, "ahead"
		if r.IntN(2) == 0 {
			off, way = -off, "behind"
		}
		undo, err := skewClock(p, off)
		return undo, fmt.Sprintf("restart %s with its clock an hour %s", p.Name, way), err
	case WholeScaleOut:
		return c.scaleOut(ctx, groups)
	}
	return nil, "", fmt.Errorf("nemesis: unknown fault %d", k)
}

// scaleOut fills the disk of one member of every group, so that every
// group counts as full and the meta group's primary forms a new one from
// standbys, and waits up to scaleOutWait for the router to show it. It
// does not fail when none forms (too few standbys left, say): the fault
// is then only full disks.
func (c *Cluster) scaleOut(ctx context.Context, groups []string) (func() error, string, error) {
	var undos []func() error
	undo := func() error {
		var errs []error
		for _, u := range undos {
			errs = append(errs, u())
		}
		return errors.Join(errs...)
	}
	for _, g := range groups {
		ps := c.groupProcs(ctx, g)
		if len(ps) == 0 {
			continue
		}
		u, err := fillDisk(c.DataDir(ps[0]))
		if err != nil {
			undo()
			return nil, "", err
		}
		undos = append(undos, u)
	}
	wctx, cancel := context.WithTimeout(ctx, scaleOutWait)
	defer cancel()
	formed := ""
	harness.WaitFor(wctx, "a new group", func() (bool, error) {
		for _, g := range c.groupNames(wctx) {
			if !slices.Contains(groups, g) {
				formed = g
				return true, nil
			}
		}
		return false, nil
	})
	if formed == "" {
		return undo, fmt.Sprintf("fill a disk in each of %d groups; no new group within %v", len(groups), scaleOutWait), nil
	}
	return undo, fmt.Sprintf("fill a disk in each of %d groups; standbys formed %s", len(groups), formed), nil
}

// scaleOutWait bounds how long the scale-out fault waits for a new group:
// usage is gossiped every second and the meta group's primary checks every
// second.
const scaleOutWait = 15 * time.Second

// skewClock restarts p with its wall clock shifted by off, and returns how
// to restart it with the machine's clock again.
func skewClock(p *harness.Proc, off time.Duration) (func() error, error) {
	env := p.Env
	p.Kill()
	p.Env = append(slices.Clip(env), "SHOAL_CLOCK_OFFSET="+off.String())
	if err := p.Start(); err != nil {
		return nil, err
	}
	return func() error {
		p.Kill()
		p.Env = env
		return p.Start()
	}, nil
}

// readOnlyDisk makes the file system dir is on (when it is one of the
// campaign's loop-mounted disks) report an error, which turns it
// read-only as ext4 does when a disk fails (errors=remount-ro): reads go
// on, every write fails. The undo is what an operator does: stop the
// node, unmount, check the file system, mount it again and start the
// node.
func readOnlyDisk(p *harness.Proc, dir string) (func() error, error) {
	if !isMountPoint(dir) {
		return func() error { return nil }, nil // not on a disk of its own: the fault does nothing
	}
	out, err := exec.Command("findmnt", "-no", "SOURCE", dir).Output()
	if err != nil {
		return nil, fmt.Errorf("findmnt %s: %w", dir, err)
	}
	dev := filepath.Base(strings.TrimSpace(string(out)))
	if err := os.WriteFile("/sys/fs/ext4/"+dev+"/trigger_fs_error", []byte("read-only-disk fault"), 0); err != nil {
		return nil, fmt.Errorf("turn %s read-only: %w", dir, err)
	}
	return func() error {
		p.Kill()
		for _, cmd := range [][]string{{"umount", dir}, {"e2fsck", "-fy", dir + ".img"}, {"mount", "-o", "loop,errors=remount-ro", dir + ".img", dir}} {
			out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
			var ee *exec.ExitError
			if cmd[0] == "e2fsck" && errors.As(err, &ee) && ee.ExitCode() <= 2 {
				err = nil // errors found and fixed
			}
			if err != nil {
				return fmt.Errorf("%s: %v: %s", strings.Join(cmd, " "), err, out)
			}
		}
		return p.Start()
	}, nil
}

func (s *campaignStats) wholeString() string {
	var fs []string
	for k := WholeKind(0); k < numWholeKinds; k++ {
		fs = append(fs, fmt.Sprintf("%s %d", k, s.faults[Kind(k)]))
	}
	return fmt.Sprintf("%d operations (%d acknowledged mutations, %d unknown), %d linearizability violations, faults: %v",
		s.ops, s.acked, s.unknown, s.violations, fs)
}

func runWholeSchedule(t *testing.T, k int, seed uint64, faultTime time.Duration) campaignStats {
	t.Logf("seed %d (replay: SHOAL_NEMESIS=1 go test ./nemesis -run 'TestWholeCampaign/seed-%d$')", seed, seed)
	bin := needCampaign(t)
	n := wholeStandbys
	for _, g := range wholeGroups {
		n += g.Size
	}
	nt, err := NewNet(fmt.Sprintf("wn%d", k), k, n+1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nt.Close() })
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	dir := t.TempDir()
	var names []string
	for _, g := range wholeGroups {
		for j := range g.Size {
			names = append(names, fmt.Sprintf("%s-n%d", g.Name, j))
		}
	}
	for i := range wholeStandbys {
		names = append(names, fmt.Sprintf("standby%d", i))
	}
	loopDisks(t, dir, names, "256M")
	c, err := StartGroups(sctx, nt, bin, dir, wholeGroups, wholeStandbys,
		[]string{"--replace-after", "4s", "--rpc-timeout", "1s"},
		[]string{"--request-timeout", "3s", "--chunk-size", "4096", "--inline-max", "0"})
	if err != nil {
		t.Fatal(err)
	}
	c.StopAtEnd(t)
	if err := c.WaitHealthy(sctx); err != nil {
		t.Fatal(err)
	}
	// Faults are dealt from a shuffled deck of every kind, so that a
	// schedule of numWholeKinds faults or more makes each at least once.
	var deck []int
	st := schedule{
		seed: seed, stream: 0x3a11, cd: chunked, faultTime: faultTime,
		// Holds up to 6 s: past --replace-after, so a dead member may be
		// replaced by the standby and come back to be released.
		gap: 700 * time.Millisecond, hold: 5500 * time.Millisecond,
		inject: func(ctx context.Context, r *rand.Rand) (Kind, func() error, string, error) {
			if len(deck) == 0 {
				deck = r.Perm(int(numWholeKinds))
			}
			kind := WholeKind(deck[0])
			deck = deck[1:]
			undo, desc, err := c.InjectWhole(ctx, kind, r)
			if err != nil {
				err = fmt.Errorf("%s: %w", kind, err)
			}
			return Kind(kind), undo, desc, err
		},
		healthy: c.waitAllGroups, recovery: 90 * time.Second, checkTime: 5 * time.Minute,
	}.run(t, c)
	checkGroupsConverge(t, c)
	return st
}

// wholeStandbys is how many standbys the campaign starts: one to replace
// a dead member, and a group's worth for scale-out.
const wholeStandbys = 4

// waitAllGroups waits until every group the router shows, those formed by
// scale-out included, has a primary and all its members in sync.
func (c *Cluster) waitAllGroups(ctx context.Context) error {
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	for _, g := range c.groupNames(ctx) {
		if slices.ContainsFunc(wholeGroups, func(w harness.Group) bool { return w.Name == g }) {
			continue
		}
		if _, err := c.WaitGroup(ctx, g, wholeGroups[0].Size, ""); err != nil {
			return err
		}
	}
	return nil
}

// checkGroupsConverge waits until, in every group, the members the router
// shows hold the same namespace and the same chunks, then stops the
// cluster and compares their stores on disk.
func checkGroupsConverge(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.waitAllGroups(ctx); err != nil {
		t.Fatal(err)
	}
	groups := c.groupNames(ctx)
	size := wholeGroups[0].Size
	members := map[string][]*harness.Proc{}
	err := harness.WaitFor(ctx, "every group to list all its members", func() (bool, error) {
		for _, g := range groups {
			ps := c.groupProcs(ctx, g)
			if len(ps) != size {
				view, err := c.View(ctx)
				return false, fmt.Errorf("group %s lists %d members: %+v (%v)", g, len(ps), view, err)
			}
			members[g] = ps
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		sleep(time.Second) // heartbeats carry the commit index; repair runs every second
		c.Stop(0)
		var diffs []string
		for _, g := range groups {
			var ref string
			for _, p := range members[g] {
				db, err := store.Open(c.DataDir(p))
				if err != nil {
					t.Fatalf("open %s's store: %v", p.Name, err)
				}
				d, derr := store.Digest(db)
				hs := db.Chunks.ListAll()
				db.Close()
				if derr != nil {
					t.Fatalf("%s: digest %v", p.Name, derr)
				}
				slices.SortFunc(hs, func(a, b meta.Hash) int { return bytes.Compare(a[:], b[:]) })
				sum := fmt.Sprintf("%s/%d chunks/%x", d, len(hs), hashOfHashes(hs))
				if ref == "" {
					ref = sum
				} else if sum != ref {
					diffs = append(diffs, fmt.Sprintf("%s: %s has %s, another member %s", g, p.Name, sum, ref))
				}
			}
		}
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("groups did not converge: %v", diffs)
		}
		if err := c.Restore(); err != nil {
			t.Fatal(err)
		}
		hctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := c.waitAllGroups(hctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func hashOfHashes(hs []meta.Hash) []byte {
	var b bytes.Buffer
	for _, h := range hs {
		b.Write(h[:])
	}
	sum := meta.HashOf(b.Bytes())
	return sum[:8]
}

// corruptChunk flips one byte in the middle of a random chunk file under
// dir, as bit rot would: reads and the scrubber must notice (the file no
// longer matches the checksum and hash in its name) and repair it from
// another member.
func corruptChunk(dir string, r *rand.Rand) (string, error) {
	var files []string
	filepath.WalkDir(filepath.Join(dir, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		return "no chunk to corrupt", nil
	}
	p := files[r.IntN(len(files))]
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return "an empty chunk left alone", err
	}
	b := make([]byte, 1)
	off := st.Size() / 2
	if _, err := f.ReadAt(b, off); err != nil {
		return "", err
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		return "", err
	}
	return "flip a byte of chunk " + filepath.Base(p)[:12], nil
}

// fillDisk takes every free block of the file system dir is on (when it is
// one of the campaign's own loop-mounted disks) with a filler file, and
// returns how to remove it.
func fillDisk(dir string) (func() error, error) {
	if !isMountPoint(dir) {
		return func() error { return nil }, nil // not on a disk of its own: the fault does nothing
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil, err
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	free := int64(st.Bavail) * st.Bsize
	// Fill in steps: the node keeps writing meanwhile, and a step that no
	// longer fits is simply smaller.
	for step := free; step >= 64<<10; step /= 2 {
		st, _ := f.Stat()
		for syscall.Fallocate(int(f.Fd()), 0, st.Size(), step) == nil {
			st, _ = f.Stat()
		}
	}
	return func() error { return os.Remove(filler) }, nil
}

func isMountPoint(dir string) bool {
	return exec.Command("mountpoint", "-q", dir).Run() == nil
}

// loopDisks gives each named process a file system of its own, an ext4
// image of size on a loop device mounted at dir/name, unmounted when the
// test ends (after the cluster stops). Where that cannot be done it says
// so and returns false: the campaign runs without disks to fill.
func loopDisks(t *testing.T, dir string, names []string, size string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("SKIPPED the fill-disk and read-only-disk faults: loop mounts need root")
		return false
	}
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "mount", "umount", "mountpoint", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("SKIPPED the fill-disk and read-only-disk faults: no %s", tool)
			return false
		}
	}
	// dir becomes a shared mount, so that the nodes' mount namespaces
	// (each process runs in one of its own, as a slave of this one) see a
	// disk unmounted and mounted again under it: otherwise they keep the
	// old mount and with it the loop device.
	for _, cmd := range [][]string{{"mount", "--bind", dir, dir}, {"mount", "--make-shared", dir}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Logf("SKIPPED the fill-disk and read-only-disk faults: %s: %v: %s", strings.Join(cmd, " "), err, out)
			return false
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	for _, name := range names {
		d := filepath.Join(dir, name)
		img := d + ".img"
		for _, cmd := range [][]string{{"truncate", "-s", size, img}, {"mkfs.ext4", "-q", "-F", "-m", "0", img}, {"mkdir", "-p", d}, {"mount", "-o", "loop,errors=remount-ro", img, d}} {
			if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
				t.Logf("SKIPPED the fill-disk and read-only-disk faults: %s: %v: %s", strings.Join(cmd, " "), err, out)
				return false
			}
		}
		t.Cleanup(func() {
			if out, err := exec.Command("umount", d).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", d, err, out)
			}
		})
	}
	return true
}
