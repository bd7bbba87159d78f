package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	now := time.Unix(0, 0)
	p := newProgress(&b, func() time.Time { return now })
	p.start("ops: 1 client")
	p.update(5, 10)
	now = now.Add(65 * time.Second)
	p.start("small: writing")
	p.clear()
	if got, want := b.String(), "shoal bench: [0s] ops: 1 client\nshoal bench: [1m5s] small: writing\n"; got != want {
		t.Errorf("progress off a terminal wrote %q, want %q", got, want)
	}
}

func TestProgressLive(t *testing.T) {
	var b bytes.Buffer
	now := time.Unix(0, 0)
	p := &progress{w: &b, live: true, now: func() time.Time { return now }}
	p.start("large: uploading 1 GiB")
	now = now.Add(time.Second)
	p.update(1, 4)
	p.update(2, 4) // within 100ms of the last draw: skipped
	now = now.Add(time.Second)
	p.start("ok")
	p.clear()
	want := "\rshoal bench: large: uploading 1 GiB" +
		"\rshoal bench: large: uploading 1 GiB  25%" +
		"\rshoal bench: ok" + strings.Repeat(" ", 40-15) + // blanks out the longer line
		"\r" + strings.Repeat(" ", 15) + "\r"
	if got := b.String(); got != want {
		t.Errorf("live progress wrote\n%q\nwant\n%q", got, want)
	}
}
