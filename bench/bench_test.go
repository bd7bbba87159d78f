package bench

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSizesSet(t *testing.T) {
	tests := []struct {
		in      string
		want    Sizes
		wantErr bool
	}{
		{in: "10MB,100MB,1GiB", want: Sizes{10e6, 100e6, 1 << 30}},
		{in: "3MB", want: Sizes{3e6}},
		{in: " 1kb , 2KiB,5", want: Sizes{1000, 2048, 5}},
		{in: "4mib", want: Sizes{4 << 20}},
		{in: "7B", want: Sizes{7}},
		{in: "1TB", want: Sizes{1e12}},
		{in: "", wantErr: true},
		{in: ",", wantErr: true},
		{in: "0MB", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1.5GB", wantErr: true},
		{in: "MB", wantErr: true},
		{in: "10XB", wantErr: true},
		{in: "99999999TiB", wantErr: true},
	}
	for _, tt := range tests {
		s := Sizes{123}
		err := s.Set(tt.in)
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("Set(%q) = %v, want an error", tt.in, s)
		case tt.wantErr && !slices.Equal(s, Sizes{123}):
			t.Errorf("Set(%q) failed but changed the list to %v", tt.in, s)
		case !tt.wantErr && err != nil:
			t.Errorf("Set(%q): %v", tt.in, err)
		case !tt.wantErr && !slices.Equal(s, tt.want):
			t.Errorf("Set(%q) = %v, want %v", tt.in, s, tt.want)
		}
	}
}

func TestSizesRoundTrip(t *testing.T) {
	d := DefaultConfig().LargeSizes
	if got := d.String(); got != "10MB,100MB,1GiB" {
		t.Errorf("default sizes print as %q, want 10MB,100MB,1GiB", got)
	}
	for _, n := range []int64{1, 999, 1000, 1024, 1500, 3e6, 5 << 20, 1 << 30, 2e9, 1 << 40} {
		var s Sizes
		in := Sizes{n}
		if err := s.Set(in.String()); err != nil || !slices.Equal(s, in) {
			t.Errorf("%d prints as %q, which reads back as %v, %v", n, in.String(), s, err)
		}
	}
	if got := sizeLabel(1 << 30); got != "1 GiB" {
		t.Errorf("sizeLabel(1<<30) = %q", got)
	}
	if got := sizeLabel(10e6); got != "10 MB" {
		t.Errorf("sizeLabel(10e6) = %q", got)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	local := DefaultConfig()
	local.Local, local.Router = true, "" // the router is not used with --local
	if err := local.Validate(); err != nil {
		t.Fatalf("local config: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		says   string
	}{
		{"unknown workload", func(c *Config) { c.Workloads = []string{"ops", "smal"} }, `"smal"`},
		{"failover without local", func(c *Config) { c.Workloads = []string{"failover"} }, "--local"},
		{"no reps", func(c *Config) { c.Reps = 0 }, "reps"},
		{"no small files", func(c *Config) { c.SmallFiles = 0 }, "small files"},
		{"no small clients", func(c *Config) { c.SmallClients = -1 }, "small clients"},
		{"no failover runs", func(c *Config) { c.FailoverRuns = 0 }, "failover runs"},
		{"no large sizes", func(c *Config) { c.LargeSizes = nil }, "large sizes"},
		{"bad large size", func(c *Config) { c.LargeSizes = Sizes{0} }, "large size 0"},
		{"bad router", func(c *Config) { c.Router = "ftp://h" }, "http://"},
		{"no meta files", func(c *Config) { c.MetaFiles = 0 }, "meta files"},
		{"filer and local", func(c *Config) { c.Filer, c.Local = "http://127.0.0.1:8888", true }, "one of them"},
		{"bad filer", func(c *Config) { c.Filer = "127.0.0.1:8888" }, "not an http(s) URL"},
		{"filer failover", func(c *Config) { c.Filer, c.Workloads = "http://127.0.0.1:8888", []string{"failover"} }, "not failover"},
		{"pids and local", func(c *Config) { c.Pids, c.Local = []int{42}, true }, "did not start"},
		{"bad pid", func(c *Config) { c.Pids = []int{42, 0} }, "above 0"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.change(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: Validate() = %v, want ErrConfig saying %q", tt.name, err, tt.says)
		}
	}
	// No large sizes is fine when the large workload does not run.
	c := DefaultConfig()
	c.Workloads, c.LargeSizes = []string{"ops"}, nil
	if err := c.Validate(); err != nil {
		t.Errorf("ops only, no sizes: %v", err)
	}
}

func TestRuns(t *testing.T) {
	c := DefaultConfig()
	if !c.runs(WorkloadOps) || !c.runs(WorkloadLarge) || c.runs(WorkloadFailover) {
		t.Error("by default every workload but failover runs without --local")
	}
	c.Local = true
	if !c.runs(WorkloadFailover) {
		t.Error("by default failover runs with --local")
	}
	c.Workloads = []string{"small"}
	if c.runs(WorkloadOps) || !c.runs(WorkloadSmall) {
		t.Error("--workloads small runs small only")
	}
	c = DefaultConfig()
	c.Filer = "http://127.0.0.1:8888"
	for _, w := range allWorkloads {
		if want := w == WorkloadOps || w == WorkloadSmall || w == WorkloadMeta || w == WorkloadLarge; c.runs(w) != want {
			t.Errorf("with a filer, by default: runs(%s) = %v, want %v", w, c.runs(w), want)
		}
	}
}
