package nemesis

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The sequential specification the checker holds histories to: a
// namespace restricted to a few file paths, every one absent at the start.
// Only files are modelled; directories, and the side effects an operation
// has on them, are out of scope (Check refuses a path below another).
//
// Unknown outcomes follow porcupine's own treatment: the operation's
// return is put after the end of the history, and its output ("unknown")
// matches whatever state it meets, where it applies its effect. That is
// deterministic and still complete: an operation that never took effect
// is, to every other operation, the same as one linearized after all of
// them, which the infinite return allows. Every operation can apply in
// every state (one that cannot, like renaming an absent file, answers
// not_found and changes nothing), so no nondeterministic model is needed.

// files is the state of one partition: the present paths and their
// contents. A path not in the map is absent. A files value is never
// mutated once built; step copies it to change it.
type files map[string]string

// output is what the model sees as an operation's answer.
type output struct {
	res     Result
	unknown bool
}

// apply runs op on s as the API would, and returns the answer and the new
// state (s itself when op changes nothing).
func apply(s files, op Op) (Result, files) {
	v, ok := s[op.Path]
	switch op.Kind {
	case OpWrite:
		return OK(), with(s, op.Path, op.Value, true)
	case OpRead:
		if !ok {
			return NotFound(), s
		}
		return Found(v), s
	case OpExists:
		return Present(ok), s
	case OpDelete:
		if !ok {
			return NotFound(), s
		}
		return OK(), with(s, op.Path, "", false)
	case OpRename, OpCopy:
		if !ok {
			return NotFound(), s
		}
		if op.Path == op.To {
			return OK(), s
		}
		next := with(s, op.To, v, true)
		if op.Kind == OpRename {
			delete(next, op.Path)
		}
		return OK(), next
	}
	return Failed("unknown operation"), s
}

// with is a copy of s with path set to value (present) or removed.
func with(s files, path, value string, present bool) files {
	next := maps.Clone(s)
	if next == nil {
		next = files{}
	}
	if present {
		next[path] = value
	} else {
		delete(next, path)
	}
	return next
}

// step is the model's transition: whether op could answer out in state s,
// and the state after it.
func step(s files, op Op, out output) (bool, files) {
	want, next := apply(s, op)
	switch {
	case out.unknown:
		return true, next
	case out.res.Status == StatusFailed:
		return true, s // a definite failure took no effect
	}
	got := out.res
	if want.Status != got.Status {
		return false, s
	}
	switch op.Kind {
	case OpRead:
		return want.Value == got.Value, next
	case OpExists:
		return want.Present == got.Present, next
	}
	return true, next
}

// hashFiles is order independent (a sum over entries), so it needs no sort.
func hashFiles(s files) uint64 {
	var sum uint64
	for p, v := range s {
		h := fnv.New64a()
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write([]byte(v))
		sum += h.Sum64()
	}
	return sum
}

// newModel is the porcupine model of the namespace, partitioned by
// connected paths (see partition).
func newModel() porcupine.Model {
	return porcupine.Model{
		Partition: partition,
		Init:      func() any { return files{} },
		Step: func(state, input, out any) (bool, any) {
			return step(state.(files), input.(Op), out.(output))
		},
		Equal: func(a, b any) bool { return maps.Equal(a.(files), b.(files)) },
		Hash:  func(state any) uint64 { return hashFiles(state.(files)) },
		DescribeOperation: func(input, out any) string {
			return describeOp(input.(Op), out.(output))
		},
		DescribeState: func(state any) string { return describeFiles(state.(files)) },
		DescribeOperationMetadata: func(id any) string {
			return fmt.Sprintf("operation %v in history.json", id)
		},
	}
}

// partition splits a history into sets of operations that share no path:
// a union-find over the paths each operation touches, so a rename or copy
// puts both its paths in one set. A history is linearizable exactly when
// each set is (linearizability is compositional over independent
// objects), and small sets check fast.
func partition(ops []porcupine.Operation) [][]porcupine.Operation {
	parent := map[string]string{}
	var find func(string) string
	find = func(p string) string {
		q, ok := parent[p]
		if !ok || q == p {
			parent[p] = p
			return p
		}
		root := find(q)
		parent[p] = root
		return root
	}
	for _, o := range ops {
		ps := o.Input.(Op).paths()
		for _, p := range ps[1:] {
			if a, b := find(ps[0]), find(p); a != b {
				parent[b] = a
			}
		}
	}
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, o := range ops {
		root := find(o.Input.(Op).Path)
		i, ok := index[root]
		if !ok {
			i = len(parts)
			index[root] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], o)
	}
	return parts
}

func describeOp(op Op, out output) string {
	var call string
	switch op.Kind {
	case OpWrite:
		call = fmt.Sprintf("write(%s, %s)", op.Path, short(op.Value))
	case OpRename, OpCopy:
		call = fmt.Sprintf("%s(%s, %s)", op.Kind, op.Path, op.To)
	default:
		call = fmt.Sprintf("%s(%s)", op.Kind, op.Path)
	}
	var ret string
	switch {
	case out.unknown:
		ret = "unknown"
	case out.res.Status == StatusFailed:
		ret = "failed: " + out.res.Reason
	case op.Kind == OpRead && out.res.Status == StatusOK:
		ret = short(out.res.Value)
	case op.Kind == OpExists:
		ret = strconv.FormatBool(out.res.Present)
	default:
		ret = string(out.res.Status)
	}
	return call + " -> " + ret
}

func describeFiles(s files) string {
	var b strings.Builder
	b.WriteString("{")
	for i, p := range slices.Sorted(maps.Keys(s)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p + ": " + short(s[p]))
	}
	b.WriteString("}")
	return b.String()
}

// short quotes a value for the visualisation, cut to a readable length.
func short(v string) string {
	const limit = 24
	if len(v) > limit {
		return strconv.Quote(v[:limit]) + "…"
	}
	return strconv.Quote(v)
}
