package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// sampleReport is a report with every section, two reps of each figure.
func sampleReport() *Report {
	fig := func(a, b float64) Figure { return figureOf([]float64{a, b}) }
	disk, ceiling := fig(590, 610), fig(0.75, 0.85)
	return &Report{
		Machine: Machine{Cores: 8, OS: "linux", Arch: "amd64", Go: "go1.26.8", Shoal: "v1.2.3"},
		Cluster: "local: 3 storage processes + router",
		Reps:    2,
		Ops: &OpsResult{Iterations: 10, FileBytes: 70, Rows: []OpsRow{
			{Op: "write", Clients: 1, MeanMS: fig(4.1, 4.3), P50MS: fig(4, 4.2), P99MS: fig(9.5, 12.3)},
			{Op: "read", Clients: 10, MeanMS: fig(0.5, 0.7), P50MS: fig(0.4, 0.6), P99MS: fig(150, 250)},
		}},
		Small: &SmallResult{Files: 100000, Clients: 16, FileBytes: 1024,
			WritesPerSec: fig(1200, 1300), ReadsPerSec: fig(5000, 6000),
			WriteP50MS: fig(10, 12), WriteP99MS: fig(40, 50), ReadP50MS: fig(2, 3), ReadP99MS: fig(8, 9)},
		Large: []LargeRow{{Size: 1 << 30, Label: "1 GiB", UpMBps: fig(150, 170), DownMBps: fig(300, 320),
			DiskMBps: &disk, UpOfCeiling: &ceiling}},
		Failover: &FailoverResult{Runs: 3, UnavailableMS: figureOf([]float64{900, 1100, 1000}),
			AckedWrites: 1234, LostWrites: 0, FailedWrites: 2},
		Notes: []string{"something was skipped"},
	}
}

func TestReportTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().write(&b, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Shoal benchmark: 8 cores, linux/amd64, go1.26.8, shoal v1.2.3\n",
		"Cluster: local: 3 storage processes + router\n",
		"Figures: median (min–max) over 2 reps\n",
		"write  1        4.20 (4.10–4.30)  4.10 (4.00–4.20)  10.9 (9.50–12.3)\n",
		"read   10       0.60 (0.50–0.70)  0.50 (0.40–0.60)  200 (150–250)\n",
		"Small files: 100000 files of 1 KiB, 16 clients",
		"write  1250 (1200–1300)  11.0 (10.0–12.0)  45.0 (40.0–50.0)\n",
		"1 GiB  160 (150–170)  310 (300–320)  600 (590–610)  0.80 (0.75–0.85)\n",
		"upload ÷ disk/3",
		"median 1000 ms, max 1100 ms (min 900; runs: 900, 1100, 1000)",
		"1234 acknowledged, 0 lost",
		"Note: something was skipped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q; it is:\n%s", want, out)
		}
	}
	// The sections come in the workloads' order.
	last := -1
	for _, h := range []string{"File operations", "Small files", "Large files", "Failover"} {
		i := strings.Index(out, h)
		if i < last {
			t.Errorf("section %q out of order:\n%s", h, out)
		}
		last = i
	}
}

func TestReportTableOneRep(t *testing.T) {
	r := &Report{Machine: Machine{Cores: 2, OS: "linux", Arch: "arm64", Go: "go1.26"}, Cluster: "router http://h:8080", Reps: 1,
		Large: []LargeRow{{Label: "10 MB", UpMBps: figureOf([]float64{55.55}), DownMBps: figureOf([]float64{123.4})}}}
	var b bytes.Buffer
	if err := r.write(&b, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Shoal benchmark: 2 cores, linux/arm64, go1.26\n", "one measurement each", "10 MB  55.5    123\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q; it is:\n%s", want, out)
		}
	}
	for _, absent := range []string{"File operations", "Small files", "Failover", "–"} {
		if strings.Contains(out, absent) {
			t.Errorf("table has %q for a workload that did not run or a single rep:\n%s", absent, out)
		}
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().write(&b, true); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	get := func(path ...any) any {
		var v any = doc
		for _, k := range path {
			switch k := k.(type) {
			case string:
				v = v.(map[string]any)[k]
			case int:
				v = v.([]any)[k]
			}
		}
		return v
	}
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"machine", "cores"}, 8.0},
		{[]any{"reps"}, 2.0},
		{[]any{"ops", "rows", 0, "op"}, "write"},
		{[]any{"ops", "rows", 0, "p99_ms", "max"}, 12.3},
		{[]any{"ops", "rows", 1, "clients"}, 10.0},
		{[]any{"small", "writes_per_s", "min"}, 1200.0},
		{[]any{"small", "read_p99_ms", "max"}, 9.0},
		{[]any{"large", 0, "size_bytes"}, float64(1 << 30)},
		{[]any{"large", 0, "down_mb_per_s", "median"}, 310.0},
		{[]any{"failover", "unavailable_ms", "max"}, 1100.0},
		{[]any{"failover", "unavailable_ms", "reps", 2}, 1000.0},
		{[]any{"failover", "lost_writes"}, 0.0},
	}
	for _, c := range checks {
		if got := get(c.path...); got != c.want {
			t.Errorf("%v = %v, want %v", c.path, got, c.want)
		}
	}
	// And it decodes back into the same report.
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Failover.AckedWrites != 1234 || back.Small.ReadsPerSec.Reps[1] != 6000 {
		t.Errorf("decoded report differs: %+v", back)
	}
}

func TestNewReportNotesSkippedFailover(t *testing.T) {
	if r := newReport(DefaultConfig()); len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "--local") {
		t.Errorf("without --local the report should say failover was skipped: %v", r.Notes)
	}
	c := DefaultConfig()
	c.Local = true
	if r := newReport(c); len(r.Notes) != 0 {
		t.Errorf("with --local nothing is skipped: %v", r.Notes)
	}
}

// TestReportMetaDisk: the meta table has a disk column and a CPU column
// when any row has the figure, with "-" where a row lacks it, and none
// otherwise.
func TestReportMetaDisk(t *testing.T) {
	fig := func(a, b float64) Figure { return figureOf([]float64{a, b}) }
	d1, d3, c1 := fig(24, 25), fig(20, 21), fig(0.8, 1.0)
	r := &Report{Machine: Machine{Cores: 2, OS: "linux", Arch: "amd64", Go: "go1.26"}, Cluster: "local", Reps: 2,
		Meta: &MetaResult{Files: 100, Clients: 4, Rows: []MetaRow{
			{Op: "create", PerSec: fig(1000, 1200), P50MS: fig(10, 12), P99MS: fig(30, 40), DiskKB: &d1, CPUMS: &c1},
			{Op: "stat", PerSec: fig(4000, 5000), P50MS: fig(3, 4), P99MS: fig(9, 10)},
			{Op: "delete", PerSec: fig(1300, 1500), P50MS: fig(9, 11), P99MS: fig(28, 32), DiskKB: &d3},
		}}}
	var b bytes.Buffer
	if err := r.write(&b, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"OP      FILES/S           P50 MS            P99 MS            DISK KIB          CPU MS\n",
		"create  1100 (1000–1200)  11.0 (10.0–12.0)  35.0 (30.0–40.0)  24.5 (24.0–25.0)  0.90 (0.80–1.00)\n",
		"stat    4500 (4000–5000)  3.50 (3.00–4.00)  9.50 (9.00–10.0)  -                 -\n",
		"delete  1400 (1300–1500)  10.0 (9.00–11.0)  30.0 (28.0–32.0)  20.5 (20.0–21.0)  -\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q; it is:\n%s", want, out)
		}
	}
	for i := range r.Meta.Rows {
		r.Meta.Rows[i].DiskKB, r.Meta.Rows[i].CPUMS = nil, nil
	}
	b.Reset()
	if err := r.write(&b, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "DISK") || strings.Contains(b.String(), "CPU") {
		t.Errorf("a disk or CPU column with no such figure:\n%s", b.String())
	}
}
