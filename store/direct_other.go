//go:build !linux

package store

// writeNew writes data to f, a file just created and still empty: a plain
// write here (see direct_linux.go). The caller fsyncs f after.
func writeNew(f File, data []byte) (direct bool, err error) {
	_, err = f.Write(data)
	return false, err
}

// readDirect reads nothing here (see direct_linux.go): readFile reads
// plainly.
func readDirect(f File, size int) ([]byte, error) { return nil, nil }

// recycle does nothing here: readDirect returns no buffers.
func recycle(b []byte) {}

// datasync is f.Sync here (see direct_linux.go).
func datasync(f File) error { return f.Sync() }
