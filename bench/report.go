package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is everything a run measured. Times are in milliseconds, rates
// in operations per second, throughput in MB/s (10^6 bytes).
type Report struct {
	Machine Machine `json:"machine"`
	// Cluster is what was measured: a router URL, or the local cluster.
	Cluster  string          `json:"cluster"`
	Reps     int             `json:"reps"`
	Ops      *OpsResult      `json:"ops,omitempty"`
	Small    *SmallResult    `json:"small,omitempty"`
	Meta     *MetaResult     `json:"meta,omitempty"`
	Large    []LargeRow      `json:"large,omitempty"`
	Streams  *StreamsResult  `json:"memory,omitempty"`
	Failover *FailoverResult `json:"failover,omitempty"`
	Mount    *MountResult    `json:"mount,omitempty"`
	Security *SecurityResult `json:"security,omitempty"`
	Metrics  *MetricsResult  `json:"metrics,omitempty"`
	Scale    *ScaleResult    `json:"scale,omitempty"`
	CLI      *CLIResult      `json:"cli,omitempty"`
	S3       *S3Result       `json:"s3,omitempty"`
	Locks    *LocksResult    `json:"locks,omitempty"`
	// Memory is the peak resident memory of each process of a local
	// cluster during each workload (memory.go).
	Memory []MemoryRow `json:"peak_memory,omitempty"`
	// Baseline is what the machine measured in the same run, and Guard
	// the ratios checked against it (with Config.Guard).
	Baseline *Baseline  `json:"baseline,omitempty"`
	Guard    []GuardRow `json:"guard,omitempty"`
	// Notes say what was left out and why.
	Notes []string `json:"notes,omitempty"`
}

// Machine describes the host the benchmark ran on.
type Machine struct {
	Cores int    `json:"cores"`
	OS    string `json:"os"`
	Arch  string `json:"arch"`
	Go    string `json:"go"`
	Shoal string `json:"shoal"`
}

// OpsResult is the latency of each file operation at each client count.
type OpsResult struct {
	Iterations int      `json:"iterations_per_client"`
	FileBytes  int      `json:"file_bytes"`
	Rows       []OpsRow `json:"rows"`
}

// OpsRow is one operation at one number of concurrent clients.
type OpsRow struct {
	Op      string `json:"op"`
	Clients int    `json:"clients"`
	MeanMS  Figure `json:"mean_ms"`
	P50MS   Figure `json:"p50_ms"`
	P99MS   Figure `json:"p99_ms"`
}

// SmallResult is the throughput and latency of many small files.
type SmallResult struct {
	Files        int    `json:"files"`
	Clients      int    `json:"clients"`
	FileBytes    int    `json:"file_bytes"`
	WritesPerSec Figure `json:"writes_per_s"`
	ReadsPerSec  Figure `json:"reads_per_s"`
	WriteP50MS   Figure `json:"write_p50_ms"`
	WriteP99MS   Figure `json:"write_p99_ms"`
	ReadP50MS    Figure `json:"read_p50_ms"`
	ReadP99MS    Figure `json:"read_p99_ms"`
}

// MetaResult is the rate and latency of metadata operations on the files
// of one directory, at many clients.
type MetaResult struct {
	Files   int       `json:"files"`
	Clients int       `json:"clients"`
	Rows    []MetaRow `json:"rows"`
}

// MetaRow is one operation: files (for list, entries) per second, and the
// latency of one call (for list, of listing the whole directory).
type MetaRow struct {
	Op     string `json:"op"`
	PerSec Figure `json:"per_s"`
	P50MS  Figure `json:"p50_ms"`
	P99MS  Figure `json:"p99_ms"`
	// DiskKB is the KiB the cluster's processes wrote to disk during the
	// operation, per file (per entry for list): a local cluster's, or
	// those given by Config.Pids; nil when the benchmark knows none.
	DiskKB *Figure `json:"disk_kib_per_file,omitempty"`
	// CPUMS is the CPU time the cluster's processes used during the
	// operation, in ms per file (per entry for list), every thread
	// counted: a local cluster's, or those given by Config.Pids; nil when
	// the benchmark knows none.
	CPUMS *Figure `json:"cpu_ms_per_file,omitempty"`
}

// LargeRow is the upload and download throughput of one file size.
type LargeRow struct {
	Size     int64  `json:"size_bytes"`
	Label    string `json:"size"`
	UpMBps   Figure `json:"up_mb_per_s"`
	DownMBps Figure `json:"down_mb_per_s"`
	// With a local cluster, the disk's fsynced write rate (as dd
	// conv=fsync measures it) is taken after each rep's transfers, and
	// UpOfCeiling is each rep's upload over a third of it: every byte is
	// written three times on the one disk, so that is the most an upload
	// can reach. Absent for a remote cluster, whose disks are not here.
	DiskMBps    *Figure `json:"disk_mb_per_s,omitempty"`
	UpOfCeiling *Figure `json:"up_of_disk_ceiling,omitempty"`
}

// FailoverResult is how long writes stalled when the primary was killed;
// its figure is over the runs, not over reps.
type FailoverResult struct {
	Runs int `json:"runs"`
	// Load is how many more clients wrote 1 KiB files meanwhile.
	Load int `json:"load_clients"`
	// UnavailableMS is the time from the kill to the answer of the first
	// acknowledged write that started after it.
	UnavailableMS Figure `json:"unavailable_ms"`
	AckedWrites   int    `json:"acked_writes"`
	LostWrites    int    `json:"lost_writes"`
	// FailedWrites were answered with an error (during the failover) and
	// not retried; they are not expected to be readable.
	FailedWrites int `json:"failed_writes"`
}

func newReport(cfg Config) *Report {
	r := &Report{
		Machine: Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH,
			Go: runtime.Version(), Shoal: cfg.Version},
		Cluster: "router " + cfg.Router,
		Reps:    cfg.Reps,
	}
	if !cfg.Local && len(cfg.Workloads) == 0 {
		r.Notes = append(r.Notes, "failover skipped: it kills a process, so it runs only with --local")
	}
	return r
}

// write writes r as JSON or as a table.
func (r *Report) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.writeTable(w)
}

// writeTable writes r for a person: the machine, then one section per
// workload, every figure as "median (min–max)" over the reps.
func (r *Report) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	m := r.Machine
	shoal := ""
	if m.Shoal != "" {
		shoal = ", shoal " + m.Shoal
	}
	fmt.Fprintf(tw, "Shoal benchmark: %d cores, %s/%s, %s%s\n", m.Cores, m.OS, m.Arch, m.Go, shoal)
	fmt.Fprintf(tw, "Cluster: %s\n", r.Cluster)
	if r.Reps == 1 {
		fmt.Fprintln(tw, "Figures: one measurement each (--reps 1)")
	} else {
		fmt.Fprintf(tw, "Figures: median (min–max) over %d reps\n", r.Reps)
	}
	if o := r.Ops; o != nil {
		fmt.Fprintf(tw, "\nFile operations: latency in ms, %d iterations per client, %d-byte files\n", o.Iterations, o.FileBytes)
		fmt.Fprintln(tw, "OP\tCLIENTS\tMEAN\tP50\tP99")
		for _, row := range o.Rows {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", row.Op, row.Clients, fmtFigure(row.MeanMS), fmtFigure(row.P50MS), fmtFigure(row.P99MS))
		}
	}
	if s := r.Small; s != nil {
		fmt.Fprintf(tw, "\nSmall files: %d files of %s, %d clients, every byte read back\n", s.Files, sizeLabel(int64(s.FileBytes)), s.Clients)
		fmt.Fprintln(tw, "\tFILES/S\tP50 MS\tP99 MS")
		fmt.Fprintf(tw, "write\t%s\t%s\t%s\n", fmtFigure(s.WritesPerSec), fmtFigure(s.WriteP50MS), fmtFigure(s.WriteP99MS))
		fmt.Fprintf(tw, "read\t%s\t%s\t%s\n", fmtFigure(s.ReadsPerSec), fmtFigure(s.ReadP50MS), fmtFigure(s.ReadP99MS))
	}
	if m := r.Meta; m != nil {
		fmt.Fprintf(tw, "\nMetadata: %d files in one directory, %d clients (list: entries/s, each client listing it whole)\n", m.Files, m.Clients)
		disk := slices.ContainsFunc(m.Rows, func(r MetaRow) bool { return r.DiskKB != nil })
		cpu := slices.ContainsFunc(m.Rows, func(r MetaRow) bool { return r.CPUMS != nil })
		head := "OP\tFILES/S\tP50 MS\tP99 MS"
		if disk {
			fmt.Fprintln(tw, "(disk: KiB the cluster's processes wrote to disk per file, its three copies and the pages each commit rewrites included)")
			head += "\tDISK KIB"
		}
		if cpu {
			fmt.Fprintln(tw, "(cpu: ms of CPU the cluster's processes used per file, on every core)")
			head += "\tCPU MS"
		}
		fmt.Fprintln(tw, head)
		opt := func(f *Figure) string {
			if f == nil {
				return "-"
			}
			return fmtFigure(*f)
		}
		for _, row := range m.Rows {
			line := fmt.Sprintf("%s\t%s\t%s\t%s", row.Op, fmtFigure(row.PerSec), fmtFigure(row.P50MS), fmtFigure(row.P99MS))
			if disk {
				line += "\t" + opt(row.DiskKB)
			}
			if cpu {
				line += "\t" + opt(row.CPUMS)
			}
			fmt.Fprintln(tw, line)
		}
	}
	if len(r.Large) > 0 {
		fmt.Fprintln(tw, "\nLarge files: MB/s (1 MB = 10^6 bytes), one client, SHA-256 checked")
		if r.Large[0].DiskMBps == nil {
			fmt.Fprintln(tw, "SIZE\tUPLOAD\tDOWNLOAD")
		} else {
			fmt.Fprintf(tw, "(disk: its fsynced write rate in the same reps; upload ÷ disk/%d: each byte is written %d times on it)\n", localNodes, localNodes)
			fmt.Fprintf(tw, "SIZE\tUPLOAD\tDOWNLOAD\tDISK\tUPLOAD ÷ DISK/%d\n", localNodes)
		}
		for _, row := range r.Large {
			if row.DiskMBps == nil || row.UpOfCeiling == nil {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", row.Label, fmtFigure(row.UpMBps), fmtFigure(row.DownMBps))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Label, fmtFigure(row.UpMBps), fmtFigure(row.DownMBps), fmtFigure(*row.DiskMBps), fmtFigure(*row.UpOfCeiling))
		}
	}
	if m := r.Streams; m != nil {
		fmt.Fprintf(tw, "\nMemory: %d transfers of %s at once through one router, SHA-256 checked (limit for the router: %d MiB)\n", m.Streams, m.Label, RouterMemoryLimitMiB)
		fmt.Fprintln(tw, "\tMB/S (ALL)\tROUTER PEAK MIB")
		fmt.Fprintf(tw, "upload\t%s\t%s\n", fmtFigure(m.UpMBps), fmtFigure(m.RouterUpMiB))
		fmt.Fprintf(tw, "download\t%s\t%s\n", fmtFigure(m.DownMBps), fmtFigure(m.RouterDownMiB))
	}
	if f := r.Failover; f != nil {
		u := f.UnavailableMS
		fmt.Fprintf(tw, "\nFailover: kill -9 of the meta group's primary under a continuous writer and %d more writing 1 KiB files, %d %s\n", f.Load, f.Runs, plural(f.Runs, "run", "runs"))
		fmt.Fprintf(tw, "kill to first acknowledged new write: median %s ms, max %s ms (min %s; runs: %s)\n",
			fmtNum(u.Median), fmtNum(u.Max), fmtNum(u.Min), joinNums(u.Reps))
		fmt.Fprintf(tw, "writes: %d acknowledged, %d lost (%d failed during the failover, not retried)\n", f.AckedWrites, f.LostWrites, f.FailedWrites)
	}
	if m := r.Mount; m != nil {
		fmt.Fprintf(tw, "\nMount: the FUSE mount at %s against the HTTP API, one client, in the same reps\n", m.Dir)
		fmt.Fprintln(tw, "OP\tUNIT\tMOUNT\tAPI\tMOUNT/API")
		for _, row := range m.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Op, row.Unit, fmtFigure(row.Mount), fmtFigure(row.API), fmtFigure(row.Ratio))
		}
		if len(m.Tools) > 0 {
			fmt.Fprintf(tw, "\nTools on a tree of %d files in %d directories: through the mount and in a local directory on the same machine, ms\n", m.TreeFiles, treeDirs(m.TreeFiles))
			fmt.Fprintln(tw, "TOOL\tMOUNT\tLOCAL\tMOUNT/LOCAL")
			for _, row := range m.Tools {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", row.Op, fmtFigure(row.Mount), fmtFigure(row.Local), fmtFigure(row.Slowdown))
			}
		}
		for _, s := range m.Skipped {
			fmt.Fprintf(tw, "SKIPPED %s\n", s)
		}
	}
	if sc := r.Scale; sc != nil {
		fmt.Fprintf(tw, "\nScale: %d uploads of %s at once, on a local cluster of one group and one of two groups, in the same reps, MB/s\n", sc.Streams, sizeLabel(sc.Size))
		fmt.Fprintln(tw, "ONE GROUP\tTWO GROUPS\tTWO/ONE\tDISK (FSYNCED)\tDISK ÷ 3 COPIES\tCHUNKS IN 2ND GROUP")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", fmtFigure(sc.OneGroup), fmtFigure(sc.TwoGroups), fmtFigure(sc.Ratio), fmtFigure(sc.DiskMBps), fmtFigure(sc.CeilingMBps), fmtFigure(sc.SecondGroupShare))
	}
	if sr := r.Security; sr != nil {
		fmt.Fprintf(tw, "\nSecurity: a secure cluster (TLS, tokens, content sealed at rest) beside an --insecure one, in the same reps (%d small files)\n", sr.SmallFiles)
		fmt.Fprintln(tw, "MEASURE\tUNIT\tSECURE\tINSECURE\tSECURE/INSECURE")
		for _, row := range sr.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Measure, row.Unit, fmtFigure(row.Secure), fmtFigure(row.Insecure), fmtFigure(row.Ratio))
		}
	}
	if mr := r.Metrics; mr != nil {
		fmt.Fprintf(tw, "\nMetrics: a cluster whose processes collect Prometheus metrics beside one whose processes do not, in the same reps (%d small files)\n", mr.SmallFiles)
		fmt.Fprintln(tw, "MEASURE\tUNIT\tMETRICS ON\tMETRICS OFF\tON/OFF")
		for _, row := range mr.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.Measure, row.Unit, fmtFigure(row.On), fmtFigure(row.Off), fmtFigure(row.Ratio))
		}
	}
	if c := r.CLI; c != nil {
		fmt.Fprintf(tw, "\nCLI: the binary run as a user runs it, beside the API's small writes, in the same reps (%d files of 1 KiB, %d at once)\n", c.Files, c.Parallel)
		fmt.Fprintln(tw, "MEASURE\tUNIT\tFIGURE")
		for _, row := range []struct {
			measure, unit string
			f             Figure
		}{
			{"API small writes", "files/s", c.APIWritesPerSec},
			{"shoal put -r", "files/s", c.PutTreeFilesPerSec},
			{"put -r / API", "ratio", c.PutTreeRatio},
			{"shoal sync, tree unchanged", "s", c.SyncUnchangedSec},
			{fmt.Sprintf("API PUT of %s (streamed)", sizeLabel(c.LargeBytes)), "s", c.LargeAPISec},
			{fmt.Sprintf("shoal put of %s", sizeLabel(c.LargeBytes)), "s", c.LargeUploadSec},
			{"put / API PUT", "ratio", c.LargeUploadRatio},
			{fmt.Sprintf("shoal put of the same %s again", sizeLabel(c.LargeBytes)), "s", c.LargeReuploadSec},
		} {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", row.measure, row.unit, fmtFigure(row.f))
		}
	}
	if c := r.S3; c != nil {
		fmt.Fprintf(tw, "\nS3: the S3 API beside the file API, in the same reps (%d files of 1 KiB, %d clients; one file of %s)\n", c.Files, c.Clients, sizeLabel(c.Large))
		fmt.Fprintln(tw, "MEASURE\tUNIT\tFILE API\tS3\tS3 / FILE API")
		for _, row := range []struct {
			measure, unit string
			a, s, ratio   Figure
		}{
			{"small writes", "files/s", c.APIWritesPerSec, c.S3WritesPerSec, c.WriteRatio},
			{"small reads", "files/s", c.APIReadsPerSec, c.S3ReadsPerSec, c.ReadRatio},
			{"upload " + sizeLabel(c.Large), "MB/s", c.APIUpMBps, c.S3UpMBps, c.UpRatio},
			{"download " + sizeLabel(c.Large), "MB/s", c.APIDownMBps, c.S3DownMBps, c.DownRatio},
		} {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.measure, row.unit, fmtFigure(row.a), fmtFigure(row.s), fmtFigure(row.ratio))
		}
	}
	if c := r.Locks; c != nil {
		fmt.Fprintln(tw, "\nLocks: acquire and release of a lock of one's own, beside 1 KiB writes by as many clients")
		fmt.Fprintln(tw, "CLIENTS\tLOCKS/S\tLOCK MS\tWRITES/S\tWRITE MS")
		for _, l := range c.Levels {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", l.Clients, fmtFigure(l.LocksPerSec), fmtFigure(l.LockMS), fmtFigure(l.WritesPerSec), fmtFigure(l.WriteMS))
		}
		fmt.Fprintf(tw, "\nCaches, each beside the same reads without it\n")
		fmt.Fprintln(tw, "MEASURE\tUNIT\tCACHED\tNOT CACHED\tRATIO")
		fmt.Fprintf(tw, "%s read %d times by each of %d clients, router cache\tMB/s\t%s\t%s\t%s\n", sizeLabel(c.CacheFile), c.CacheReads, c.CacheClients,
			fmtFigure(c.CachedMBps), fmtFigure(c.UncachedMBps), fmtFigure(c.RouterCacheGet))
		fmt.Fprintf(tw, "open and read of an unchanged %s file, library cache\topens/s\t%s\t%s\t%s\n", sizeLabel(int64(c.OpenFile)),
			fmtFigure(c.CachedOpens), fmtFigure(c.UncachedOpens), fmtFigure(c.LibraryCacheGain))
	}
	if len(r.Memory) > 0 {
		fmt.Fprintln(tw, "\nPeak resident memory of each process during each workload, MiB")
		var names []string
		for _, row := range r.Memory {
			for _, p := range row.Peaks {
				if !slices.Contains(names, p.Process) {
					names = append(names, p.Process)
				}
			}
		}
		fmt.Fprintf(tw, "WORKLOAD\t%s\n", strings.ToUpper(strings.Join(names, "\t")))
		for _, row := range r.Memory {
			cells := make([]string, len(names))
			for i, n := range names {
				cells[i] = "-"
				for _, p := range row.Peaks {
					if p.Process == n {
						cells[i] = fmtNum(p.PeakMiB)
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%s\n", row.Workload, strings.Join(cells, "\t"))
		}
	}
	if b := r.Baseline; b != nil {
		fmt.Fprintln(tw, "\nMachine baseline, same run: what the disk and loopback HTTP do without Shoal")
		fmt.Fprintf(tw, "disk fsyncs/s (4 KiB appends)\t%s\n", fmtFigure(b.FsyncsPerSec))
		fmt.Fprintf(tw, "disk write MB/s (256 MiB, fsynced)\t%s\n", fmtFigure(b.DiskMBps))
		fmt.Fprintf(tw, "loopback HTTP requests/s (1 KiB)\t%s\n", fmtFigure(b.RequestsPerSec))
		fmt.Fprintf(tw, "loopback HTTP stream MB/s\t%s\n", fmtFigure(b.StreamMBps))
	}
	if len(r.Guard) > 0 {
		fmt.Fprintln(tw, "\nRegression guard: medians as ratios to the machine baseline")
		fmt.Fprintln(tw, "MEASURE\tRATIO\tFLOOR\t")
		for _, g := range r.Guard {
			verdict := "ok"
			if !g.OK {
				verdict = "UNDER THE FLOOR"
			}
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%s\n", g.Measure, g.Ratio, g.Floor, verdict)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(tw)
		for _, n := range r.Notes {
			fmt.Fprintf(tw, "Note: %s\n", n)
		}
	}
	return tw.Flush()
}

// fmtFigure writes a figure as "median (min–max)", or the one value when
// there was a single rep.
func fmtFigure(f Figure) string {
	if len(f.Reps) <= 1 {
		return fmtNum(f.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(f.Median), fmtNum(f.Min), fmtNum(f.Max))
}

// fmtNum writes v with about three significant digits, whole numbers
// from 100 up.
func fmtNum(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func joinNums(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmtNum(v)
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
