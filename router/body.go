package router

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// guardBody bounds how long r's body may take, with the connection's read
// deadline, by two rules:
//
//   - Stall: no read of the body may wait longer than BodyTimeout for a
//     byte. The deadline is BodyTimeout from now, moved BodyTimeout ahead
//     of every read, and once more by the returned function, to be called
//     when the handler returns. That last one and the first bound
//     net/http's own reads: before it answers a request whose body the
//     handler left unread, it reads up to 256 KiB of the rest, with no
//     deadline of its own.
//   - Rate: the time the handler spends waiting in reads of the body is
//     cut in windows of BodyRateWindow, and each window must bring
//     BodyMinRate × BodyRateWindow bytes (once it has, the body may pause
//     until the next window ends, within the stall bound). A client
//     trickling a byte now and then never stalls, but it would hold its
//     request and the chunk buffer it fills for as long as it likes; the
//     floor bounds that. Only waiting counts: while the handler stores a
//     chunk (through a failover, or waiting for room) the client is not
//     the one holding things up. The first window is the grace: a body
//     that arrives within one window is never too slow.
//
// A body read that breaks either fails with ErrBodyTimeout. A body cut off
// for its rate also gets a read deadline in the past, so net/http gives up
// on the rest at once and closes the connection.
//
// Where the ResponseWriter cannot set deadlines (httptest), stalls are not
// bounded, and the rate only when a read returns.
func (s *Server) guardBody(w http.ResponseWriter, r *http.Request) (done func()) {
	rc := http.NewResponseController(w)
	g := &bodyGuard{body: r.Body, rc: rc, stall: s.cfg.BodyTimeout, rate: s.cfg.BodyMinRate, window: s.cfg.BodyRateWindow}
	rc.SetReadDeadline(time.Now().Add(g.stall))
	r.Body = g
	return func() {
		// net/http looks at the body it made once the handler returns:
		// for a request that sent "Expect: 100-continue" and whose body
		// was not read, it answers without reading it (the client sends
		// it only on a "100 Continue"). It must find its own body there,
		// or it reads the rest first and waits for a body that does not
		// come, the answer held back, until the client gives up waiting.
		r.Body = g.body
		switch {
		case g.slow:
			rc.SetReadDeadline(time.Now())
		case !g.ended:
			// After the end of the body net/http reads the connection
			// itself (to see the client go) and owns its deadline.
			rc.SetReadDeadline(time.Now().Add(g.stall))
		}
	}
}

// bodyGuard is a request body that moves the read deadline before each
// read and keeps the rate window's account.
type bodyGuard struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	stall time.Duration
	// rate is the floor in bytes per second (0: none), over windows of
	// window of waiting; the current window has waited spent and brought
	// got bytes.
	rate   int64
	window time.Duration
	spent  time.Duration
	got    int64

	ended bool // a read returned an error (io.EOF included)
	slow  bool // a window ended short of its quota: the body is cut off
}

// quota is the bytes a window must bring.
func (g *bodyGuard) quota() int64 {
	return int64(float64(g.rate) * g.window.Seconds())
}

// deadline is when the read starting at now fails, and whether the rate
// rather than the stall bound sets it: the end of this window while its
// quota is short, else of the next, which has yet to bring its own.
func (g *bodyGuard) deadline(now time.Time) (time.Time, bool) {
	d := now.Add(g.stall)
	if g.rate <= 0 {
		return d, false
	}
	left := g.window - g.spent
	if g.got >= g.quota() {
		left += g.window
	}
	if end := now.Add(left); end.Before(d) {
		return end, true
	}
	return d, false
}

// account adds a read that waited for waited and brought n bytes, at its
// end: the windows it waited through close, each checked for its quota,
// and n counts in the one it ended in.
func (g *bodyGuard) account(waited time.Duration, n int) {
	if g.rate <= 0 {
		return
	}
	for g.spent+waited >= g.window {
		waited -= g.window - g.spent
		if g.got < g.quota() {
			g.slow = true
		}
		g.spent, g.got = 0, 0
	}
	g.spent += waited
	g.got += int64(n)
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	if g.slow {
		return 0, g.tooSlow()
	}
	start := time.Now()
	d, byRate := g.deadline(start)
	g.rc.SetReadDeadline(d)
	n, err := g.body.Read(p)
	g.account(time.Since(start), n)
	if err != nil {
		g.ended = true
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if byRate {
			g.slow = true
			return n, g.tooSlow()
		}
		err = fmt.Errorf("%w: no byte arrived for %v (the router's --body-timeout): send the body without long pauses: %w",
			ErrBodyTimeout, g.stall, err)
	}
	return n, err
}

// tooSlow is the error of a body cut off for its rate. It also ends the
// connection's reads at once: net/http would otherwise read what is left
// of a short body, at the client's pace, before it answers.
func (g *bodyGuard) tooSlow() error {
	g.rc.SetReadDeadline(time.Now())
	return fmt.Errorf("%w: the body arrived slower than %d bytes/s over %v of waiting for it (the router's --body-min-rate and --body-rate-window): send it from a faster source, or write it to a local file first",
		ErrBodyTimeout, g.rate, g.window)
}

func (g *bodyGuard) Close() error { return g.body.Close() }
