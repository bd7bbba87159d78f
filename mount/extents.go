package mount

import "sort"

// extent is a run of bytes written to an open file and not yet sent to
// the cluster.
type extent struct {
	off  int64
	data []byte
}

func (e extent) end() int64 { return e.off + int64(len(e.data)) }

// extents is the dirty data of one file: sorted by offset, never
// overlapping or touching (touching runs are merged, so a sequential
// writer builds one run and the cluster gets one write per flush).
type extents struct {
	runs  []extent
	bytes int64 // sum of the runs' lengths
	// limit bounds the room a growing run is given ahead of its length
	// (see room): the write buffer, past which the runs are sent. 0: none.
	limit int64
}

// write records p at off, replacing what overlaps it. p is copied.
func (x *extents) write(off int64, p []byte) {
	end := off + int64(len(p))
	if len(p) == 0 {
		return
	}
	// The runs that overlap or touch [off, end).
	i := sort.Search(len(x.runs), func(i int) bool { return x.runs[i].end() >= off })
	j := i
	for j < len(x.runs) && x.runs[j].off <= end {
		j++
	}
	if i == j {
		x.runs = append(x.runs, extent{})
		copy(x.runs[i+1:], x.runs[i:])
		x.runs[i] = extent{off: off, data: append([]byte(nil), p...)}
		x.bytes += int64(len(p))
		return
	}
	// Appending to the end of the one run it touches is the common case
	// (a sequential writer): grow that run in place.
	if r := &x.runs[i]; j == i+1 && r.off <= off && off <= r.end() && end >= r.end() {
		grown := end - r.end()
		r.data = append(room(r.data[:off-r.off], len(p), x.limit), p...)
		x.bytes += grown
		return
	}
	lo, hi := min(off, x.runs[i].off), max(end, x.runs[j-1].end())
	merged := make([]byte, hi-lo)
	for _, r := range x.runs[i:j] {
		copy(merged[r.off-lo:], r.data)
		x.bytes -= int64(len(r.data))
	}
	copy(merged[off-lo:], p)
	x.bytes += int64(len(merged))
	x.runs = append(x.runs[:i+1], x.runs[j:]...)
	x.runs[i] = extent{off: lo, data: merged}
}

// room returns b with room for n more bytes, its capacity grown fourfold
// at a time up to limit (when set), and by a quarter past it. A
// sequential writer's run then is copied about a third of its final
// length in all as it grows; append, which grows a large slice by a
// quarter at a time, copied it about four times over (half the mount's
// CPU under a sequential write of 1 MiB at a time). A run grows past the
// limit only while a batch is on its way, or when one that failed comes
// back.
func room(b []byte, n int, limit int64) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	c := 4 * cap(b)
	if limit > 0 && int64(c) > limit {
		c = max(int(limit), cap(b)+cap(b)/4)
	}
	c = max(c, len(b)+n)
	grown := make([]byte, len(b), c)
	copy(grown, b)
	return grown
}

// overlay copies the dirty bytes that fall in [off, off+len(p)) into p.
func (x *extents) overlay(off int64, p []byte) {
	end := off + int64(len(p))
	i := sort.Search(len(x.runs), func(i int) bool { return x.runs[i].end() > off })
	for ; i < len(x.runs) && x.runs[i].off < end; i++ {
		r := x.runs[i]
		a, b := max(off, r.off), min(end, r.end())
		copy(p[a-off:b-off], r.data[a-r.off:b-r.off])
	}
}

// end is the offset just past the last dirty byte (0 when clean).
func (x *extents) end() int64 {
	if len(x.runs) == 0 {
		return 0
	}
	return x.runs[len(x.runs)-1].end()
}

// truncate drops the dirty bytes at or past size.
func (x *extents) truncate(size int64) {
	for len(x.runs) > 0 {
		last := &x.runs[len(x.runs)-1]
		switch {
		case last.off >= size:
			x.bytes -= int64(len(last.data))
			x.runs = x.runs[:len(x.runs)-1]
			continue
		case last.end() > size:
			x.bytes -= last.end() - size
			last.data = last.data[:size-last.off]
		}
		return
	}
}

// take removes and returns every run.
func (x *extents) take() []extent {
	runs := x.runs
	x.runs, x.bytes = nil, 0
	return runs
}

// restore puts back runs that could not be sent, under anything written
// since (which is newer).
func (x *extents) restore(runs []extent) {
	newer := x.take()
	for _, r := range runs {
		x.write(r.off, r.data)
	}
	for _, r := range newer {
		x.write(r.off, r.data)
	}
}
