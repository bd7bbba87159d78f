package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"shoal/meta"
)

// The configuration in effect, forming flag included, is the last one in
// the log, and survives compaction of the entry that carried it and a
// reopen of the store.
func TestConfigForming(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	one := []meta.Member{{ID: 1, Name: "a", Addr: "a:1"}}
	two := append(slices.Clone(one), meta.Member{ID: 2, Name: "b", Addr: "b:1"})
	b := meta.Ballot{Term: 1, Node: 1}
	check := func(when string, want []meta.Member, wantForming bool) {
		t.Helper()
		got, forming, err := d.Config()
		if err != nil || !slices.Equal(got, want) || forming != wantForming {
			t.Fatalf("%s: config %v forming %v, %v; want %v forming %v", when, got, forming, err, want, wantForming)
		}
	}
	check("empty store", nil, false)
	es := []meta.Entry{
		{Index: 1, Ballot: b, Op: meta.Op{Kind: meta.OpConfig, Members: one, Forming: true}},
		{Index: 2, Ballot: b, Op: meta.Op{Kind: meta.OpNoop}},
	}
	if err := d.Append(es); err != nil {
		t.Fatal(err)
	}
	check("in the log", one, true)
	if _, _, err := d.Apply(2); err != nil {
		t.Fatal(err)
	}
	if err := d.Compact(2); err != nil {
		t.Fatal(err)
	}
	check("compacted", one, true)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if d, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	check("reopened", one, true)
	if err := d.Append([]meta.Entry{{Index: 3, Ballot: b, Op: meta.Op{Kind: meta.OpConfig, Members: two}}}); err != nil {
		t.Fatal(err)
	}
	check("formed in the log", two, false)
	if _, _, err := d.Apply(3); err != nil {
		t.Fatal(err)
	}
	if err := d.Compact(3); err != nil {
		t.Fatal(err)
	}
	check("formed and compacted", two, false)
}

// Compacting a forming configuration and the formed one after it at once
// keeps the last: formed.
func TestConfigFormedCompactedWithForming(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	one := []meta.Member{{ID: 1, Name: "a", Addr: "a:1"}}
	two := append(slices.Clone(one), meta.Member{ID: 2, Name: "b", Addr: "b:1"})
	b := meta.Ballot{Term: 1, Node: 1}
	es := []meta.Entry{
		{Index: 1, Ballot: b, Op: meta.Op{Kind: meta.OpConfig, Members: one, Forming: true}},
		{Index: 2, Ballot: b, Op: meta.Op{Kind: meta.OpConfig, Members: two}},
		{Index: 3, Ballot: b, Op: meta.Op{Kind: meta.OpNoop}},
	}
	if err := d.Append(es); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Apply(3); err != nil {
		t.Fatal(err)
	}
	if err := d.Compact(3); err != nil {
		t.Fatal(err)
	}
	got, forming, err := d.Config()
	if err != nil || !slices.Equal(got, two) || forming {
		t.Fatalf("after compaction: config %v forming %v, %v; want %v, formed", got, forming, err, two)
	}
}

// ApplyThen hands over the results of the entries it applies before its
// transaction commits: nothing reading the store sees them yet, and a
// store whose commit never happened (a copy taken before it, as after a
// crash) applies the same entries from its log to the same results.
func TestApplyThenAnswersBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := meta.Ballot{Term: 1, Node: 1}
	es := []meta.Entry{
		{Index: 1, Ballot: b, Op: meta.Op{Kind: meta.OpMkdir, Path: "/d", Time: 1, Clock: 5}},
		{Index: 2, Ballot: b, Op: meta.Op{Kind: meta.OpMkdir, Path: "/d", Time: 2, Clock: 6}},
		{Index: 3, Ballot: b, Op: meta.Op{Kind: meta.OpRename, Path: "/d", To: "/e", Time: 3, Clock: 7}},
		{Index: 4, Ballot: b, Op: meta.Op{Kind: meta.OpRename, Path: "/d", To: "/f", Time: 4, Clock: 8}},
	}
	if err := d.Append(es); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "crashed")
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	var handed []meta.Result
	calls := 0
	_, results, err := d.ApplyThen(4, func(entries []meta.Entry, rs []meta.Result) {
		calls++
		handed = slices.Clone(rs)
		if len(entries) != len(es) {
			t.Errorf("computed got %d entries, want %d", len(entries), len(es))
		}
		if st, err := d.State(); err != nil || st.Applied != 0 {
			t.Errorf("while the results are handed over, the store shows applied %d (%v), want 0: nothing may see them before the commit", st.Applied, err)
		}
	}, nil)
	if err != nil || calls != 1 {
		t.Fatalf("ApplyThen: %v, computed called %d times, want once", err, calls)
	}
	if !slices.EqualFunc(handed, results, sameResult) {
		t.Errorf("handed over %+v, returned %+v", handed, results)
	}
	wantCodes := []meta.Code{meta.CodeOK, meta.CodeExists, meta.CodeOK, meta.CodeNotFound}
	for i, r := range results {
		if r.Code != wantCodes[i] {
			t.Errorf("entry %d: code %v, want %v", i+1, r.Code, wantCodes[i])
		}
	}
	if st, err := d.State(); err != nil || st.Applied != 4 {
		t.Errorf("after the commit the store shows applied %d (%v), want 4", st.Applied, err)
	}

	reappliesAfterCrash(t, crashed, results, "a crash before the commit")
}

// ApplyThen with next applies batch after batch in one transaction: the
// log takes appends while it is open, each batch's results are handed
// over as it is computed (later batches see the earlier ones), and
// nothing is applied for readers until the one commit.
func TestApplyThenSeveralBatches(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := meta.Ballot{Term: 1, Node: 1}
	op := func(i uint64, kind meta.OpKind, path, to string) meta.Entry {
		return meta.Entry{Index: i, Ballot: b, Op: meta.Op{Kind: kind, Path: path, To: to, Time: int64(i), Clock: int64(i)}}
	}
	if err := d.Append([]meta.Entry{op(1, meta.OpMkdir, "/d", ""), op(2, meta.OpMkdir, "/d", "")}); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "crashed")
	var rounds [][]uint64
	var codes []meta.Code
	_, results, err := d.ApplyThen(1, func(es []meta.Entry, rs []meta.Result) {
		var idx []uint64
		for i, e := range es {
			idx = append(idx, e.Index)
			codes = append(codes, rs[i].Code)
		}
		rounds = append(rounds, idx)
	}, func(applied uint64, r Reader) uint64 {
		if st, err := d.State(); err != nil || st.Applied != 0 {
			t.Errorf("between batches the store shows applied %d (%v), want 0 until the commit", st.Applied, err)
		}
		// The transaction's Reader sees what it applied; the store's
		// readers see the last commit.
		if _, err := d.Reader().LookupAt(0, "/d", nil, 0); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("after entry %d, before the commit: the store finds /d (%v), want not found", applied, err)
		}
		if _, err := r.LookupAt(0, "/d", nil, 0); (applied < 4) != (err == nil) {
			t.Errorf("after entry %d, in the transaction: /d gives %v", applied, err)
		}
		if _, err := r.LookupAt(0, "/e", nil, 0); (applied == 4) != (err == nil) {
			t.Errorf("after entry %d, in the transaction: /e gives %v", applied, err)
		}
		switch applied {
		case 1:
			return 2
		case 2:
			// Appends go on while the transaction is open.
			if err := d.Append([]meta.Entry{op(3, meta.OpRename, "/d", "/e"), op(4, meta.OpRename, "/d", "/f")}); err != nil {
				t.Errorf("append while an apply is open: %v", err)
			}
			// A crash now, with two batches answered and none committed.
			if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
				t.Error(err)
			}
			return 4
		}
		return 0
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]uint64{{1}, {2}, {3, 4}}; !slices.EqualFunc(rounds, want, slices.Equal) {
		t.Errorf("batches handed over: %v, want %v", rounds, want)
	}
	want := []meta.Code{meta.CodeOK, meta.CodeExists, meta.CodeOK, meta.CodeNotFound}
	if !slices.Equal(codes, want) || len(results) != 4 {
		t.Errorf("codes handed over %v (%d results returned), want %v", codes, len(results), want)
	}
	if st, err := d.State(); err != nil || st.Applied != 4 {
		t.Errorf("after the commit the store shows applied %d (%v), want 4", st.Applied, err)
	}
	if _, err := d.Reader().LookupAt(0, "/e", nil, 0); err != nil {
		t.Errorf("look up /e after the commit: %v", err)
	}

	reappliesAfterCrash(t, crashed, results, "a crash between batches")
}

// reappliesAfterCrash opens the store copied to crashed before its apply
// committed and checks that applying its log again gives the results
// that were handed over.
func reappliesAfterCrash(t *testing.T, crashed string, results []meta.Result, when string) {
	t.Helper()
	c, err := Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, again, err := c.Apply(uint64(len(results)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(again, results, sameResult) {
		t.Errorf("after %s, applied again from the log: %+v, want the results handed over: %+v", when, again, results)
	}
}

func sameResult(a, b meta.Result) bool {
	return a.Code == b.Code && a.Created == b.Created && (a.Inode == nil) == (b.Inode == nil) &&
		(a.Inode == nil || a.Inode.Ino == b.Inode.Ino && a.Inode.MTime == b.Inode.MTime)
}
