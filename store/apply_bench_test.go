//go:build unix

package store

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"shoal/meta"
)

// BenchmarkApply measures what applying log entries costs a member in
// CPU: the entries of a busy group's small-file and metadata workloads,
// each with a request ID, appended and applied in batches, into one
// directory already holding 10,000 files. Batches of 6 are what a
// primary applies per round under 16 clients, batches of 500 what a
// follower applies per round. It reports the process's CPU time (user
// and system) per entry, which the disk's fsyncs do not blur as they do
// the time per entry.
func BenchmarkApply(b *testing.B) {
	const files = 10_000
	data := make([]byte, 1024)
	kinds := []struct {
		name string
		op   func(i uint64) meta.Op
	}{
		{"put1KiB", func(i uint64) meta.Op {
			return meta.Op{Kind: meta.OpPut, Path: fmt.Sprintf("/bench/meta/n%09d", i),
				File: &meta.Inode{Size: int64(len(data)), Data: data}}
		}},
		{"create", func(i uint64) meta.Op {
			return meta.Op{Kind: meta.OpPut, Path: fmt.Sprintf("/bench/meta/n%09d", i), File: &meta.Inode{}}
		}},
	}
	for _, kind := range kinds {
		for _, batch := range []int{6, 500} {
			b.Run(fmt.Sprintf("%s/batch%d", kind.name, batch), func(b *testing.B) {
				d := crOpen(b, b.TempDir())
				var index uint64
				clock := time.Now().UnixNano()
				appendApply := func(ops []meta.Op) {
					es := make([]meta.Entry, len(ops))
					for k := range ops {
						index++
						clock++
						ops[k].Clock = clock
						ops[k].ReqID = fmt.Sprintf("%016x:%d", clock, index)
						es[k] = meta.Entry{Index: index, Ballot: meta.Ballot{Term: 1, Node: 1}, Op: ops[k]}
					}
					if err := d.Append(es); err != nil {
						b.Fatal(err)
					}
					_, rs, err := d.Apply(index)
					if err != nil {
						b.Fatal(err)
					}
					for i, r := range rs {
						if r.Code != meta.CodeOK {
							b.Fatalf("entry %d: %s", es[i].Index, r.Code)
						}
					}
				}
				mk := meta.Op{Kind: meta.OpMkdir, Path: "/bench/meta", Parents: true}
				appendApply([]meta.Op{mk})
				for i := 0; i < files; i += 1000 {
					ops := make([]meta.Op, 1000)
					for k := range ops {
						ops[k] = kind.op(index + uint64(k) + 1)
					}
					appendApply(ops)
				}
				cpu0, entries := cpuTime(b), index
				for b.Loop() {
					ops := make([]meta.Op, batch)
					for k := range ops {
						ops[k] = kind.op(index + uint64(k) + 1)
					}
					appendApply(ops)
				}
				n := float64(index - entries)
				b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/n, "cpu-ns/entry")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/entry")
			})
		}
	}
}

// cpuTime is the CPU time, user and system, the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
