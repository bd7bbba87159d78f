package bench

import (
	"math"
	"slices"
	"time"
)

// Figure is one reported number: the median of its per-rep values, with
// their range and the values themselves in the order they were measured.
type Figure struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Reps   []float64 `json:"reps"`
}

// figureOf summarizes the per-rep values vals. An even count has the mean
// of its two middle values as median.
func figureOf(vals []float64) Figure {
	if len(vals) == 0 {
		return Figure{Reps: []float64{}}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Figure{Median: med, Min: s[0], Max: s[n-1], Reps: slices.Clone(vals)}
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it. With few samples p99 is the maximum, which is what a
// user waiting on the slowest of them saw.
func percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// latency is what one rep measured of one kind of request.
type latency struct {
	MeanMS, P50MS, P99MS float64
}

// summarize turns the durations of one rep's requests into milliseconds.
func summarize(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		ms[i] = millis(d)
		sum += ms[i]
	}
	slices.Sort(ms)
	return latency{MeanMS: sum / float64(len(ms)), P50MS: percentile(ms, 50), P99MS: percentile(ms, 99)}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perSecond is a rate: n events in d.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// megabytesPerSecond is a throughput in MB/s, 1 MB being 10^6 bytes.
func megabytesPerSecond(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}
