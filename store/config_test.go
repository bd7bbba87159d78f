package store

import (
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
