package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"maps"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/harness"
)

// TestSoak runs a mixed workload (small and large files, metadata, the
// mount) for SHOAL_SOAK (a duration, e.g. 30m) with a fault every
// SHOAL_SOAK_FAULT (default 1m), and checks what a long run must show:
// the RSS, open file descriptors and goroutines of every process that ran
// throughout stay flat after the warm-up (the first fifth; RSS counts the
// process's anonymous memory, not the pages of files it maps, such as
// meta.db, which the kernel can drop at will), no promotion
// happens that a fault does not explain (a false failover), and every
// acknowledged write that was not deleted reads back whole. It prints
// the figures as a table.
func TestSoak(t *testing.T) {
	total, err := time.ParseDuration(os.Getenv("SHOAL_SOAK"))
	if err != nil || total <= 0 {
		t.Skip("SKIPPED: set SHOAL_SOAK to a duration (e.g. 30m) to run the soak")
	}
	every := time.Minute
	if d, err := time.ParseDuration(os.Getenv("SHOAL_SOAK_FAULT")); err == nil && d > 0 {
		every = d
	}
	c := startCluster(t, harness.Spec{
		Groups: []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 3}},
		// Killed nodes come back within seconds: nothing is replaced.
		// Deleted files' chunks are collected within minutes, so the
		// disks hold what the workload keeps, not all it ever wrote.
		NodeFlags:   []string{"--pprof", "127.0.0.1:0", "--replace-after", "1h", "--gc-interval", "30s", "--gc-grace", "2m"},
		RouterFlags: []string{"--pprof", "127.0.0.1:0", "--chunk-size", strconv.Itoa(1 << 20)},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	warm := began.Add(total / 5)
	s := &soak{c: c, t: t, restarted: map[string]time.Time{}}

	var wg sync.WaitGroup
	work := func(name string, f func(ctx context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s workload: %v", name, err)
			}
		}()
	}
	cl, err := c.Client(30*time.Second, -1)
	if err != nil {
		t.Fatal(err)
	}
	small := harness.StartWriter(ctx, cl, "/soak/small", nil)
	work("large", s.large)
	work("metadata", s.metadata)
	if dir, ok := s.mountIfPossible(); ok {
		work("mount", func(ctx context.Context) error { return s.mountLoop(ctx, dir) })
	}
	sampler := time.NewTicker(10 * time.Second)
	defer sampler.Stop()
	faults := time.NewTicker(every)
	defer faults.Stop()
	deadline := time.After(total)
	s.sample()
loop:
	for {
		select {
		case <-deadline:
			break loop
		case <-sampler.C:
			s.sample()
		case <-faults.C:
			s.fault(ctx)
		}
	}
	s.sample()
	cancel()
	smallAcks := small.Halt()
	wg.Wait()
	s.settle()

	// Every process back, then every acknowledged write read back.
	for _, p := range c.Servers() {
		if !p.Running() {
			c.start(p)
		}
	}
	for _, g := range []string{"g1", "g2"} {
		c.waitGroupNamed(g, 3, "")
	}
	vctx, vcancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer vcancel()
	lost, err := harness.Lost(vctx, c.client(), append(smallAcks, s.kept()...))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range lost {
		t.Errorf("acknowledged write %s lost", a.Path)
	}
	acked, failed := small.Counts()
	t.Logf("soak of %v, a fault every %v: %d faults; writes acknowledged: %d small (%d failed), %d large, %d metadata rounds, %d through the mount",
		total, every, s.faults, acked, failed, s.largeN, s.metaN, s.mountN)
	s.report(warm)
	if ff := s.falseFailovers(began); len(ff) > 0 {
		t.Errorf("%d promotions no fault explains (false failovers): %v", len(ff), ff)
	}
}

// soak is the state of one soak run.
type soak struct {
	c *cluster
	t *testing.T

	mu        sync.Mutex
	samples   []sample             // every process, every 10 s
	restarted map[string]time.Time // process name: last restart
	faultAt   []time.Time
	faults    int
	disk      []int64 // bytes under the cluster's directory, every 10 s

	largeN, metaN, mountN int
	largeAcks             []harness.Ack // the large files still kept

	// quiet is each process's fewest goroutines in the seconds after the
	// load stopped (settle): what a leak would leave, without the work
	// in flight that the last sample under load counts.
	quiet map[string]int
}

// settle samples the goroutines of every running process for a few
// seconds once the load has stopped, keeping the fewest seen.
func (s *soak) settle() {
	quiet := map[string]int{}
	tick := time.NewTicker(500 * time.Millisecond) // the sampling interval
	defer tick.Stop()
	for i := range 10 {
		if i > 0 {
			<-tick.C
		}
		for _, p := range s.c.Procs() {
			if !p.Running() {
				continue
			}
			if n := goroutinesOf(p); n >= 0 {
				if q, ok := quiet[p.Name]; !ok || n < q {
					quiet[p.Name] = n
				}
			}
		}
	}
	s.mu.Lock()
	s.quiet = quiet
	s.mu.Unlock()
}

// sample is one look at one process.
type sample struct {
	at         time.Time
	proc       string
	rss        int64 // anonymous memory (heap, stacks), bytes
	file       int64 // mapped file pages (the binary, meta.db), bytes
	fds        int
	goroutines int
}

// sample looks at every running process, and at the bytes the cluster
// keeps on disk.
func (s *soak) sample() {
	now := time.Now()
	var disk int64
	filepath.WalkDir(s.c.Dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				disk += fi.Size()
			}
		}
		return nil
	})
	s.mu.Lock()
	s.disk = append(s.disk, disk)
	s.mu.Unlock()
	for _, p := range s.c.Procs() {
		if !p.Running() || p.Pid() == 0 {
			continue
		}
		anon, file := rssOf(p.Pid())
		sm := sample{at: now, proc: p.Name, rss: anon, file: file, fds: fdsOf(p.Pid()), goroutines: goroutinesOf(p)}
		s.mu.Lock()
		s.samples = append(s.samples, sm)
		s.mu.Unlock()
	}
}

// rssOf reads a process's resident memory: anonymous (what a leak
// grows) and file-backed (mapped files, which the kernel reclaims).
func rssOf(pid int) (anon, file int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			anon = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return anon, file
}

func (s *soak) procNamed(name string) *harness.Proc {
	for _, p := range s.c.Procs() {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// fdKinds counts a process's open descriptors by what they are (sockets,
// pipes, files by their name without digits), for a failure message.
func fdKinds(p *harness.Proc) string {
	if p == nil || !p.Running() {
		return "(not running)"
	}
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid()))
	n := map[string]int{}
	for _, e := range es {
		to, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.Pid(), e.Name()))
		if err != nil {
			continue
		}
		n[strings.TrimRight(strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return -1
			}
			return r
		}, to), "[]:")]++
	}
	return fmt.Sprint(n)
}

func fdsOf(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

var pprofAddrRE = regexp.MustCompile(`msg="serving profiles" .*addr=([0-9.:]+)`)

// goroutinesOf reads the process's goroutine count from its profile
// server (--pprof 127.0.0.1:0 logs the address it took); -1 if unknown.
func goroutinesOf(p *harness.Proc) int {
	b, _ := os.ReadFile(p.Log)
	m := pprofAddrRE.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return -1
	}
	addr := string(m[len(m)-1][1])
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	// "goroutine profile: total N"
	n, err := strconv.Atoi(strings.TrimSpace(line[strings.LastIndex(line, " ")+1:]))
	if err != nil {
		return -1
	}
	return n
}

// fault makes the next fault of the cycle: kill -9 of a data group
// member, SIGSTOP of the meta group's primary, kill -9 of a meta group
// replica. A killed node comes back 5 s later.
func (s *soak) fault(ctx context.Context) {
	s.mu.Lock()
	k := s.faults
	s.faults++
	s.faultAt = append(s.faultAt, time.Now())
	s.mu.Unlock()
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch k % 3 {
	case 0:
		g2 := s.c.groupNodes("g2")
		s.killRestart(g2[mrand.IntN(len(g2))])
	case 1:
		p, err := s.c.Primary(vctx, "g1")
		if err != nil || p == nil {
			s.t.Logf("fault %d: no g1 primary to pause: %v", k, err)
			return
		}
		p.Pause()
		time.Sleep(3 * time.Second) // the fault: a stalled primary
		p.Resume()
	case 2:
		p, _ := s.c.Primary(vctx, "g1")
		for _, q := range s.c.groupNodes("g1") {
			if q != p {
				s.killRestart(q)
				return
			}
		}
	}
}

func (s *soak) killRestart(p *harness.Proc) {
	p.Kill()
	time.Sleep(5 * time.Second) // the fault: a node down for 5 s
	if err := p.Start(); err != nil {
		s.t.Errorf("restart %s: %v", p.Name, err)
	}
	s.mu.Lock()
	s.restarted[p.Name] = time.Now()
	s.mu.Unlock()
}

// large writes 4 MiB files one after the other, keeping the last 8 and
// deleting older ones (deletes free the space the soak would otherwise
// fill).
func (s *soak) large(ctx context.Context) error {
	cl, err := s.c.Client(60*time.Second, -1)
	if err != nil {
		return err
	}
	for i := 0; ctx.Err() == nil; i++ {
		b := make([]byte, 4<<20)
		rand.Read(b)
		path := fmt.Sprintf("/soak/large/%06d", i)
		start := time.Now()
		if _, err := cl.Put(ctx, path, bytes.NewReader(b), int64(len(b))); err != nil {
			continue // not acknowledged: nothing promised
		}
		s.mu.Lock()
		s.largeN++
		s.largeAcks = append(s.largeAcks, harness.Ack{Path: path, Sum: sha256.Sum256(b), Start: start, End: time.Now()})
		var old *harness.Ack
		if len(s.largeAcks) > 8 {
			old = &s.largeAcks[0]
			s.largeAcks = s.largeAcks[1:]
		}
		s.mu.Unlock()
		if old != nil {
			cl.Delete(ctx, old.Path, false)
		}
	}
	return nil
}

func (s *soak) kept() []harness.Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.largeAcks)
}

// metadata makes a directory, a file in it, renames it, lists it and
// removes it, over and over. Errors during faults are expected; a round
// that fails starts over with the next.
func (s *soak) metadata(ctx context.Context) error {
	cl, err := s.c.Client(30*time.Second, -1)
	if err != nil {
		return err
	}
	for i := 0; ctx.Err() == nil; i++ {
		d := fmt.Sprintf("/soak/meta/d%06d", i)
		if cl.Mkdir(ctx, d, true) != nil {
			continue
		}
		if _, err := cl.Put(ctx, d+"/f", strings.NewReader("x"), 1); err != nil {
			continue
		}
		if cl.Rename(ctx, d+"/f", d+"/g") != nil {
			continue
		}
		if es, err := cl.List(ctx, d); err == nil && (len(es) != 1 || es[0].Name != "g") {
			return fmt.Errorf("listing %s after a rename: %+v, want only g", d, es)
		}
		if cl.Delete(ctx, d, true) == nil {
			s.mu.Lock()
			s.metaN++
			s.mu.Unlock()
		}
	}
	return nil
}

// mountIfPossible mounts the cluster when FUSE works here, and says so
// loudly when it does not.
func (s *soak) mountIfPossible() (string, bool) {
	if os.Geteuid() != 0 {
		s.t.Log("SKIPPED the mount workload: FUSE mounts need root")
		return "", false
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		s.t.Log("SKIPPED the mount workload: no /dev/fuse")
		return "", false
	}
	dir := s.c.mount()
	if err := os.MkdirAll(filepath.Join(dir, "soak", "mnt"), 0o755); err != nil {
		s.t.Logf("SKIPPED the mount workload: mkdir in the mount: %v", err)
		return "", false
	}
	return dir, true
}

// mountLoop writes 64 KiB files through the mount and reads each back,
// keeping the last 16.
func (s *soak) mountLoop(ctx context.Context, dir string) error {
	for i := 0; ctx.Err() == nil; i++ {
		b := make([]byte, 64<<10)
		rand.Read(b)
		p := filepath.Join(dir, "soak", "mnt", fmt.Sprintf("%06d", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			continue // a write that failed during a fault: nothing promised
		}
		got, err := os.ReadFile(p)
		if err == nil && !bytes.Equal(got, b) {
			return fmt.Errorf("%s read back %d bytes differing from the %d written", p, len(got), len(b))
		}
		s.mu.Lock()
		s.mountN++
		s.mu.Unlock()
		if i >= 16 {
			os.Remove(filepath.Join(dir, "soak", "mnt", fmt.Sprintf("%06d", i-16)))
		}
	}
	return nil
}

// report prints, for every process, its figures at the end of the
// warm-up and at the end, and fails the test if a process that ran
// throughout grew: anonymous RSS by more than half plus 64 MiB (mapped
// file pages are shown, not judged), descriptors by more
// than half plus 32, goroutines by more than half plus 64 (those left
// once the load stopped; see settle).
func (s *soak) report(warm time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byProc := map[string][]sample{}
	for _, sm := range s.samples {
		byProc[sm.proc] = append(byProc[sm.proc], sm)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %9s %9s %9s %9s  %5s %5s  %6s %6s %6s\n", "PROCESS", "RSS WARM", "RSS END", "RSS MAX", "MAPPED E", "FDS W", "FDS E", "GOR W", "GOR E", "GOR Q")
	for _, name := range slices.Sorted(maps.Keys(byProc)) {
		ss := byProc[name]
		from := warm
		if r, ok := s.restarted[name]; ok && r.After(warm) {
			from = r.Add(time.Minute) // its own warm-up after its last restart
		}
		var w *sample
		for i := range ss {
			if !ss[i].at.Before(from) {
				w = &ss[i]
				break
			}
		}
		end := ss[len(ss)-1]
		var maxRSS int64
		for _, sm := range ss {
			if !sm.at.Before(from) {
				maxRSS = max(maxRSS, sm.rss)
			}
		}
		if w == nil || end.at.Sub(w.at) < time.Minute {
			fmt.Fprintf(&b, "%-10s (restarted too late to judge)\n", name)
			continue
		}
		quiet, settled := s.quiet[name]
		if !settled {
			quiet = -1
		}
		fmt.Fprintf(&b, "%-10s %8.0fM %8.0fM %8.0fM %8.0fM  %5d %5d  %6d %6d %6d\n", name,
			mib(w.rss), mib(end.rss), mib(maxRSS), mib(end.file), w.fds, end.fds, w.goroutines, end.goroutines, quiet)
		grew := func(what string, a, z, slack float64) {
			if z > a*1.5+slack {
				s.t.Errorf("%s: %s grew from %.0f to %.0f after the warm-up", name, what, a, z)
			}
		}
		grew("RSS (MiB)", mib(w.rss), mib(end.rss), 64)
		if end.fds > w.fds*3/2+32 {
			s.t.Errorf("%s: open descriptors grew from %d to %d after the warm-up; open now: %s", name, w.fds, end.fds, fdKinds(s.procNamed(name)))
		}
		if w.goroutines >= 0 && quiet >= 0 {
			grew("goroutines", float64(w.goroutines), float64(quiet), 64)
		}
	}
	if len(s.disk) > 0 {
		fmt.Fprintf(&b, "data on disk: %.0f MiB at most, %.0f MiB at the end\n", mib(slices.Max(s.disk)), mib(s.disk[len(s.disk)-1]))
	}
	s.t.Logf("per process, from the end of the warm-up (or a minute after its last restart) to the end:\n%s", b.String())
}

func mib(b int64) float64 { return math.Round(float64(b) / (1 << 20)) }

var promotionRE = regexp.MustCompile(`time=(\S+) level=INFO msg="promoting to primary" node=(\S+)`)

// falseFailovers lists the promotions (node and time) that no fault
// explains: more than 20 s after the last fault before them, and not in
// the cluster's first minute (when each group's first primary promotes).
func (s *soak) falseFailovers(began time.Time) []string {
	s.mu.Lock()
	faults := slices.Clone(s.faultAt)
	s.mu.Unlock()
	var out []string
	for _, p := range s.c.Servers() {
		b, err := os.ReadFile(p.Log)
		if err != nil {
			continue
		}
		for _, m := range promotionRE.FindAllSubmatch(b, -1) {
			at, err := time.Parse(time.RFC3339Nano, string(m[1]))
			if err != nil || at.Before(began.Add(time.Minute)) && (len(faults) == 0 || at.Before(faults[0])) {
				continue
			}
			i, _ := slices.BinarySearchFunc(faults, at, func(a, b time.Time) int { return a.Compare(b) })
			if i > 0 && at.Sub(faults[i-1]) <= 20*time.Second {
				continue
			}
			out = append(out, fmt.Sprintf("%s at %s", m[2], at.Format(time.TimeOnly)))
		}
	}
	return out
}
