package store

// bbolt trusts the structure of its pages: a branch that points back at
// its own ancestor sends a cursor down forever (until memory runs out), a
// page number past the end of the file faults, an element whose offsets
// reach past its page reads other memory. Records cannot be verified by
// walking such a tree, so checkPages walks it first, from bbolt's file
// format (version 2) rather than through bbolt:
//
//	page header    id u64, flags u16, count u16, overflow u32
//	branch element pos u32, ksize u32, pgid u64 (key at element + pos)
//	leaf element   flags u32, pos u32, ksize u32, vsize u32
//	               (key at element + pos, its value right after it)
//	meta (page 0 and 1, after the header)
//	               magic u32, version u32, page size u32, flags u32,
//	               root bucket (root pgid u64, sequence u64), freelist
//	               pgid u64, high-water pgid u64, txid u64, checksum u64
//	               (FNV-64a of the fields before it)
//	bucket value   root pgid u64, sequence u64, then, when root is 0,
//	               the bucket's only page (inline)
//	free list      page ids u64 (count in the header, or in the first
//	               u64 when the header's is 0xFFFF)
//
// (integers in the machine's byte order, little-endian here). Every
// page reached must be a branch or a leaf below the high-water mark,
// reached once, not on the free list, with its elements inside it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

const (
	pageHeaderSize   = 16
	pageElementSize  = 16
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	bucketHeaderLen  = 16
	// maxTreeDepth bounds a walk down a tree: far beyond any real one.
	maxTreeDepth = 64
)

// checkPages walks the page tree of the bbolt file at path, opened as b,
// from the root its current meta page names. It reads the file through a
// memory map of its own, bounded by the file's size.
func checkPages(path string, b *bolt.DB, free map[uint64]bool) error {
	var txid uint64
	var hwm int64
	b.View(func(tx *bolt.Tx) error {
		txid, hwm = uint64(tx.ID()), tx.Size()
		return nil
	})
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := b.Info().PageSize
	if fi.Size() < hwm || hwm < 2*int64(size) {
		return &CorruptError{Why: fmt.Sprintf("the file has %d bytes, bbolt's meta page says %d", fi.Size(), hwm)}
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(hwm), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map %s: %w", path, err)
	}
	defer syscall.Munmap(data)
	w := pageWalk{data: data, size: size, hwm: uint64(hwm) / uint64(size), seen: map[uint64]bool{}, free: free}
	root := uint64(0)
	for _, id := range []uint64{0, 1} {
		if m := w.read(id, 0, 80); binary.LittleEndian.Uint64(m[64:72]) == txid {
			root = binary.LittleEndian.Uint64(m[32:40])
		}
	}
	if root == 0 {
		return &CorruptError{Why: fmt.Sprintf("neither meta page names transaction %d, which bbolt opened", txid)}
	}
	return w.tree(root, 0, true)
}

// checkFile checks what bbolt reads of the file at path when it opens
// it, before it does: both meta pages, and the free list one names. bbolt
// opens with the newer meta page that passes its checksum and ignores the
// other, but one that fails may be the newer, whose transaction this node
// acknowledged and would silently lose; its small struct lies in the
// page's first sector, which no crash tears, so only the disk can have
// damaged it. A free list bbolt cannot read makes it panic while it holds
// the file's lock. A missing or empty file is bbolt's to create. It
// returns the pages on the free list.
func checkFile(path string) (map[uint64]bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil, err
	}
	var metas [2][]byte
	size := int64(0)
	for id := range metas {
		m := make([]byte, 80)
		if _, err := f.ReadAt(m, int64(id)*size); err != nil {
			return nil, &CorruptError{Why: fmt.Sprintf("meta page %d cannot be read: %v", id, err)}
		}
		h := fnv.New64a()
		h.Write(m[16:72])
		if h.Sum64() != binary.LittleEndian.Uint64(m[72:80]) {
			return nil, pageCorrupt(uint64(id), "the meta page fails its checksum")
		}
		metas[id] = m
		size = int64(binary.LittleEndian.Uint32(m[24:28]))
	}
	m := metas[0]
	if binary.LittleEndian.Uint64(metas[1][64:72]) > binary.LittleEndian.Uint64(m[64:72]) {
		m = metas[1]
	}
	hwm, free := binary.LittleEndian.Uint64(m[56:64]), binary.LittleEndian.Uint64(m[48:56])
	if size < 1024 || hwm < 2 || fi.Size() < int64(hwm)*size {
		return nil, &CorruptError{Why: fmt.Sprintf("the meta page says %d pages of %d bytes; the file has %d bytes", hwm, size, fi.Size())}
	}
	if free == ^uint64(0) {
		return nil, nil // no free list kept in the file
	}
	if free < 2 || free >= hwm {
		return nil, pageCorrupt(free, "the free list is out of range (the file has %d pages)", hwm)
	}
	h := make([]byte, pageHeaderSize+8)
	if _, err := f.ReadAt(h, int64(free)*size); err != nil {
		return nil, err
	}
	count, overflow := uint64(binary.LittleEndian.Uint16(h[10:12])), uint64(binary.LittleEndian.Uint32(h[12:16]))
	first := uint64(0)
	if count == 0xFFFF { // the count is the first element
		count, first = binary.LittleEndian.Uint64(h[16:24]), 1
	}
	switch {
	case binary.LittleEndian.Uint16(h[8:10]) != freelistPageFlag:
		return nil, pageCorrupt(free, "flags %#x: the meta page names it as the free list", binary.LittleEndian.Uint16(h[8:10]))
	case overflow >= hwm-free || (first+count)*8 > (overflow+1)*uint64(size)-pageHeaderSize:
		return nil, pageCorrupt(free, "a free list of %d pages does not fit %d pages", count, overflow+1)
	}
	ids := make([]byte, (first+count)*8)
	if _, err := f.ReadAt(ids, int64(free)*size+pageHeaderSize); err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for i := first; i < first+count; i++ {
		id := binary.LittleEndian.Uint64(ids[i*8:])
		if id < 2 || id >= hwm {
			return nil, pageCorrupt(free, "the free list holds page %d, out of range", id)
		}
		out[id] = true
	}
	for i := range overflow + 1 {
		out[free+i] = true // not free, but no tree may reach it either
	}
	return out, nil
}

type pageWalk struct {
	data []byte // the file, hwm pages
	size int
	hwm  uint64
	seen map[uint64]bool
	free map[uint64]bool // the free list, and the free list's own pages
}

// read returns n bytes of page id from off, which the caller keeps
// within the pages below hwm.
func (w *pageWalk) read(id uint64, off, n int) []byte {
	at := int(id)*w.size + off
	return w.data[at : at+n]
}

func pageCorrupt(id uint64, why string, args ...any) error {
	return &CorruptError{Why: fmt.Sprintf("page %d: ", id) + fmt.Sprintf(why, args...)}
}

// tree checks the page id and what it points at; in the root bucket's
// tree (root) the leaves hold the buckets, whose trees it walks too.
func (w *pageWalk) tree(id uint64, depth int, root bool) error {
	switch {
	case id < 2 || id >= w.hwm:
		return pageCorrupt(id, "out of range (the file has %d pages)", w.hwm)
	case w.seen[id]:
		return pageCorrupt(id, "reached twice: the tree loops or shares a page")
	case depth > maxTreeDepth:
		return pageCorrupt(id, "deeper than %d levels", maxTreeDepth)
	}
	page := w.read(id, 0, w.size)
	flags, count := binary.LittleEndian.Uint16(page[8:10]), int(binary.LittleEndian.Uint16(page[10:12]))
	overflow := uint64(binary.LittleEndian.Uint32(page[12:16]))
	span := int(overflow+1) * w.size
	switch {
	case binary.LittleEndian.Uint64(page[0:8]) != id:
		return pageCorrupt(id, "its header names page %d", binary.LittleEndian.Uint64(page[0:8]))
	case overflow >= w.hwm-id || pageHeaderSize+count*pageElementSize > span:
		return pageCorrupt(id, "%d elements and %d overflow pages do not fit the file", count, overflow)
	case flags != branchPageFlag && flags != leafPageFlag:
		return pageCorrupt(id, "flags %#x: neither a branch nor a leaf", flags)
	}
	for i := range overflow + 1 {
		switch {
		case w.seen[id+i]:
			return pageCorrupt(id+i, "reached twice: the tree loops or shares a page")
		case w.free[id+i]:
			return pageCorrupt(id+i, "reached, but on the free list (or holding it): a branch points at a stale page")
		}
		w.seen[id+i] = true
	}
	need := pageHeaderSize + count*pageElementSize
	if flags == leafPageFlag && root {
		need = span // the buckets' values too
	}
	if need > len(page) {
		page = w.read(id, 0, need)
	}
	els := page[pageHeaderSize : pageHeaderSize+count*pageElementSize]
	if flags == leafPageFlag {
		if err := checkLeaf(id, els, span-pageHeaderSize); err != nil || !root {
			return err
		}
		return w.buckets(id, page, count)
	}
	for i := range count {
		e := els[i*pageElementSize:]
		pos, ksize := int(binary.LittleEndian.Uint32(e[0:4])), int(binary.LittleEndian.Uint32(e[4:8]))
		if i*pageElementSize+pos+ksize > span-pageHeaderSize {
			return pageCorrupt(id, "element %d reaches past the page", i)
		}
		if err := w.tree(binary.LittleEndian.Uint64(e[8:16]), depth+1, root); err != nil {
			return err
		}
	}
	return nil
}

// checkLeaf checks that the elements els of a leaf page, whose space
// after the header is span bytes, point inside it.
func checkLeaf(id uint64, els []byte, span int) error {
	for i := range len(els) / pageElementSize {
		e := els[i*pageElementSize:]
		pos := int(binary.LittleEndian.Uint32(e[4:8]))
		n := int(binary.LittleEndian.Uint32(e[8:12])) + int(binary.LittleEndian.Uint32(e[12:16]))
		if i*pageElementSize+pos+n > span || pos < 0 || n < 0 {
			return pageCorrupt(id, "element %d reaches past the page", i)
		}
	}
	return nil
}

// buckets walks the trees of the buckets named in a leaf of the root
// bucket: page is the whole leaf, with count elements.
func (w *pageWalk) buckets(id uint64, page []byte, count int) error {
	for i := range count {
		at := pageHeaderSize + i*pageElementSize
		e := page[at:]
		if binary.LittleEndian.Uint32(e[0:4])&bucketLeafFlag == 0 {
			continue
		}
		pos, ksize, vsize := int(binary.LittleEndian.Uint32(e[4:8])), int(binary.LittleEndian.Uint32(e[8:12])), int(binary.LittleEndian.Uint32(e[12:16]))
		v := page[at+pos+ksize : at+pos+ksize+vsize]
		if len(v) < bucketHeaderLen {
			return pageCorrupt(id, "bucket %q has a %d-byte header", page[at+pos:at+pos+ksize], len(v))
		}
		if root := binary.LittleEndian.Uint64(v[0:8]); root != 0 {
			if err := w.tree(root, 1, false); err != nil {
				return err
			}
			continue
		}
		inline := v[bucketHeaderLen:]
		if len(inline) < pageHeaderSize {
			return pageCorrupt(id, "bucket %q is inline but holds no page", page[at+pos:at+pos+ksize])
		}
		n := int(binary.LittleEndian.Uint16(inline[10:12]))
		if binary.LittleEndian.Uint16(inline[8:10]) != leafPageFlag || pageHeaderSize+n*pageElementSize > len(inline) {
			return pageCorrupt(id, "the inline page of bucket %q is not a leaf that fits its value", page[at+pos:at+pos+ksize])
		}
		if err := checkLeaf(id, inline[pageHeaderSize:pageHeaderSize+n*pageElementSize], len(inline)-pageHeaderSize); err != nil {
			return err
		}
	}
	return nil
}
