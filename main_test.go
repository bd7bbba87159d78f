package main

import (
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

func TestByteSizeSet(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "64MiB", want: 64 << 20},
		{in: "64MB", want: 64 << 20},
		{in: "1G", want: 1 << 30},
		{in: "10T", want: 10 << 40},
		{in: "8k", want: 8 << 10},
		{in: " 2 KiB ", want: 2 << 10},
		{in: "8388607T", want: 8388607 << 40}, // the largest T that fits
		{in: "1.5G", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: "G", wantErr: true},
		{in: "8388608T", wantErr: true},
		{in: "99999999999T", wantErr: true},
		{in: "9223372036854775808", wantErr: true},
	}
	for _, tt := range tests {
		b := byteSize(-7) // a refused value must leave the flag as it was
		err := b.Set(tt.in)
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("Set(%q) = %d, want an error", tt.in, b)
		case tt.wantErr && b != -7:
			t.Errorf("Set(%q) failed but changed the value to %d", tt.in, b)
		case !tt.wantErr && err != nil:
			t.Errorf("Set(%q): %v", tt.in, err)
		case !tt.wantErr && int64(b) != tt.want:
			t.Errorf("Set(%q) = %d, want %d", tt.in, b, tt.want)
		}
	}
	// What String prints (the defaults in --help) reads back the same.
	for _, n := range []int64{0, 1, 1536, 100_000_000, 128 << 20, 1 << 30, 3 << 40} {
		b := byteSize(n)
		var back byteSize
		if err := back.Set(b.String()); err != nil || back != b {
			t.Errorf("byteSize(%d).String() = %q, which reads back as %d (%v)", n, b.String(), back, err)
		}
	}
}

func TestDescribeBuild(t *testing.T) {
	plat := runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH
	vcs := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	for _, c := range []struct {
		version string
		bi      *debug.BuildInfo
		want    string
	}{
		{"dev", nil, "shoal dev (" + plat + ")"},
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "shoal dev (" + plat + ")"},
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "shoal v1.2.3 (" + plat + ")"},
		{"v2.0.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "shoal v2.0.0 (" + plat + ")"},
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"shoal dev (commit 0123456789ab of 2026-12-01T10:00:00Z with uncommitted changes, " + plat + ")"},
		{"dev", &debug.BuildInfo{Settings: vcs[:2]}, "shoal dev (commit 0123456789ab, " + plat + ")"},
	} {
		if got := describeBuild(c.version, c.bi).String(); got != c.want {
			t.Errorf("describeBuild(%q, %+v) = %q, want %q", c.version, c.bi, got, c.want)
		}
	}
}

// Every command the help lists completes, so the two lists cannot drift.
func TestCompletionKnowsEveryCommand(t *testing.T) {
	var b strings.Builder
	usage(&b)
	names := commandNames()
	listed := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
			continue
		}
		name := strings.Fields(line)[0]
		listed++
		if !slices.Contains(names, name) {
			t.Errorf("the help lists %q, which does not complete", name)
		}
	}
	if listed < 20 {
		t.Fatalf("read only %d commands from the help", listed)
	}
	var out strings.Builder
	complete(&out, []string{"sy"})
	if out.String() != "sync\n" {
		t.Errorf("completing sy: %q", out.String())
	}
}
