package mount

// The read cache of an open file: chunk-sized windows of its stored
// content, fetched on demand and ahead of a sequential reader, and kept
// in step with the changes the mount itself stores.

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// window is one chunk-sized, chunk-aligned piece of stored content.
type window struct {
	ready chan struct{} // closed when data and err are set
	data  []byte        // shorter than a window at the end of the file
	err   error
}

func (f *openFile) dropWindows() {
	clear(f.windows)
	f.order = f.order[:0]
}

// windowAt returns window k, fetching it if it is not cached.
func (f *openFile) windowAt(ctx context.Context, k int64) (*window, error) {
	w := f.fetch(k)
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if w.err != nil {
		if f.windows[k] == w {
			delete(f.windows, k)
		}
		return nil, w.err
	}
	return w, nil
}

// fetch starts fetching window k unless it is cached, and returns it. The
// least recently used windows beyond the cache's size are dropped.
func (f *openFile) fetch(k int64) *window {
	for i, o := range f.order {
		if o == k {
			// A window whose fetch failed left windows but not order:
			// taken out here, it is listed once when fetched again.
			f.order = append(f.order[:i:i], f.order[i+1:]...)
			if w := f.windows[k]; w != nil {
				f.order = append(f.order, k)
				return w
			}
			break
		}
	}
	w := &window{ready: make(chan struct{})}
	f.windows[k] = w
	f.order = append(f.order, k)
	for len(f.order) > f.m.cfg.ReadCache {
		delete(f.windows, f.order[0])
		f.order = f.order[1:]
	}
	W := f.m.window
	expect := f.size - k*W
	go func() {
		defer close(w.ready)
		ctx, cancel := context.WithTimeout(f.actor(context.Background()), 2*time.Minute)
		defer cancel()
		body, err := f.m.c.ReadIno(ctx, f.ino, k*W, W)
		if err != nil {
			w.err = err
			return
		}
		defer body.Close()
		w.data, w.err = readWindow(body, W, expect)
		if w.err != nil {
			w.err = fmt.Errorf("read inode %d at %d: %w", f.ino, k*W, w.err)
		}
	}()
	return w
}

// readWindow reads a window's content, at most W bytes, into one buffer:
// of about the size expected (the file's size as last seen, less the
// window's start), grown to W at once if more comes. io.ReadAll would
// grow its buffer from 512 bytes, zeroing and copying a 4 MiB window
// about three times over (a third of the mount's CPU under a sequential
// read). Only io.EOF ends the window early: a body cut short (the router
// ends a read it cannot finish that way) is an error, not the end of the
// file.
func readWindow(body io.Reader, W, expect int64) ([]byte, error) {
	buf := make([]byte, 0, min(max(expect, 0)+1, W))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) == W {
				break
			}
			grown := make([]byte, len(buf), W)
			copy(grown, buf)
			buf = grown
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	// The client limits the body to W bytes; this guards against one
	// that does not.
	if n, _ := body.Read(make([]byte, 1)); n > 0 {
		return nil, fmt.Errorf("the router sent more than the %d bytes asked for", W)
	}
	return buf, nil
}

// patchWindows writes runs, just stored, into the cached windows (mu
// held).
func (f *openFile) patchWindows(runs []extent) {
	W := f.m.window
	for k, w := range f.settledWindows() {
		lo, hi := k*W, (k+1)*W
		for _, r := range runs {
			from, to := max(r.off, lo), min(r.end(), hi)
			if from >= to {
				continue
			}
			if need := to - lo; int64(len(w.data)) < need {
				// Past the window's end of file: a hole up to the write.
				w.data = append(w.data, make([]byte, need-int64(len(w.data)))...)
			}
			copy(w.data[from-lo:to-lo], r.data[from-r.off:to-r.off])
		}
	}
}

// cutWindows cuts the cached windows at size, the file's new size after
// a truncate this mount made (mu held); a truncate up leaves them, since
// what lies past a window's data reads as zeros.
func (f *openFile) cutWindows(size int64) {
	W := f.m.window
	for k, w := range f.settledWindows() {
		if lo := k * W; lo+int64(len(w.data)) > size {
			w.data = w.data[:max(size-lo, 0)]
		}
	}
}

// settledWindows drops the cached windows still being fetched (they may
// hold the content from before a change the mount just made, or after
// it) and those whose fetch failed, and returns the rest, by number
// (mu held).
func (f *openFile) settledWindows() map[int64]*window {
	for k, w := range f.windows {
		select {
		case <-w.ready:
			if w.err == nil {
				continue
			}
		default:
		}
		f.dropWindow(k)
	}
	return f.windows
}

// dropWindow drops window k from the cache (mu held).
func (f *openFile) dropWindow(k int64) {
	delete(f.windows, k)
	if i := slices.Index(f.order, k); i >= 0 {
		f.order = slices.Delete(f.order, i, i+1)
	}
}
