package mount

import (
	"fmt"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// op is a FUSE operation the mount times.
type op int

const (
	opAccess op = iota
	opCreate
	opFallocate
	opFlush
	opFsync
	opGetAttr
	opLink
	opLookup
	opMkdir
	opMknod
	opOpen
	opOpenDir
	opRead
	opReadDir
	opReadDirPlus
	opReadlink
	opRelease
	opRename
	opRmdir
	opSetAttr
	opStatFs
	opSymlink
	opUnlink
	opWrite
	numOps
)

// opNames are the operations' label values, in op order.
var opNames = [numOps]string{"access", "create", "fallocate", "flush", "fsync", "getattr", "link", "lookup", "mkdir", "mknod", "open", "opendir", "read", "readdir", "readdirplus", "readlink", "release", "rename", "rmdir", "setattr", "statfs", "symlink", "unlink", "write"}

// metrics counts a mount's FUSE operations for Prometheus (only with
// Config.Metrics set: the file system is then wrapped in metered).
type metrics struct {
	ops       *prometheus.HistogramVec
	byOp      [numOps]prometheus.Observer // ops' child of each operation, found once
	errors    *prometheus.CounterVec
	writeBack prometheus.GaugeFunc
}

func newMetrics(m *fsys) *metrics {
	x := &metrics{
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoal_mount_operation_duration_seconds",
			Help:    "Time the mount took to answer a FUSE operation, by operation (its count is the operations answered).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18), // 50 µs to 6.5 s
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_mount_errors_total",
			Help: "FUSE operations answered with an error, by operation and errno (ENOENT of a lookup is a name that is not there).",
		}, []string{"op", "errno"}),
		writeBack: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_mount_write_back_bytes",
			Help: "Bytes written by programs that the mount holds or is sending, not yet stored in the cluster.",
		}, func() float64 { return float64(m.writeBack.Load()) }),
	}
	for o := range numOps {
		x.byOp[o] = x.ops.WithLabelValues(opNames[o])
	}
	return x
}

func (x *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{x.ops, x.errors, x.writeBack}
}

// observe records one operation that began at start and answered st.
func (x *metrics) observe(o op, start time.Time, st fuse.Status) {
	x.byOp[o].Observe(time.Since(start).Seconds())
	if st != fuse.OK {
		x.errors.WithLabelValues(opNames[o], errnoName(syscall.Errno(st))).Inc()
	}
}

// errnoName is an errno's symbol, as a label ("ENOENT").
func errnoName(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("errno_%d", int(e))
}

// metered wraps the file system go-fuse serves, timing each operation
// and counting its errors. The operations that carry data or change the
// namespace are timed by name; go-fuse's own latency hook does not time
// a node file system's operations.
type metered struct {
	fuse.RawFileSystem
	x *metrics
}

// Lookup counts a name that is not there as ENOENT, though go-fuse
// answers the kernel OK with no inode (a negative entry it may cache).
func (w metered) Lookup(c <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Lookup(c, h, name, out)
	seen := st
	if st == fuse.OK && out.NodeId == 0 {
		seen = fuse.ENOENT
	}
	w.x.observe(opLookup, start, seen)
	return st
}

func (w metered) GetAttr(c <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.GetAttr(c, in, out)
	w.x.observe(opGetAttr, start, st)
	return st
}

func (w metered) SetAttr(c <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.SetAttr(c, in, out)
	w.x.observe(opSetAttr, start, st)
	return st
}

func (w metered) Mknod(c <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Mknod(c, in, name, out)
	w.x.observe(opMknod, start, st)
	return st
}

func (w metered) Mkdir(c <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Mkdir(c, in, name, out)
	w.x.observe(opMkdir, start, st)
	return st
}

func (w metered) Unlink(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Unlink(c, h, name)
	w.x.observe(opUnlink, start, st)
	return st
}

func (w metered) Rmdir(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Rmdir(c, h, name)
	w.x.observe(opRmdir, start, st)
	return st
}

func (w metered) Rename(c <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Rename(c, in, oldName, newName)
	w.x.observe(opRename, start, st)
	return st
}

func (w metered) Link(c <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Link(c, in, name, out)
	w.x.observe(opLink, start, st)
	return st
}

func (w metered) Symlink(c <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Symlink(c, h, target, name, out)
	w.x.observe(opSymlink, start, st)
	return st
}

func (w metered) Access(c <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Access(c, in)
	w.x.observe(opAccess, start, st)
	return st
}

func (w metered) Create(c <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Create(c, in, name, out)
	w.x.observe(opCreate, start, st)
	return st
}

func (w metered) Open(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Open(c, in, out)
	w.x.observe(opOpen, start, st)
	return st
}

func (w metered) Flush(c <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Flush(c, in)
	w.x.observe(opFlush, start, st)
	return st
}

func (w metered) Fsync(c <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Fsync(c, in)
	w.x.observe(opFsync, start, st)
	return st
}

func (w metered) Fallocate(c <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.Fallocate(c, in)
	w.x.observe(opFallocate, start, st)
	return st
}

func (w metered) OpenDir(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.OpenDir(c, in, out)
	w.x.observe(opOpenDir, start, st)
	return st
}

func (w metered) ReadDir(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.ReadDir(c, in, out)
	w.x.observe(opReadDir, start, st)
	return st
}

func (w metered) ReadDirPlus(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.ReadDirPlus(c, in, out)
	w.x.observe(opReadDirPlus, start, st)
	return st
}

func (w metered) StatFs(c <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	start := time.Now()
	st := w.RawFileSystem.StatFs(c, h, out)
	w.x.observe(opStatFs, start, st)
	return st
}

func (w metered) Readlink(c <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	start := time.Now()
	target, st := w.RawFileSystem.Readlink(c, h)
	w.x.observe(opReadlink, start, st)
	return target, st
}

func (w metered) Read(c <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	start := time.Now()
	res, st := w.RawFileSystem.Read(c, in, buf)
	w.x.observe(opRead, start, st)
	return res, st
}

// Writev is how go-fuse sends writes first; a file system without it
// answers ENOSYS and gets Write, which counts the write then.
func (w metered) Writev(c <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := w.RawFileSystem.Writev(c, in, data)
	if st != fuse.ENOSYS {
		w.x.observe(opWrite, start, st)
	}
	return n, st
}

func (w metered) Write(c <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := w.RawFileSystem.Write(c, in, data)
	w.x.observe(opWrite, start, st)
	return n, st
}

func (w metered) Release(c <-chan struct{}, in *fuse.ReleaseIn) {
	start := time.Now()
	w.RawFileSystem.Release(c, in)
	w.x.observe(opRelease, start, fuse.OK)
}
