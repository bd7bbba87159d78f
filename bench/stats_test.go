package bench

import (
	"math"
	"slices"
	"sort"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one value", []float64{7}, 99, 7},
		{"median of ten is the fifth", ten, 50, 5},
		{"p99 of ten is the maximum", ten, 99, 10},
		{"p10 of ten is the first", ten, 10, 1},
		{"p100", ten, 100, 10},
		{"p99 of a hundred", hundred, 99, 99},
		{"p50 of a hundred", hundred, 50, 50},
		{"tiny p is the minimum", ten, 0.001, 1},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: percentile(%v, %v) = %v, want %v", tt.name, tt.sorted, tt.p, got, tt.want)
		}
	}
}

// TestPercentileReference checks the nearest-rank percentile against its
// definition: the smallest value with at least p% of the values at or
// below it.
func TestPercentileReference(t *testing.T) {
	vals := []float64{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6}
	for n := 1; n <= len(vals); n++ {
		s := slices.Clone(vals[:n])
		sort.Float64s(s)
		for _, p := range []float64{1, 10, 25, 50, 75, 90, 99, 100} {
			var want float64
			for _, v := range s {
				atOrBelow := 0
				for _, w := range s {
					if w <= v {
						atOrBelow++
					}
				}
				if float64(atOrBelow) >= p/100*float64(n)-1e-9 {
					want = v
					break
				}
			}
			if got := percentile(s, p); got != want {
				t.Errorf("n=%d p=%v: got %v, want %v (values %v)", n, p, got, want, s)
			}
		}
	}
}

func TestFigureOf(t *testing.T) {
	tests := []struct {
		vals           []float64
		med, min, maxv float64
	}{
		{[]float64{5}, 5, 5, 5},
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{10, 10, 1}, 10, 1, 10},
	}
	for _, tt := range tests {
		f := figureOf(tt.vals)
		if f.Median != tt.med || f.Min != tt.min || f.Max != tt.maxv {
			t.Errorf("figureOf(%v) = %+v, want median %v, min %v, max %v", tt.vals, f, tt.med, tt.min, tt.maxv)
		}
		if !slices.Equal(f.Reps, tt.vals) {
			t.Errorf("figureOf(%v) reps = %v, want the values in measured order", tt.vals, f.Reps)
		}
	}
	if f := figureOf(nil); f.Reps == nil || f.Median != 0 {
		t.Errorf("figureOf(nil) = %+v, want zeros and an empty (not null) list", f)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := summarize(ds)
	if l.MeanMS != 50.5 || l.P50MS != 50 || l.P99MS != 99 {
		t.Errorf("summarize(1..100 ms) = %+v, want mean 50.5, p50 50, p99 99", l)
	}
	if l := summarize([]time.Duration{1500 * time.Microsecond}); l.MeanMS != 1.5 || l.P50MS != 1.5 || l.P99MS != 1.5 {
		t.Errorf("summarize(1.5ms) = %+v", l)
	}
	if l := summarize(nil); l != (latency{}) {
		t.Errorf("summarize(nil) = %+v, want zeros", l)
	}
}

func TestRates(t *testing.T) {
	if got := perSecond(500, 2*time.Second); got != 250 {
		t.Errorf("perSecond = %v, want 250", got)
	}
	if got := megabytesPerSecond(10e6, 500*time.Millisecond); got != 20 {
		t.Errorf("megabytesPerSecond = %v, want 20 (1 MB = 10^6 bytes)", got)
	}
	if got := megabytesPerSecond(1<<30, time.Second); math.Abs(got-1073.741824) > 1e-9 {
		t.Errorf("megabytesPerSecond(1 GiB in 1s) = %v, want 1073.741824", got)
	}
	if perSecond(1, 0) != 0 || megabytesPerSecond(1, 0) != 0 {
		t.Error("a zero duration must give 0, not +Inf")
	}
}
