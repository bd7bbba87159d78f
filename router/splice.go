package router

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"shoal/meta"
)

// In-place changes (a write at an offset, a truncate) rewrite only the
// chunks they cut through: every chunk wholly before or after the changed
// range is kept as it is, by reference. So writing 4 KiB in the middle of
// a 10 GiB file reads and writes one chunk, and a mount that writes whole
// chunks at chunk boundaries reads none. Zeros (a file extended by
// truncate, or by a write past its end) are holes: one reference however
// long, stored nowhere, read as zeros.

// piece is what a write puts at its offset: bytes, or chunks stored
// already (a write of whole chunks, stored as it arrived).
type piece struct {
	data []byte
	refs []meta.ChunkRef
	n    int64 // its length
}

// spliceIn returns the content of old with p written at off, then cut or
// extended with zeros to size bytes. Callers pass size >= off+p.n for a
// write, and off == size with an empty piece for a truncate.
func (s *Server) spliceIn(ctx context.Context, old meta.Inode, off int64, p piece, size int64) (*meta.Inode, error) {
	return s.splice(ctx, old, []edit{{off: off, p: p}, {off: size, cut: true}})
}

// edit is one change of a file's content: p written at off, or, with
// cut, the content cut or extended with zeros to off bytes.
type edit struct {
	off int64
	p   piece
	cut bool
}

// splice returns the content of old with edits made in their order, as
// one new version: the chunks the edits cut through are read and stored
// once for all of them, where editing one after the other stored a
// version per edit (a mount's flush of several scattered writes into one
// chunk stored that chunk once per write).
func (s *Server) splice(ctx context.Context, old meta.Inode, edits []edit) (*meta.Inode, error) {
	if err := s.openInline(&old); err != nil {
		return nil, err
	}
	src := &oldContent{s: s, in: old}
	if err := src.check(); err != nil {
		return nil, err
	}
	var l layout
	if old.Size > 0 {
		l = layout{{n: old.Size, old: true}}
	}
	for _, e := range edits {
		var err error
		if e.cut {
			err = l.cut(e.off)
		} else {
			err = l.put(e.off, e.p)
		}
		if err != nil {
			return nil, err
		}
	}
	size := l.size()
	if size <= int64(s.cfg.InlineMax) && !l.stored() {
		buf := make([]byte, size)
		if err := src.readInto(ctx, buf[:min(old.Size, size)], 0); err != nil {
			return nil, err
		}
		at := int64(0)
		for _, sp := range l {
			switch {
			case sp.p != nil:
				copy(buf[at:at+sp.n], sp.p.data)
			case !sp.old:
				clear(buf[at : at+sp.n])
			}
			at += sp.n
		}
		return s.newInline(buf), nil
	}
	b := &builder{s: s, ctx: ctx, refused: &refusals{full: map[string]int64{}}, first: map[meta.Hash]int{}, groups: map[int]string{}, hot: src.fetched}
	defer b.abort()
	at := int64(0)
	for _, sp := range l {
		var err error
		switch {
		case sp.old:
			err = src.copyTo(b, at, at+sp.n)
		case sp.p == nil:
			err = b.zeros(sp.n)
		case sp.p.refs != nil:
			for _, ref := range sp.p.refs {
				if err = b.keep(ref); err != nil {
					break
				}
			}
		default:
			err = b.write(sp.p.data)
		}
		if err != nil {
			return nil, err
		}
		at += sp.n
	}
	return b.finish()
}

// layout is a file's content being edited, as the spans it is made of in
// order: bytes of the old content at the same offsets (an edit never
// moves content), bytes written, or zeros. No span is empty.
type layout []span

type span struct {
	n   int64
	old bool   // the old content's bytes at this span's offset
	p   *piece // written (data, or stored chunks); nil and !old: zeros
}

func (l layout) size() (n int64) {
	for _, sp := range l {
		n += sp.n
	}
	return n
}

// stored reports whether stored chunks are written into the content.
func (l layout) stored() bool {
	for _, sp := range l {
		if sp.p != nil && sp.p.refs != nil {
			return true
		}
	}
	return false
}

// split makes at (at most the size) a boundary between spans and returns
// the index of the span that begins there.
func (l *layout) split(at int64) (int, error) {
	pos := int64(0)
	for i, sp := range *l {
		if at == pos {
			return i, nil
		}
		if at < pos+sp.n {
			k := at - pos
			head, tail := sp, sp
			head.n, tail.n = k, sp.n-k
			if sp.p != nil {
				if sp.p.refs != nil {
					return 0, fmt.Errorf("%w: an edit cuts through chunks written whole", ErrBadRequest)
				}
				hp := piece{data: sp.p.data[:k], n: k}
				tp := piece{data: sp.p.data[k:], n: sp.n - k}
				head.p, tail.p = &hp, &tp
			}
			*l = append((*l)[:i], append([]span{head, tail}, (*l)[i+1:]...)...)
			return i + 1, nil
		}
		pos += sp.n
	}
	return len(*l), nil
}

// grow extends the content with zeros to size bytes, if it is shorter.
func (l *layout) grow(size int64) {
	if n := size - l.size(); n > 0 {
		*l = append(*l, span{n: n})
	}
}

// put writes p at off.
func (l *layout) put(off int64, p piece) error {
	l.grow(off)
	if p.n == 0 {
		return nil
	}
	i, err := l.split(off)
	if err != nil {
		return err
	}
	j, err := l.split(min(off+p.n, l.size()))
	if err != nil {
		return err
	}
	*l = append((*l)[:i], append([]span{{n: p.n, p: &p}}, (*l)[j:]...)...)
	return nil
}

// cut cuts the content to size bytes, or extends it with zeros to them.
func (l *layout) cut(size int64) error {
	l.grow(size)
	i, err := l.split(size)
	if err != nil {
		return err
	}
	*l = (*l)[:i]
	return nil
}

// oldContent reads ranges of a file's current content, keeping the last
// chunk it fetched: the head and the tail of a small write usually fall
// in the same chunk.
type oldContent struct {
	s        *Server
	in       meta.Inode
	lastHash meta.Hash
	last     []byte
	read     bool // a chunk was read
}

// fetched reports whether a chunk of the old content was read.
func (o *oldContent) fetched() bool { return o.read }

func (o *oldContent) check() error {
	var sum int64
	for _, c := range o.in.Chunks {
		sum += c.Size
	}
	if len(o.in.Chunks) == 0 {
		sum = int64(len(o.in.Data))
	}
	if sum != o.in.Size {
		return fmt.Errorf("%w: inode %d says %d bytes but its content has %d", meta.ErrCorrupt, o.in.Ino, o.in.Size, sum)
	}
	return nil
}

func (o *oldContent) chunk(ctx context.Context, ref meta.ChunkRef) ([]byte, error) {
	if o.last != nil && o.lastHash == ref.Hash {
		return o.last, nil
	}
	b, err := o.s.chunkContent(ctx, ref, nil)
	if err != nil {
		return nil, err
	}
	o.lastHash, o.last, o.read = ref.Hash, b, true
	return b, nil
}

// copyTo adds bytes [from, to) of the content to b: whole chunks by
// reference, parts of chunks as bytes.
func (o *oldContent) copyTo(b *builder, from, to int64) error {
	if from >= to {
		return nil
	}
	if len(o.in.Chunks) == 0 {
		return b.write(o.in.Data[from:to])
	}
	var cs int64
	for _, c := range o.in.Chunks {
		ce := cs + c.Size
		a, z := max(from, cs), min(to, ce)
		switch {
		case a >= z:
		case a == cs && z == ce:
			if err := b.keep(c); err != nil {
				return err
			}
		case c.Hole():
			if err := b.zeros(z - a); err != nil {
				return err
			}
		default:
			data, err := o.chunk(b.ctx, c)
			if err != nil {
				return err
			}
			if err := b.write(data[a-cs : z-cs]); err != nil {
				return err
			}
		}
		cs = ce
	}
	return nil
}

// readInto fills p with the content from offset from.
func (o *oldContent) readInto(ctx context.Context, p []byte, from int64) error {
	if len(p) == 0 {
		return nil
	}
	w := &sliceWriter{buf: p[:0]}
	return o.s.streamRange(ctx, w, o.in, from, from+int64(len(p)), nil)
}

type sliceWriter struct{ buf []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	if len(w.buf)+len(p) > cap(w.buf) {
		return 0, fmt.Errorf("read more bytes than asked for")
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// builder assembles a new chunk list: kept references, and new bytes
// cut into chunks of the router's size and stored as they fill, up to
// uploadDepth at once.
type builder struct {
	s       *Server
	ctx     context.Context
	refused *refusals
	refs    []meta.ChunkRef
	size    int64
	buf     []byte // the next chunk's bytes so far; from the pool
	// first maps a chunk stored by this builder to its first reference:
	// a repeated chunk (zeros, mostly) is stored once, and its later
	// references get their group from the first at the end.
	first map[meta.Hash]int
	// hot, when set and true, keeps a chunk stored in the hot-chunk
	// cache: the chunks stored once the edit has read one of the old
	// content (a file edited in place, as by a mount's flushes, is edited
	// again, and the next edit reads them from here instead of from a
	// member), but not those of a file written whole, which would push
	// hot chunks out.
	hot func() bool
	wg  sync.WaitGroup
	sem chan struct{}

	failure firstFailure

	mu       sync.Mutex // guards what the store goroutines write:
	groups   map[int]string
	bufs     [][]byte // pool buffers handed to stores, returned by abort
	releases []func() // of their sealed copies
}

// keep adds a whole existing chunk, or a hole (joined to a hole just
// before it).
func (b *builder) keep(ref meta.ChunkRef) error {
	if err := b.flush(); err != nil {
		return err
	}
	if last := len(b.refs) - 1; ref.Hole() && last >= 0 && b.refs[last].Hole() {
		b.refs[last].Size += ref.Size
	} else {
		b.refs = append(b.refs, ref)
	}
	b.size += ref.Size
	return nil
}

// write adds bytes, storing each chunk as it fills.
func (b *builder) write(p []byte) error {
	cs := b.s.cfg.ChunkSize
	for len(p) > 0 {
		if b.buf == nil {
			b.buf = b.s.bufs.get(cs)[:0]
		}
		n := min(len(p), cs-len(b.buf))
		b.buf = append(b.buf, p[:n]...)
		p = p[n:]
		if len(b.buf) == cs {
			if err := b.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// zeros adds n zero bytes: whole chunks of them as a hole, which is
// stored nowhere and costs one reference however long; the bytes that
// complete a chunk already begun, or begin the next one, as bytes.
func (b *builder) zeros(n int64) error {
	cs := int64(b.s.cfg.ChunkSize)
	if b.buf != nil {
		fill := min(n, cs-int64(len(b.buf)))
		if err := b.write(make([]byte, fill)); err != nil {
			return err
		}
		n -= fill
	}
	if whole := n / cs * cs; whole > 0 {
		if err := b.keep(meta.ChunkRef{Size: whole}); err != nil {
			return err
		}
		n -= whole
	}
	return b.write(make([]byte, n))
}

// flush stores the bytes gathered so far as a chunk, however short.
func (b *builder) flush() error {
	if err := b.failure.get(); err != nil {
		return err
	}
	if len(b.buf) == 0 {
		return nil
	}
	data := b.buf
	b.buf = nil
	stored, ref, release := b.s.storedForm(data)
	h := ref.Hash
	idx := len(b.refs)
	b.refs = append(b.refs, ref)
	b.size += int64(len(data))
	if _, ok := b.first[h]; ok {
		b.s.bufs.put(data[:cap(data)])
		release()
		return nil
	}
	b.first[h] = idx
	if b.sem == nil {
		b.sem = make(chan struct{}, uploadDepth)
	}
	select {
	case b.sem <- struct{}{}:
	case <-b.ctx.Done():
		b.s.bufs.put(data[:cap(data)])
		release()
		return b.ctx.Err()
	}
	hot := b.hot != nil && b.hot()
	b.mu.Lock()
	b.bufs = append(b.bufs, data)
	b.releases = append(b.releases, release)
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.sem }()
		g, err := b.s.storeChunk(b.ctx, b.refused, idx, h, stored)
		if err != nil {
			b.failure.set(err)
			return
		}
		if hot && b.s.hot != nil {
			// A copy: stored goes back to the pool. It is the chunk as
			// stored and named by its own hash, so it is intact.
			b.s.hot.keep(h, bytes.Clone(stored), b.s.metrics)
		}
		b.mu.Lock()
		b.groups[idx] = g
		b.mu.Unlock()
	}()
	return nil
}

// finish stores what is left and returns the file.
func (b *builder) finish() (*meta.Inode, error) {
	if err := b.flush(); err != nil {
		return nil, err
	}
	b.wg.Wait()
	if err := b.failure.get(); err != nil {
		return nil, err
	}
	for i, r := range b.refs {
		if first, ok := b.first[r.Hash]; ok && r.Group == "" {
			b.refs[i].Group = b.groups[first]
		}
	}
	return &meta.Inode{Type: meta.TypeFile, Size: b.size, Chunks: b.refs, Hash: meta.ChunkListHash(b.refs, nil)}, nil
}

// abort waits for the stores in flight and returns every buffer to the
// pool; after finish it only does the latter.
func (b *builder) abort() {
	b.wg.Wait()
	if b.buf != nil {
		b.s.bufs.put(b.buf[:cap(b.buf)])
		b.buf = nil
	}
	for _, d := range b.bufs {
		b.s.bufs.put(d[:cap(d)])
	}
	for _, r := range b.releases {
		r()
	}
	b.bufs, b.releases = nil, nil
}
