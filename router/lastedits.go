package router

import (
	"context"
	"slices"
	"sync"

	"shoal/meta"
)

// lastEdits is the content this router committed last for the files it
// changed by inode number (a mount's flushes and truncates), so that the
// next change of such a file is computed from it without reading the
// file first. The commit checks the content's generation, the type and
// the caller's permission as it does after a read: a file that another
// router, or this one by its path, changed meanwhile fails that check
// and is read and computed again. An entry can cost a computation, never
// a wrong commit; inode numbers are never reused. An entry serves only
// the caller whose change made it: another is read first, so one who may
// not write the file is refused before anything is stored.
type lastEdits struct {
	mu sync.Mutex
	m  map[uint64]lastEdit
}

type lastEdit struct {
	file meta.Inode
	by   *meta.Cred
}

const (
	// maxLastEdits bounds the files remembered; past it they are all
	// forgotten at once (each costs one read to learn again).
	maxLastEdits = 4096
	// maxEditChunks bounds the chunk list kept for a file: a larger
	// file is read each time, as its list costs more to keep.
	maxEditChunks = 256
)

// get returns the content last committed by this router for the file t
// names by number, if it has it and the caller of ctx committed it.
func (e *lastEdits) get(ctx context.Context, t target) *meta.Inode {
	if !byNumber(t) {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	le, ok := e.m[t.at]
	if !ok || !sameCred(le.by, credOf(ctx)) {
		return nil
	}
	return &le.file
}

func sameCred(a, b *meta.Cred) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Uid == b.Uid && a.Gid == b.Gid && a.Root == b.Root && a.Host == b.Host && slices.Equal(a.Groups, b.Groups)
}

// put notes file as the content of the file t names by number, committed
// at generation gen by the caller of ctx.
func (e *lastEdits) put(ctx context.Context, t target, gen uint64, file *meta.Inode) {
	if !byNumber(t) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(file.Chunks) > maxEditChunks {
		delete(e.m, t.at)
		return
	}
	if old, ok := e.m[t.at]; ok && old.file.Gen > gen {
		return // a change that committed after this one noted it first
	}
	if e.m == nil || len(e.m) >= maxLastEdits {
		e.m = map[uint64]lastEdit{}
	}
	var by *meta.Cred
	if c := credOf(ctx); c != nil {
		cc := *c
		cc.Groups = slices.Clone(c.Groups)
		by = &cc
	}
	e.m[t.at] = lastEdit{by: by, file: meta.Inode{Ino: t.at, Type: meta.TypeFile, Gen: gen, Size: file.Size, Hash: file.Hash,
		Chunks: file.Chunks, Data: file.Data, DataKey: file.DataKey}}
}

// byNumber reports whether t names a file by its inode number alone.
func byNumber(t target) bool { return t.at != 0 && t.path == "/" }
