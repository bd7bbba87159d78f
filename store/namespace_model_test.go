package store

import (
	"cmp"
	"path"
	"strings"

	"go.etcd.io/bbolt"

	"shoal/meta"
)

// The brute-force reference model of the namespace that nsStep checks
// the store against.

// nsNode is what the reference model knows of a path.
type nsNode struct {
	Dir   bool
	Size  int64
	Hash  string
	Mode  uint32
	MTime int64
}

// nsDump walks the stored tree from the root into the model's form.
func nsDump(tx *bbolt.Tx) (map[string]nsNode, error) {
	out := map[string]nsNode{}
	var walk func(p string, in meta.Inode) error
	walk = func(p string, in meta.Inode) error {
		out[p] = nsNode{Dir: in.Type == meta.TypeDir, Size: in.Size, Hash: in.Hash, Mode: in.Mode, MTime: in.MTime}
		if in.Type != meta.TypeDir {
			return nil
		}
		ents, err := readDirPath(tx, p)
		if err != nil {
			return err
		}
		for _, e := range ents {
			cp := path.Join(p, e.Name)
			c, err := lookupPath(tx, cp)
			if err != nil {
				return err
			}
			if err := walk(cp, c); err != nil {
				return err
			}
		}
		return nil
	}
	root, err := lookupPath(tx, "/")
	if err != nil {
		return nil, err
	}
	return out, walk("/", root)
}

// nsModel is the brute-force reference: a map from path to node, with
// every rule written in terms of path strings.
type nsModel map[string]nsNode

func nsValid(p string) bool { return strings.HasPrefix(p, "/") && path.Clean(p) == p }

func (m nsModel) below(p string) []string {
	var out []string
	for k := range m {
		if k != p && strings.HasPrefix(k, strings.TrimSuffix(p, "/")+"/") {
			out = append(out, k)
		}
	}
	return out
}

// resolve says whether p exists and, when not, why, as walk would.
func (m nsModel) resolve(p string) meta.Code {
	if p == "/" {
		return meta.CodeOK
	}
	parts := strings.Split(p, "/")[1:]
	for i := range parts {
		q := "/" + strings.Join(parts[:i+1], "/")
		n, ok := m[q]
		switch {
		case !ok:
			return meta.CodeNotFound
		case !n.Dir && i < len(parts)-1:
			return meta.CodeNotDir
		}
	}
	return meta.CodeOK
}

func (m nsModel) parentCode(p string) meta.Code {
	if c := m.resolve(path.Dir(p)); c != meta.CodeOK {
		return c
	}
	if !m[path.Dir(p)].Dir {
		return meta.CodeNotDir
	}
	return meta.CodeOK
}

func (m nsModel) touch(p string, t int64) {
	n := m[p]
	n.MTime = t
	m[p] = n
}

// mkdirs creates every missing ancestor of p, top down.
func (m nsModel) mkdirs(p string, t int64) {
	if _, ok := m[p]; ok {
		return
	}
	m.mkdirs(path.Dir(p), t)
	m[p] = nsNode{Dir: true, Mode: 0o755, MTime: t}
	m.touch(path.Dir(p), t)
}

func (m nsModel) apply(op meta.Op) meta.Result {
	switch op.Kind {
	case meta.OpNoop, meta.OpConfig:
		return meta.Result{}
	case meta.OpPut:
		return m.put(op)
	case meta.OpDelete:
		return m.delete(op)
	case meta.OpMkdir:
		return m.mkdir(op)
	case meta.OpRename, meta.OpCopy:
		return m.move(op)
	}
	return meta.Result{Code: meta.CodeInvalid}
}

func (m nsModel) put(op meta.Op) meta.Result {
	p := op.Path
	switch {
	case !nsValid(p) || op.File == nil:
		return meta.Result{Code: meta.CodeInvalid}
	case p == "/":
		return meta.Result{Code: meta.CodeIsDir}
	}
	if m.resolve(p) == meta.CodeNotDir {
		return meta.Result{Code: meta.CodeNotDir}
	}
	n, ok := m[p]
	if ok && n.Dir {
		return meta.Result{Code: meta.CodeIsDir}
	}
	n.Size, n.Hash, n.MTime = op.File.Size, op.File.Hash, op.Time
	if op.Mode != 0 || !ok {
		n.Mode = cmp.Or(op.Mode, 0o644)
	}
	if !ok {
		m.mkdirs(path.Dir(p), op.Time)
		m.touch(path.Dir(p), op.Time)
	}
	m[p] = n
	return meta.Result{Created: !ok}
}

func (m nsModel) delete(op meta.Op) meta.Result {
	p := op.Path
	if !nsValid(p) || p == "/" {
		return meta.Result{Code: meta.CodeInvalid}
	}
	if c := m.resolve(p); c != meta.CodeOK {
		return meta.Result{Code: c}
	}
	kids := m.below(p)
	if len(kids) > 0 && !op.Recursive {
		return meta.Result{Code: meta.CodeNotEmpty}
	}
	for _, k := range append(kids, p) {
		delete(m, k)
	}
	m.touch(path.Dir(p), op.Time)
	return meta.Result{}
}

func (m nsModel) mkdir(op meta.Op) meta.Result {
	p := op.Path
	if !nsValid(p) {
		return meta.Result{Code: meta.CodeInvalid}
	}
	if n, ok := m[p]; ok {
		if n.Dir && op.Parents {
			return meta.Result{}
		}
		return meta.Result{Code: meta.CodeExists}
	}
	if m.resolve(p) == meta.CodeNotDir {
		return meta.Result{Code: meta.CodeNotDir}
	}
	if _, ok := m[path.Dir(p)]; !ok && !op.Parents {
		return meta.Result{Code: meta.CodeNotFound}
	}
	m.mkdirs(path.Dir(p), op.Time)
	m[p] = nsNode{Dir: true, Mode: cmp.Or(op.Mode, 0o755), MTime: op.Time}
	m.touch(path.Dir(p), op.Time)
	return meta.Result{Created: true}
}

// move is rename and copy, which share their checks.
func (m nsModel) move(op meta.Op) meta.Result {
	p, q, isCopy := op.Path, op.To, op.Kind == meta.OpCopy
	if !nsValid(p) || !nsValid(q) || p == "/" || q == "/" {
		return meta.Result{Code: meta.CodeInvalid}
	}
	if c := m.resolve(p); c != meta.CodeOK {
		return meta.Result{Code: c}
	}
	src := m[p]
	if p == q && !isCopy {
		return meta.Result{}
	}
	if p == q || (src.Dir && strings.HasPrefix(q, p+"/")) {
		return meta.Result{Code: meta.CodeInvalid}
	}
	if c := m.parentCode(q); c != meta.CodeOK {
		return meta.Result{Code: c}
	}
	old, exists := m[q]
	switch {
	case !exists:
	case isCopy && src.Dir:
		return meta.Result{Code: meta.CodeExists}
	case !src.Dir && old.Dir:
		return meta.Result{Code: meta.CodeIsDir}
	case src.Dir && !old.Dir:
		return meta.Result{Code: meta.CodeNotDir}
	case src.Dir && len(m.below(q)) > 0:
		return meta.Result{Code: meta.CodeNotEmpty}
	}
	if isCopy && exists {
		old.Size, old.Hash, old.MTime = src.Size, src.Hash, op.Time
		m[q] = old
		return meta.Result{}
	}
	delete(m, q)
	for _, k := range append(m.below(p), p) {
		n := m[k]
		if isCopy {
			n.MTime = op.Time
		} else {
			delete(m, k)
		}
		m[q+strings.TrimPrefix(k, p)] = n
	}
	if !isCopy {
		m.touch(path.Dir(p), op.Time)
	}
	m.touch(path.Dir(q), op.Time)
	return meta.Result{Created: isCopy}
}
