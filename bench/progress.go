package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress tells the person waiting what is running. On a terminal it is
// one line redrawn in place with the step's percentage; elsewhere (a log
// file, a test) a plain line at the start of each step, with the time
// since the start, so that a log shows how long each step took.
type progress struct {
	w     io.Writer
	live  bool
	now   func() time.Time
	begin time.Time

	mu    sync.Mutex // guards the fields below; workers report concurrently
	label string
	drawn time.Time // when the live line was last drawn
	width int       // runes on the live line, to blank it out
}

func newProgress(w io.Writer, now func() time.Time) *progress {
	return &progress{w: w, live: isTerminal(w), now: now, begin: now()}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// start begins a step: "ops: 5 clients (rep 2/3)".
func (p *progress) start(label string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label = label
	if !p.live {
		fmt.Fprintf(p.w, "shoal bench: [%s] %s\n", p.now().Sub(p.begin).Round(time.Second), label)
		return
	}
	p.draw("")
}

// update shows that done of total units of the current step are done. It
// redraws at most ten times a second, so workers may call it for every
// request.
func (p *progress) update(done, total int64) {
	if !p.live || total <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.drawn) < 100*time.Millisecond && done < total {
		return
	}
	p.drawn = now
	p.draw(fmt.Sprintf(" %3d%%", done*100/total))
}

// draw replaces the live line; the caller holds mu.
func (p *progress) draw(suffix string) {
	line := "shoal bench: " + p.label + suffix
	n := len([]rune(line))
	pad := ""
	if n < p.width {
		pad = strings.Repeat(" ", p.width-n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.width = n
}

// clear removes the live line, so the report starts on a clean line.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live && p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}
