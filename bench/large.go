package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"time"
)

// largeRep is what one rep measured of one size, in MB/s.
type largeRep struct{ up, down float64 }

// runLarge uploads and downloads one file of each size, Reps times. With
// a local cluster, the disk's fsynced write rate is measured after each
// rep's transfers, in the same run, as the upload's ceiling.
func (e *env) runLarge(ctx context.Context) ([]LargeRow, error) {
	var rows []LargeRow
	for si, size := range e.cfg.LargeSizes {
		var up, down, disk, ofCeiling []float64
		for rep := range e.cfg.Reps {
			r, err := e.largeRep(ctx, si, size, rep)
			if err != nil {
				return nil, err
			}
			up, down = append(up, r.up), append(down, r.down)
			if e.local == nil {
				continue
			}
			e.prog.start(fmt.Sprintf("large: the disk's fsynced write rate (rep %d/%d)", rep+1, e.cfg.Reps))
			d, err := diskRate(e.local.Dir)
			if err != nil {
				return nil, err
			}
			disk, ofCeiling = append(disk, d), append(ofCeiling, r.up/(d/localNodes))
		}
		row := LargeRow{Size: size, Label: sizeLabel(size), UpMBps: figureOf(up), DownMBps: figureOf(down)}
		if e.local != nil {
			d, c := figureOf(disk), figureOf(ofCeiling)
			row.DiskMBps, row.UpOfCeiling = &d, &c
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// largeRep uploads a file of size bytes generated as it is sent (never
// held in memory), then downloads it, comparing the SHA-256 of what came
// back with that of what was sent. Both directions hash in the timed path,
// as a client that checks its data would.
func (e *env) largeRep(ctx context.Context, si int, size int64, rep int) (largeRep, error) {
	path := fmt.Sprintf("%s/large/r%d/s%d-%s", e.root, rep, si, sizeLabel(size))
	label := fmt.Sprintf("%s (%s)", sizeLabel(size), e.repLabel(rep))
	// Make the parent first: the upload should time the file only.
	if err := e.fs.MkdirAll(ctx, fmt.Sprintf("%s/large/r%d", e.root, rep)); err != nil {
		return largeRep{}, fmt.Errorf("mkdir for %s: %w", path, err)
	}

	e.prog.start("large: uploading " + label)
	sent := sha256.New()
	body := &countingReader{r: io.TeeReader(newStream(seedOf(2, uint64(rep), uint64(size)), size), sent),
		tick: func(n int64) { e.prog.update(n, size) }}
	start := time.Now()
	if err := e.fs.Put(ctx, path, body, size); err != nil {
		return largeRep{}, fmt.Errorf("upload %s: %w", path, err)
	}
	r := largeRep{up: megabytesPerSecond(size, time.Since(start))}

	e.prog.start("large: downloading " + label)
	got := sha256.New()
	start = time.Now()
	rc, err := e.fs.Get(ctx, path)
	if err != nil {
		return largeRep{}, fmt.Errorf("download %s: %w", path, err)
	}
	n, err := io.CopyBuffer(got, &countingReader{r: rc, tick: func(n int64) { e.prog.update(n, size) }}, make([]byte, 1<<20))
	rc.Close()
	if err != nil {
		return largeRep{}, fmt.Errorf("download %s: %w", path, err)
	}
	r.down = megabytesPerSecond(size, time.Since(start))
	if n != size || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		return largeRep{}, fmt.Errorf("%s: %w (%d bytes back of %d, SHA-256 %x, sent %x)", path, ErrMismatch, n, size, got.Sum(nil), sent.Sum(nil))
	}
	return r, nil
}

// countingReader reports the bytes read so far, for the progress line.
type countingReader struct {
	r    io.Reader
	n    int64
	tick func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.tick(c.n)
	return n, err
}
