package bench

import (
	"encoding/binary"
	"io"
)

// stream is a deterministic pseudo-random byte stream of a fixed length,
// generated as it is read, so that a gigabyte upload needs no gigabyte of
// memory and identical chunks from earlier runs are not deduplicated
// (each seed gives different bytes). Byte k is byte k%8 of word k/8, and
// word w is splitmix64 of seed+w: the content depends only on the seed and
// the offset, not on how the reader is called.
type stream struct {
	seed uint64
	pos  int64
	size int64
}

func newStream(seed uint64, size int64) *stream {
	return &stream{seed: seed, size: size}
}

// splitmix64 is the finalizer of the SplitMix64 generator: a fast,
// well-mixed function of its input.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (s *stream) word(w int64) uint64 { return splitmix64(s.seed ^ uint64(w)*0x9e3779b97f4a7c15) }

func (s *stream) Read(p []byte) (int, error) {
	left := s.size - s.pos
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n := 0
	var tmp [8]byte
	// An unaligned start or end takes part of a word.
	if off := s.pos % 8; off != 0 {
		binary.LittleEndian.PutUint64(tmp[:], s.word(s.pos/8))
		n = copy(p, tmp[off:])
	}
	w := (s.pos + int64(n)) / 8
	for ; n+8 <= len(p); n += 8 {
		binary.LittleEndian.PutUint64(p[n:], s.word(w))
		w++
	}
	if n < len(p) {
		binary.LittleEndian.PutUint64(tmp[:], s.word(w))
		n += copy(p[n:], tmp[:])
	}
	s.pos += int64(n)
	return n, nil
}

// content returns the size bytes of the stream with seed: the body of a
// small file, which can be made again to check what is read back.
func content(seed uint64, size int) []byte {
	b := make([]byte, size)
	_, _ = io.ReadFull(newStream(seed, int64(size)), b)
	return b
}
