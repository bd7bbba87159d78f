package client

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progressEvery is how often the progress line is redrawn.
const progressEvery = 250 * time.Millisecond

// progress draws one line on a terminal, redrawn in place while a
// transfer runs: bytes and files done of the total, the rate and the time
// left. A nil *progress draws nothing: when stderr is not a terminal, or
// with --quiet.
type progress struct {
	w     io.Writer
	fd    int
	verb  string
	start time.Time

	bytes, totalBytes atomic.Int64
	files, totalFiles atomic.Int64
	// counting: the total is still growing (a tree still being walked).
	counting atomic.Bool

	stop chan struct{}
	done sync.WaitGroup
}

// newProgress starts the progress line of a transfer called verb (put,
// get, sync) when s's stderr is a terminal and --quiet was not given.
func (s *session) newProgress(verb string) *progress {
	f, ok := s.stderr.(*os.File)
	if s.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := &progress{w: f, fd: int(f.Fd()), verb: verb, start: time.Now(), stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			p.draw(false)
			select {
			case <-t.C:
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

// add counts files and bytes more to move.
func (p *progress) add(files, bytes int64) {
	if p == nil {
		return
	}
	p.totalFiles.Add(files)
	p.totalBytes.Add(max(bytes, 0))
}

// fileDone counts one file moved (its bytes are counted as they pass).
func (p *progress) fileDone() {
	if p != nil {
		p.files.Add(1)
	}
}

// moved counts n bytes moved without passing through a reader (a copy
// within the cluster, which shares the content).
func (p *progress) moved(n int64) {
	if p != nil {
		p.bytes.Add(n)
	}
}

// setCounting says whether the totals are still growing.
func (p *progress) setCounting(on bool) {
	if p != nil {
		p.counting.Store(on)
	}
}

// reader counts the bytes read through r. A reader that can seek still
// can, so that a request the client retries sends its body again, and
// the count follows it back.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	c := countingReader{r: r, n: &p.bytes}
	if s, ok := r.(io.Seeker); ok {
		return &countingSeeker{c, s}
	}
	return &c
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

type countingSeeker struct {
	countingReader
	s io.Seeker
}

func (c *countingSeeker) Seek(off int64, whence int) (int64, error) {
	before, err := c.s.Seek(0, io.SeekCurrent)
	if err != nil {
		return before, err
	}
	pos, err := c.s.Seek(off, whence)
	if err == nil {
		c.n.Add(pos - before)
	}
	return pos, err
}

// finish stops redrawing and leaves the last line as the summary.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
	p.draw(true)
}

// draw writes the line over the previous one.
func (p *progress) draw(final bool) {
	line := p.line(time.Since(p.start), final)
	width := 80
	if w, _, err := term.GetSize(p.fd); err == nil && w > 0 {
		width = w
	}
	if len(line) >= width {
		line = line[:width-1]
	}
	end := ""
	if final {
		end = "\n"
	}
	// \r returns to the line's start, \x1b[K clears what a longer line
	// left behind.
	fmt.Fprintf(p.w, "\r%s\x1b[K%s", line, end)
}

// line is the text of the progress line after elapsed.
func (p *progress) line(elapsed time.Duration, final bool) string {
	bytes, total := p.bytes.Load(), p.totalBytes.Load()
	files, totalFiles := p.files.Load(), p.totalFiles.Load()
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(bytes) / s
	}
	more := ""
	if p.counting.Load() {
		more = "+" // the total still grows
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", p.verb, humanBytes(bytes))
	if total > 0 {
		fmt.Fprintf(&b, " / %s%s", humanBytes(total), more)
		if more == "" {
			fmt.Fprintf(&b, " (%d%%)", min(100, bytes*100/total))
		}
	}
	if totalFiles > 1 || more != "" {
		fmt.Fprintf(&b, ", %d/%d%s files", files, totalFiles, more)
	}
	fmt.Fprintf(&b, ", %s/s", humanBytes(int64(rate)))
	switch {
	case final:
		fmt.Fprintf(&b, " in %s", elapsed.Round(100*time.Millisecond))
	case rate > 0 && total > bytes && more == "":
		left := time.Duration(float64(total-bytes) / rate * float64(time.Second))
		fmt.Fprintf(&b, ", %s left", left.Round(time.Second))
	}
	return b.String()
}
