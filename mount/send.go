package mount

// Sending an open file's batch of writes, truncates and attribute
// changes to the cluster, and settling what went through.

import (
	"context"

	"shoal/client"
)

// sending is a batch of writes on its way to the cluster. Until it is
// done its bytes are read from runs, under the newer writes in dirty.
type sending struct {
	bytes int64 // the runs' lengths, summed
	runs  []extent
	// cut and size are the truncates the batch carries (see openFile.cut
	// and trunc), -1 when none: the stored content is cut to cut bytes
	// before the runs, and sized to size after them.
	cut, size int64
	// attrs is the attribute changes that waited for the runs, when
	// they go with them (flushLocked), made by attrsBy; truncBy made the
	// truncates.
	attrs            client.SetAttr
	attrsBy, truncBy *client.Identity
	// emptyAt is the content generation at which the stored file was
	// empty when the batch was taken, if it was: the router need not
	// read it before the first request (client.Patch.EmptyAt).
	emptyAt *uint64
	done    chan struct{} // closed when err is set and the batch is settled
	err     error
}

// take takes the unsent writes and truncates as a batch (mu held).
func (f *openFile) take() *sending {
	b := &sending{bytes: f.dirty.bytes, cut: f.cut, size: -1, done: make(chan struct{})}
	if f.trunc >= 0 {
		b.size = max(f.trunc, f.dirty.end())
	}
	b.runs = f.dirty.take()
	b.truncBy = f.truncBy
	if f.size == 0 {
		g := f.gen
		b.emptyAt = &g
	}
	f.cut, f.trunc, f.truncBy = -1, -1, nil
	return b
}

// sendResult is how much of a batch went through: its first sent bytes,
// in how many requests, and whether its cut and its size did.
type sendResult struct {
	sent             int64
	requests         int
	cut, size, attrs bool
	epoch            uint64 // the names epoch before the first request
}

// send sends batch b to the cluster in order, and returns the
// attributes after the last request that went through and how much did.
// A batch of one run and no truncate (what a sequential writer makes)
// goes as WriteAt, whose whole chunks at chunk boundaries the router
// stores as they arrive, unless it is at most a chunk into a file stored
// empty (a file just created: PatchIno tells the router so, and it need
// not read the file first); so does every batch with a router without
// PatchIno. Any other goes in as few PatchIno as the router's limits
// allow, the truncates in the first and the last.
func (f *openFile) send(ctx context.Context, b *sending) (a client.Attr, r sendResult, err error) {
	r.epoch = f.m.namesEpoch.Load()
	small := b.emptyAt != nil && b.bytes <= f.m.window
	if f.m.maxRanges == 0 || len(b.runs) == 1 && b.cut < 0 && b.size < 0 && b.attrs == (client.SetAttr{}) && !small {
		for _, run := range b.runs {
			for pos := 0; pos < len(run.data); {
				n := min(len(run.data)-pos, f.m.maxWrite)
				got, err := f.m.c.WriteAt(ctx, f.ino, run.off+int64(pos), run.data[pos:pos+n])
				if err != nil {
					return a, r, err
				}
				a = got
				r.sent += int64(n)
				r.requests++
				pos += n
			}
		}
		return a, r, nil
	}
	var p client.Patch
	var n int // bytes in p
	if b.cut >= 0 {
		p.Truncate = &b.cut
	}
	patch := func(last bool) error {
		if last && b.size >= 0 {
			p.Size = &b.size
		}
		if last {
			p.Attrs = b.attrs
		}
		if len(p.Writes) == 0 && p.Truncate == nil && p.Size == nil && p.Attrs == (client.SetAttr{}) {
			return nil
		}
		if r.requests == 0 {
			p.EmptyAt = b.emptyAt
		}
		got, err := f.m.c.PatchIno(ctx, f.ino, p)
		if err != nil {
			return err
		}
		a = got
		r.sent += int64(n)
		r.requests++
		r.cut = r.cut || p.Truncate != nil
		r.size = r.size || p.Size != nil
		r.attrs = r.attrs || p.Attrs != (client.SetAttr{})
		p, n = client.Patch{}, 0
		return nil
	}
	for _, run := range b.runs {
		for pos := 0; pos < len(run.data); {
			k := min(len(run.data)-pos, f.m.maxWrite)
			if n+k > f.m.maxWrite || len(p.Writes) == f.m.maxRanges {
				if err := patch(false); err != nil {
					return a, r, err
				}
			}
			p.Writes = append(p.Writes, client.Extent{Off: run.off + int64(pos), Data: run.data[pos : pos+k]})
			n += k
			pos += k
		}
	}
	return a, r, patch(true)
}

// sent settles batch b (mu held): the stored content changed, and what
// was not sent goes back under newer writes. When the content's
// generation moved by exactly the batch's requests, nobody else changed
// it meanwhile: the cached windows are the content before the batch,
// and take its changes. Otherwise they go.
func (f *openFile) sent(a client.Attr, r sendResult, b *sending, err error) {
	done, rest := splitSent(b.runs, r.sent)
	if r.requests > 0 {
		if a.Gen == f.gen+uint64(r.requests) {
			if r.cut {
				f.cutWindows(b.cut)
			}
			f.patchWindows(done)
			if r.size {
				f.cutWindows(b.size)
			}
		} else {
			f.dropWindows()
		}
		if a.Gen >= f.gen {
			// Not older than what an open saw meanwhile.
			f.size, f.gen = a.Size, a.Gen
			f.noteAttr(a, r.epoch)
		}
		f.m.contentChanged()
	}
	if err == nil {
		return
	}
	if f.cut >= 0 {
		// Truncates came after the batch (sent in the background) and
		// wait: what they cut of it stays cut.
		x := extents{}
		for _, run := range rest {
			x.write(run.off, run.data)
		}
		x.truncate(f.cut)
		rest = x.take()
	}
	f.dirty.restore(rest)
	// What a batch with truncates carries goes out under mu (flushLocked),
	// so none came since: they wait for the next flush again.
	if !r.cut && b.cut >= 0 {
		f.cut, f.truncBy = b.cut, b.truncBy
	}
	if !r.size && b.size >= 0 {
		f.trunc, f.truncBy = b.size, b.truncBy
	}
	if !r.attrs && b.attrs != (client.SetAttr{}) {
		f.pend, f.pendBy = b.attrs, b.attrsBy
	}
}

// splitSent splits runs after their first sent bytes: what was stored
// and what was not.
func splitSent(runs []extent, sent int64) (done, rest []extent) {
	for _, r := range runs {
		n := int64(len(r.data))
		switch {
		case sent >= n:
			done = append(done, r)
			sent -= n
		case sent > 0:
			done = append(done, extent{off: r.off, data: r.data[:sent]})
			rest = append(rest, extent{off: r.off + sent, data: r.data[sent:]})
			sent = 0
		default:
			rest = append(rest, r)
		}
	}
	return done, rest
}
