package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/harness"
	"shoal/mount"
)

// TestBenchLocal builds the shoal binary and runs every workload, small,
// on a local cluster of separate processes, as a user would.
func TestBenchLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes; skipped with -short")
	}
	dir := t.TempDir()
	r := runBench(t, 2*time.Minute, "--local", "--reps", "1", "--small-files", "300", "--small-clients", "4",
		"--meta-files", "200", "--large-sizes", "3MB", "--failover-runs", "1", "--failover-load", "3", "--json", "--data", dir)
	positive := func(what string, f Figure) {
		t.Helper()
		if !(f.Median > 0 && f.Min > 0 && f.Max >= f.Median && len(f.Reps) == 1) {
			t.Errorf("%s = %+v, want a positive figure of one rep", what, f)
		}
	}
	if r.Reps != 1 || r.Machine.Cores < 1 || r.Cluster != "local: 3 storage processes + router" {
		t.Errorf("header: reps %d, cores %d, cluster %q", r.Reps, r.Machine.Cores, r.Cluster)
	}
	if r.Ops == nil || len(r.Ops.Rows) != len(opNames)*len(opsClientCounts) {
		t.Fatalf("ops: %+v, want a row per operation and client count", r.Ops)
	}
	for _, row := range r.Ops.Rows {
		positive(row.Op+" mean", row.MeanMS)
		positive(row.Op+" p50", row.P50MS)
		positive(row.Op+" p99", row.P99MS)
		// Latencies of a local cluster are well under a few seconds.
		if row.P99MS.Max > 5000 {
			t.Errorf("%s with %d clients: p99 %v ms", row.Op, row.Clients, row.P99MS.Max)
		}
	}
	if s := r.Small; s == nil || s.Files != 300 || s.Clients != 4 {
		t.Fatalf("small: %+v", r.Small)
	}
	positive("small writes/s", r.Small.WritesPerSec)
	positive("small reads/s", r.Small.ReadsPerSec)
	positive("small write p99", r.Small.WriteP99MS)
	positive("small read p50", r.Small.ReadP50MS)
	if m := r.Meta; m == nil || m.Files != 200 || m.Clients != 4 || len(m.Rows) != len(metaOps) {
		t.Fatalf("meta: %+v, want a row per operation on 200 files", r.Meta)
	}
	for _, row := range r.Meta.Rows {
		positive("meta "+row.Op+" per second", row.PerSec)
		positive("meta "+row.Op+" p50", row.P50MS)
	}
	for _, row := range r.Meta.Rows {
		// No operation costs the cluster a second of CPU per file, and
		// 200 creates, each a commit on three members, take more than
		// the hundredth of a second the kernel counts in.
		if c := row.CPUMS; c == nil || c.Median < 0 || c.Median > 1000 || row.Op == "create" && c.Median == 0 {
			t.Errorf("meta %s: CPU per file %+v, want a figure under a second (above 0 for create), for a local cluster", row.Op, c)
		}
	}
	if counted, why := diskCounted(dir); !counted {
		t.Logf("SKIPPED the checks of the disk writes per file: %s", why)
	} else {
		for _, row := range r.Meta.Rows {
			if row.DiskKB == nil {
				t.Errorf("meta %s: no disk writes per file, for a local cluster", row.Op)
			}
		}
		// A create is a log entry and a commit on each of three members:
		// it writes something, and far less than a MiB.
		if d := r.Meta.Rows[0].DiskKB; d != nil && !(r.Meta.Rows[0].Op == "create" && d.Median > 0.1 && d.Median < 1024) {
			t.Errorf("meta %s: %+v KiB written per file, want some and under a MiB", r.Meta.Rows[0].Op, *d)
		}
	}
	if len(r.Large) != 1 || r.Large[0].Size != 3e6 {
		t.Fatalf("large: %+v, want one row of 3 MB", r.Large)
	}
	positive("large up", r.Large[0].UpMBps)
	positive("large down", r.Large[0].DownMBps)
	if l := r.Large[0]; l.DiskMBps == nil || l.UpOfCeiling == nil {
		t.Fatalf("large: %+v, want the disk's rate and the upload's share of its ceiling (a local cluster)", l)
	}
	positive("large disk", *r.Large[0].DiskMBps)
	positive("large upload of the disk's ceiling", *r.Large[0].UpOfCeiling)
	f := r.Failover
	if f == nil || f.Runs != 1 || f.Load != 3 {
		t.Fatalf("failover: %+v", f)
	}
	positive("failover time", f.UnavailableMS)
	if f.AckedWrites < 10 || f.LostWrites != 0 {
		t.Errorf("failover: %d acknowledged writes, %d lost; want some and none lost", f.AckedWrites, f.LostWrites)
	}
	if f.UnavailableMS.Max > 30000 {
		t.Errorf("failover took %v ms", f.UnavailableMS.Max)
	}
	// The peak memory of every process during every workload, and
	// nothing that is not a process of the cluster.
	var workloads []string
	for _, row := range r.Memory {
		workloads = append(workloads, row.Workload)
		if len(row.Peaks) != 4 {
			t.Errorf("peak memory during %s: %+v, want the router and three storage nodes", row.Workload, row.Peaks)
		}
		for _, p := range row.Peaks {
			if !(p.PeakMiB > 1 && p.PeakMiB < 4096) {
				t.Errorf("peak memory of %s during %s: %v MiB", p.Process, row.Workload, p.PeakMiB)
			}
		}
	}
	if got, want := strings.Join(workloads, ","), "ops,small,meta,large,failover"; got != want {
		t.Errorf("peak memory reported for %s, want %s", got, want)
	}

	// Every process is gone and the cluster's directory removed.
	left, _ := filepath.Glob(filepath.Join(dir, "shoal-bench-*"))
	if len(left) != 0 {
		t.Errorf("left behind %v; want the local cluster's directory removed", left)
	}
}

// TestBenchLocks runs the locks workload, small: lock round trips beside
// writes, and both caches beside the same reads without them.
func TestBenchLocks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes; skipped with -short")
	}
	r := runBench(t, 2*time.Minute, "--local", "--workloads", "locks", "--reps", "1", "--cache-file-size", "2MB", "--cache-reads", "2",
		"--json", "--data", t.TempDir())
	l := r.Locks
	if l == nil || len(l.Levels) != 2 || l.Levels[0].Clients != 1 || l.Levels[1].Clients != 16 {
		t.Fatalf("locks: %+v, want rows for 1 and 16 clients", l)
	}
	for _, f := range []Figure{l.Levels[0].LocksPerSec, l.Levels[1].LocksPerSec, l.Levels[0].WritesPerSec, l.Levels[1].LockMS,
		l.CachedMBps, l.UncachedMBps, l.RouterCacheGet, l.CachedOpens, l.UncachedOpens, l.LibraryCacheGain} {
		if !(f.Median > 0 && len(f.Reps) == 1) {
			t.Errorf("locks: a figure %+v, want a positive figure of one rep (all: %+v)", f, l)
		}
	}
}

// TestBenchMemory runs the memory workload, small: concurrent uploads and
// downloads through the router of a local cluster, with the router's peak
// memory in each.
func TestBenchMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes; skipped with -short")
	}
	dir := t.TempDir()
	r := runBench(t, 2*time.Minute, "--local", "--insecure", "--workloads", "memory", "--reps", "1",
		"--memory-streams", "3", "--memory-size", "20MiB", "--json", "--data", dir)
	m := r.Streams
	if m == nil || m.Streams != 3 || m.Size != 20<<20 {
		t.Fatalf("memory: %+v, want 3 streams of 20 MiB", m)
	}
	for what, f := range map[string]Figure{"upload MB/s": m.UpMBps, "download MB/s": m.DownMBps,
		"router peak during uploads": m.RouterUpMiB, "router peak during downloads": m.RouterDownMiB} {
		if !(f.Median > 0 && len(f.Reps) == 1) {
			t.Errorf("memory %s = %+v, want a positive figure of one rep", what, f)
		}
	}
	if m.RouterUpMiB.Max > RouterMemoryLimitMiB || m.RouterDownMiB.Max > RouterMemoryLimitMiB {
		t.Errorf("router peak memory %v MiB uploading, %v MiB downloading; want under %d MiB",
			m.RouterUpMiB.Max, m.RouterDownMiB.Max, RouterMemoryLimitMiB)
	}
	if len(r.Memory) != 1 || r.Memory[0].Workload != "memory" {
		t.Errorf("peak memory rows %+v, want one for the memory workload", r.Memory)
	}
}

// runBench runs the shoal binary's bench command with args, which must
// ask for JSON, within limit, and returns the report it wrote.
func runBench(t *testing.T, limit time.Duration, args ...string) Report {
	t.Helper()
	bin := buildShoal(t)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"bench"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("shoal bench: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	t.Logf("shoal bench took %v", time.Since(start).Round(time.Millisecond))
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	return r
}

// build builds the binary under test once for the package's tests.
var build harness.Build

func buildShoal(t *testing.T) string {
	t.Helper()
	return build.For(t)
}

// TestBenchMount runs the mount workload, small, on a local cluster it
// mounts itself; it needs FUSE (as the e2e mount tests do, it fails
// rather than skips without it when SHOAL_REQUIRE_FUSE is set).
func TestBenchMount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes; skipped with -short")
	}
	_, errDev := os.Stat("/dev/fuse")
	_, errFM := exec.LookPath("fusermount3")
	if os.Geteuid() != 0 || errDev != nil || errFM != nil {
		if os.Getenv("SHOAL_REQUIRE_FUSE") != "" {
			t.Fatal("the mount workload needs root, /dev/fuse and fusermount3")
		}
		t.Skip("the mount workload needs root, /dev/fuse and fusermount3")
	}
	dir := t.TempDir()
	r := runBench(t, 3*time.Minute, "--local", "--workloads", "mount", "--reps", "2",
		"--mount-size", "3MiB", "--mount-files", "40", "--tree-files", "30", "--json", "--data", dir)
	if r.Mount == nil || len(r.Mount.Rows) != 4 || r.Ops != nil || r.Large != nil {
		t.Fatalf("report: %+v, want the four mount rows only", r)
	}
	for _, row := range r.Mount.Rows {
		wantTwoPositive(t, row.Op, map[string]Figure{"mount": row.Mount, "api": row.API, "ratio": row.Ratio})
		if want := row.Mount.Reps[0] / row.API.Reps[0]; row.Ratio.Reps[0] != want {
			t.Errorf("%s: ratio %v, want mount/api %v", row.Op, row.Ratio.Reps[0], want)
		}
	}
	tools := []string{"tar", "git", "rsync", "rm"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			tools = nil
			t.Logf("SKIPPED checking the tools' rows: %s is not installed (.ci/run installs it)", tool)
		}
	}
	if tools != nil && (len(r.Mount.Tools) != len(tools) || len(r.Mount.Skipped) != 0 || r.Mount.TreeFiles != 30) {
		t.Fatalf("tools: %+v, skipped %q, tree of %d files: want a row for each of %q on 30 files", r.Mount.Tools, r.Mount.Skipped, r.Mount.TreeFiles, tools)
	}
	for _, row := range r.Mount.Tools {
		wantTwoPositive(t, row.Op, map[string]Figure{"mount": row.Mount, "local": row.Local, "slowdown": row.Slowdown})
		if want := row.Mount.Reps[1] / row.Local.Reps[1]; row.Slowdown.Reps[1] != want {
			t.Errorf("%s: slowdown %v, want mount/local %v", row.Op, row.Slowdown.Reps[1], want)
		}
	}
	if mount.IsMounted(r.Mount.Dir) {
		t.Errorf("%s is still mounted after the run", r.Mount.Dir)
	}
}

// TestBenchSecurity runs the security workload, small: two local
// clusters, one secure and one insecure, measured rep by rep.
func TestBenchSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two clusters of processes; skipped with -short")
	}
	dir := t.TempDir()
	r := runBench(t, 3*time.Minute, "--local", "--workloads", "security", "--reps", "2",
		"--small-files", "200", "--small-clients", "4", "--large-sizes", "3MB", "--json", "--data", dir)
	if r.Security == nil || len(r.Security.Rows) != 4 || r.Small != nil || r.Large != nil {
		t.Fatalf("report: %+v, want the four security rows only", r)
	}
	for _, row := range r.Security.Rows {
		wantTwoPositive(t, row.Measure, map[string]Figure{"secure": row.Secure, "insecure": row.Insecure, "ratio": row.Ratio})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "shoal-bench-*")); len(left) != 0 {
		t.Errorf("left behind %v", left)
	}
}

// TestBenchMetrics runs the metrics workload, small: two local clusters,
// one collecting metrics and one not, measured rep by rep.
func TestBenchMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two clusters of processes; skipped with -short")
	}
	r := runBench(t, 3*time.Minute, "--local", "--insecure", "--workloads", "metrics", "--reps", "2",
		"--small-files", "200", "--small-clients", "4", "--large-sizes", "3MB", "--json", "--data", t.TempDir())
	if r.Metrics == nil || len(r.Metrics.Rows) != 4 || r.Small != nil || r.Security != nil {
		t.Fatalf("report: %+v, want the four metrics rows only", r)
	}
	for _, row := range r.Metrics.Rows {
		wantTwoPositive(t, row.Measure, map[string]Figure{"on": row.On, "off": row.Off, "ratio": row.Ratio})
	}
}

// TestBenchS3 runs the s3 workload, small, on a secure local cluster: the
// small files and a large one through the file API and through S3
// (signed with an access key the workload makes and removes), every
// byte checked, both sides and their ratio positive in each rep.
func TestBenchS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes; skipped with -short")
	}
	r := runBench(t, 3*time.Minute, "--local", "--workloads", "s3", "--reps", "2",
		"--small-files", "200", "--small-clients", "4", "--s3-size", "9MiB", "--json", "--data", t.TempDir())
	c := r.S3
	if c == nil || c.Files != 200 || c.Clients != 4 || c.Large != 9<<20 || r.Small != nil {
		t.Fatalf("report: %+v, want the s3 rows only", r)
	}
	for _, row := range []struct {
		what        string
		a, s, ratio Figure
	}{
		{"writes", c.APIWritesPerSec, c.S3WritesPerSec, c.WriteRatio}, {"reads", c.APIReadsPerSec, c.S3ReadsPerSec, c.ReadRatio},
		{"upload", c.APIUpMBps, c.S3UpMBps, c.UpRatio}, {"download", c.APIDownMBps, c.S3DownMBps, c.DownRatio},
	} {
		wantTwoPositive(t, row.what, map[string]Figure{"file API": row.a, "S3": row.s, "ratio": row.ratio})
	}
}

// TestBenchScale runs the scale workload, small: a local cluster of two
// groups beside the one of one group, both taking parallel uploads rep
// by rep, and the second group holding part of the chunks.
func TestBenchScale(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two clusters of processes; skipped with -short")
	}
	dir := t.TempDir()
	r := runBench(t, 3*time.Minute, "--local", "--workloads", "scale", "--reps", "2",
		"--scale-streams", "2", "--scale-size", "32MiB", "--json", "--data", dir)
	sc := r.Scale
	if sc == nil || r.Small != nil || r.Large != nil || sc.Streams != 2 || sc.Size != 32<<20 {
		t.Fatalf("report: %+v, want the scale figures only", r)
	}
	wantTwoPositive(t, "scale", map[string]Figure{"one group": sc.OneGroup, "two groups": sc.TwoGroups, "ratio": sc.Ratio, "disk": sc.DiskMBps})
	if want := sc.TwoGroups.Reps[0] / sc.OneGroup.Reps[0]; sc.Ratio.Reps[0] != want {
		t.Errorf("ratio %v, want two/one %v", sc.Ratio.Reps[0], want)
	}
	// 32 chunks of 4 MiB placed at random by free space: each group gets
	// some, short of a one in a billion chance, unless a group failed a
	// write: the router then leaves it out of placements for a while
	// (avoidFor), which on a loaded machine can send one rep's chunks all
	// to the other group. Some rep must have spread them.
	if !slices.ContainsFunc(sc.SecondGroupShare.Reps, func(s float64) bool { return s > 0 && s < 1 }) {
		t.Errorf("the second group holds shares %v of the chunks in the reps, want some but not all in at least one", sc.SecondGroupShare.Reps)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "shoal-bench-*")); len(left) != 0 {
		t.Errorf("left behind %v", left)
	}
}

// TestSeaweedFSCompare runs scripts/seaweedfs-compare, small, with the
// weed binary SHOAL_WEED names: a real SeaweedFS cluster measured by the
// same workloads as a local Shoal cluster, round by round. SeaweedFS is
// not fetched or built here, so without SHOAL_WEED the test skips.
func TestSeaweedFSCompare(t *testing.T) {
	weed := os.Getenv("SHOAL_WEED")
	if weed == "" {
		t.Skip("SKIPPED: SHOAL_WEED is not set; build SeaweedFS (CGO_ENABLED=0 go build ./weed in its source) and give the binary's path to compare with it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../scripts/seaweedfs-compare", weed, "1",
		"--workloads", "ops,small,meta,large", "--small-files", "300", "--small-clients", "4",
		"--meta-files", "200", "--large-sizes", "3MB")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("seaweedfs-compare: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	out := stdout.String()
	t.Logf("\n%s", out)
	// Every figure is there for both, with a ratio.
	for _, want := range []string{"1 KiB files, 4 clients, writes/s", "meta rename, 4 clients, 200 files, per s",
		"meta list", "stat, 1 client(s), mean ms", "3 MB download MB/s", "meta create, CPU ms per file, all processes"} {
		line := ""
		for l := range strings.Lines(out) {
			if strings.HasPrefix(l, want) {
				line = l
			}
		}
		if f := strings.Fields(strings.TrimPrefix(line, want)); len(f) < 4 {
			t.Errorf("no figures for %q in the summary (line %q)", want, line)
		}
	}
}

// wantTwoPositive fails the test unless every figure of row is positive
// and was measured in two reps.
func wantTwoPositive(t *testing.T, row string, figs map[string]Figure) {
	t.Helper()
	for what, f := range figs {
		if !(f.Min > 0 && len(f.Reps) == 2) {
			t.Errorf("%s %s = %+v, want positive over two reps", row, what, f)
		}
	}
}

// diskCounted reports whether the kernel counts what processes write to
// the disk under dir, and if not, why: it needs the kernel's task I/O
// accounting (/proc/PID/io), and files on tmpfs reach no disk.
func diskCounted(dir string) (bool, string) {
	if _, err := os.ReadFile("/proc/self/io"); err != nil {
		return false, "this kernel does not count a process's disk writes: " + err.Error()
	}
	const tmpfsMagic = 0x01021994
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && st.Type == tmpfsMagic {
		return false, dir + " is on tmpfs, whose files reach no disk"
	}
	return true, ""
}
