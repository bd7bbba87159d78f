package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A chunk file is written once, whole, and then fsynced; the node seldom
// reads it back soon (a router reads whichever member it picks). Written
// through the page cache, each new page costs the kernel far more than
// the copy (on a VM measured here: 1.9 s of system time per GiB written,
// against 0.1 s with O_DIRECT, dd bs=4M), and the cache then holds data
// nobody asked for. So a chunk of directMin bytes or more is written with
// O_DIRECT from an aligned copy, then fsynced as before (O_DIRECT does
// not flush the disk's own cache, nor the file's size), and read with
// O_DIRECT too: a read through the cache pays for every page it adds.
const (
	// directAlign is the alignment O_DIRECT asks of a write's memory,
	// file offset and length: the logical block size, 512 or 4096.
	directAlign = 4096
	// directMin: below this the page cache costs little.
	directMin = 64 << 10
)

// alignedBufs holds buffers for directly written chunks (*[]byte, each
// of a length that is a multiple of directAlign, starting aligned).
var alignedBufs sync.Pool

// alignedBuf returns a buffer of at least n bytes (n a multiple of
// directAlign) whose first byte is directAlign-aligned. A new one has a
// block more, so that the buffer a chunk was written from can read a
// chunk of that size back (see readDirect).
func alignedBuf(n int) *[]byte {
	if p, ok := alignedBufs.Get().(*[]byte); ok && len(*p) >= n {
		return p
	}
	b := newAligned(n + directAlign)
	return &b
}

// recycle gives back a buffer readDirect returned, once nothing reads it.
// Anything else (a plain read's buffer, a small one) is left to the GC.
func recycle(b []byte) {
	b = b[:cap(b)]
	if len(b) < directMin || len(b)%directAlign != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%directAlign != 0 {
		return
	}
	alignedBufs.Put(&b)
}

// newAligned allocates n bytes whose first is directAlign-aligned.
func newAligned(n int) []byte {
	raw := make([]byte, n+directAlign)
	off := int(-uintptr(unsafe.Pointer(&raw[0])) & (directAlign - 1))
	return raw[off : off+n : off+n]
}

// writeNew writes data to f, a file just created and still empty. For a
// large enough write to an *os.File on a file system that takes O_DIRECT,
// it bypasses the page cache and reports direct; anywhere else (a file
// system without O_DIRECT, such as an older tmpfs, or a test's FS) it is
// a plain write. Either way the caller fsyncs f after.
func writeNew(f File, data []byte) (direct bool, err error) {
	of, ok := f.(*os.File)
	if !ok || len(data) < directMin {
		_, err := f.Write(data)
		return false, err
	}
	if err := setDirect(of, true); err != nil {
		_, err := f.Write(data)
		return false, err
	}
	padded := (len(data) + directAlign - 1) &^ (directAlign - 1)
	p := alignedBuf(padded)
	defer alignedBufs.Put(p)
	buf := (*p)[:padded]
	copy(buf, data)
	clear(buf[len(data):])
	_, werr := of.Write(buf)
	if errors.Is(werr, unix.EINVAL) {
		// The file system opened it with O_DIRECT but refuses the I/O
		// (an alignment it wants larger): write it the plain way.
		if err := setDirect(of, false); err != nil {
			return false, err
		}
		if err := of.Truncate(0); err != nil {
			return false, err
		}
		if _, err := of.Seek(0, 0); err != nil {
			return false, err
		}
		_, err := of.Write(data)
		return false, err
	}
	if werr != nil {
		return false, werr
	}
	if padded != len(data) {
		if err := of.Truncate(int64(len(data))); err != nil {
			return false, err
		}
	}
	return true, nil
}

// setDirect turns O_DIRECT on or off for the open file f.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			serr = err
			return
		}
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, serr = unix.FcntlInt(fd, unix.F_SETFL, flags)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set O_DIRECT on %s: %w", f.Name(), err)
	}
	return nil
}

// readDirect starts reading f, an opened file of size bytes (as its stat
// said), with O_DIRECT when it is an *os.File of directMin bytes or more
// on a file system that takes it. It returns what it read, with room for
// more, and f set back to plain reads: readFile reads on from there to
// see the end of the file. It returns nil, nil when it did not read.
func readDirect(f File, size int) ([]byte, error) {
	of, ok := f.(*os.File)
	if !ok || size < directMin {
		return nil, nil
	}
	if err := setDirect(of, true); err != nil {
		return nil, nil
	}
	// One aligned block more than the size: a file of exactly that size
	// is read whole by the first read. A buffer from the pool may be
	// larger still; all of it goes back there (see recycle).
	data := (*alignedBuf((size+directAlign-1)&^(directAlign-1) + directAlign))[:0]
	for len(data) < cap(data) {
		n, err := of.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		switch {
		case errors.Is(err, unix.EINVAL) && len(data) == 0:
			// Opened with O_DIRECT, refused the read: read it plainly.
			return nil, setDirect(of, false)
		case errors.Is(err, io.EOF):
			return data, setDirect(of, false)
		case err != nil:
			return data, err
		case len(data)%directAlign != 0:
			// A short read: O_DIRECT gives one only at the end.
			return data, setDirect(of, false)
		}
	}
	return data, setDirect(of, false)
}

// datasync makes what was written to f durable, with fdatasync where f is
// an *os.File: the content and the size, not the times, which the log
// files that use it never need.
func datasync(f File) error {
	of, ok := f.(*os.File)
	if !ok {
		return f.Sync()
	}
	for {
		err := unix.Fdatasync(int(of.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: of.Name(), Err: err}
			}
			return nil
		}
	}
}
