package nemesis

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestCheckSavedHistory re-checks a history a campaign saved
// (history.json in its report directory), one independent part at a
// time, saying how large each part is and how long it took: the way to
// settle an inconclusive verdict with more time, or to see which part is
// hard. SHOAL_NEMESIS_HISTORY names the file; SHOAL_NEMESIS_CHECK_TIME
// bounds each part (a Go duration, 10m by default).
func TestCheckSavedHistory(t *testing.T) {
	path := os.Getenv("SHOAL_NEMESIS_HISTORY")
	if path == "" {
		t.Skip("SKIPPED: SHOAL_NEMESIS_HISTORY is not set; give it a history.json a campaign saved to re-check it")
	}
	limit := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("SHOAL_NEMESIS_CHECK_TIME")); err == nil && d > 0 {
		limit = d
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	if err := json.Unmarshal(raw, &events); err != nil {
		t.Fatalf("%s is not a saved history: %v", path, err)
	}
	ops, err := toOperations(events)
	if err != nil {
		t.Fatal(err)
	}
	model := newModel()
	model.Partition = nil
	for i, part := range partition(ops) {
		unknown := 0
		for _, o := range part {
			if o.Output.(output).unknown {
				unknown++
			}
		}
		start := time.Now()
		verdict := porcupine.CheckOperationsTimeout(model, part, limit)
		t.Logf("part %d (%s, ...): %d operations, %d with an unknown outcome: %s in %v",
			i, part[0].Input.(Op).Path, len(part), unknown, verdict, time.Since(start).Round(time.Millisecond))
		if verdict == porcupine.Illegal {
			t.Errorf("part %d is not linearizable", i)
		}
	}
}
