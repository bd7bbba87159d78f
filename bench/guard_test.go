package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestGuardRatios: each ratio is a median over the baseline's median,
// checked against its floor; a workload not run is not checked.
func TestGuardRatios(t *testing.T) {
	fig := func(v float64) Figure { return figureOf([]float64{v}) }
	r := sampleReport() // small writes 1250/s, reads 5500/s; 1 GiB down 310 MB/s
	if got := guard(r); got != nil {
		t.Fatalf("guard without a baseline: %+v, want nothing checked", got)
	}
	r.Baseline = &Baseline{FsyncsPerSec: fig(500), DiskMBps: fig(400), RequestsPerSec: fig(20000), StreamMBps: fig(1000)}
	rows := guard(r)
	want := []GuardRow{
		{Measure: "small writes/s ÷ disk fsyncs/s", Ratio: 2.5, Floor: floorWritesPerFsync, OK: true},
		{Measure: "small writes/s ÷ loopback requests/s", Ratio: 0.0625, Floor: floorWritesPerRequest, OK: true},
		{Measure: "small reads/s ÷ loopback requests/s", Ratio: 0.275, Floor: floorReadsPerRequest, OK: true},
		{Measure: "1 GiB download MB/s ÷ loopback stream MB/s", Ratio: 0.31, Floor: floorDownloadOfStream, OK: true},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i].Measure != want[i].Measure || rows[i].OK != want[i].OK || rows[i].Floor != want[i].Floor ||
			rows[i].Ratio < want[i].Ratio*0.999 || rows[i].Ratio > want[i].Ratio*1.001 {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	if err := guardErr(rows); err != nil {
		t.Errorf("every ratio above its floor: %v", err)
	}

	// Writes fall to 30 a second: the guard names both their ratios, and
	// nothing else.
	r.Small.WritesPerSec = fig(30)
	err := guardErr(guard(r))
	if !errors.Is(err, ErrRegression) || !strings.Contains(err.Error(), "small writes/s ÷ disk fsyncs/s is 0.060") ||
		!strings.Contains(err.Error(), "small writes/s ÷ loopback requests/s is 0.002") || strings.Contains(err.Error(), "reads") {
		t.Errorf("writes under the floor: %v; want ErrRegression naming the writes only", err)
	}

	var out bytes.Buffer
	r.Guard = guard(r)
	if err := r.writeTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Machine baseline", "disk fsyncs/s (4 KiB appends) 500", "UNDER THE FLOOR"} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
}

// TestBenchGuard runs the regression guard as CI does: a small bounded
// run of the small-file and large workloads on a local cluster, judged
// against the disk and loopback HTTP measured in the same run. It fails
// only on a drop far beyond noise (see the floors in guard.go). It runs
// with SHOAL_BENCH_GUARD=1, on a machine doing nothing else (.ci/run runs
// it after the other tests): beside other packages' tests, the load would
// change between the baseline and the workloads.
func TestBenchGuard(t *testing.T) {
	if os.Getenv("SHOAL_BENCH_GUARD") == "" {
		t.Skip("SKIPPED: the benchmark regression guard needs a machine doing nothing else; run it alone with SHOAL_BENCH_GUARD=1 (.ci/run does)")
	}
	dir := t.TempDir()
	bin := buildShoal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "--local", "--insecure", "--guard", "--workloads", "small,large",
		"--reps", "3", "--small-files", "1500", "--large-sizes", "64MiB", "--json", "--data", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("shoal bench --guard: %v; stdout is not the JSON report: %v\nstderr:\n%s\nstdout:\n%s", runErr, err, stderr.String(), stdout.String())
	}
	for _, g := range r.Guard {
		t.Logf("%s: %.3f (floor %.3f)", g.Measure, g.Ratio, g.Floor)
	}
	if b := r.Baseline; b != nil {
		t.Logf("baseline: %.0f fsyncs/s, %.0f MB/s disk writes, %.0f loopback requests/s, %.0f MB/s loopback stream",
			b.FsyncsPerSec.Median, b.DiskMBps.Median, b.RequestsPerSec.Median, b.StreamMBps.Median)
	}
	if runErr != nil {
		t.Fatalf("shoal bench --guard: %v\nstderr:\n%s", runErr, stderr.String())
	}
	if len(r.Guard) != 4 {
		t.Fatalf("guard rows %+v, want writes (two ratios), reads and the download checked", r.Guard)
	}
	for _, g := range r.Guard {
		if !g.OK || g.Ratio <= 0 {
			t.Errorf("%s: %+v, yet the run passed", g.Measure, g)
		}
	}
}
