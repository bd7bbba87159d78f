package store

import "errors"

// ErrCompacted: the requested log entries were discarded by a snapshot.
var ErrCompacted = errors.New("log entries compacted")
