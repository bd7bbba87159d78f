package nemesis

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the checker's answer about a history.
type Verdict string

// The verdicts.
const (
	VerdictOK      Verdict = "ok"      // linearizable
	VerdictIllegal Verdict = "illegal" // not linearizable: a bug
	VerdictUnknown Verdict = "unknown" // the check timed out before deciding
)

// never is the return time of an operation whose outcome is unknown: after
// every event, so it may be linearized at any point after its invocation,
// including never (after everything else).
const never = math.MaxInt64

// CheckResult is the outcome of Check. Ops counts the operations the
// checker used (reads with no answer and operations that definitely
// failed constrain nothing, and are left out); Partitions counts the
// independent sets of paths they were checked in.
type CheckResult struct {
	Verdict    Verdict
	Ops        int
	Partitions int

	events  []Event
	ops     []porcupine.Operation
	timeout time.Duration
}

func (r CheckResult) String() string {
	return fmt.Sprintf("%s (%d operations in %d partitions)", r.Verdict, r.Ops, r.Partitions)
}

// Check decides whether a history is linearizable with respect to the file
// namespace model (see model.go), within timeout (0: no limit). It returns
// an error (ErrBadHistory) only when the history cannot be checked; the
// verdict is in the result. An invocation without an end counts as unknown.
//
// Cost: checking is NP-hard, and what makes it slow here is mutations with
// an unknown outcome that never took effect: each stays a candidate until
// the end of the history, so a partition with k of them may explore 2^k
// orders. Keep that k small per partition (a part with 15 took seconds,
// one with 20 did not finish in minutes): spread the operations over many
// independent paths, or move clients to fresh paths every few hundred
// operations and every few unknown outcomes, as Jepsen's independent keys
// do (see keyspace in the campaign). Four
// clients doing 600 operations over three partitions, one in twenty with
// an unknown outcome, check in milliseconds; eight clients doing 2,000 can
// take more than 20 seconds.
func Check(events []Event, timeout time.Duration) (CheckResult, error) {
	ops, err := toOperations(events)
	if err != nil {
		return CheckResult{}, err
	}
	r := CheckResult{Ops: len(ops), Partitions: len(partition(ops)),
		events: events, ops: ops, timeout: timeout}
	switch porcupine.CheckOperationsTimeout(newModel(), ops, timeout) {
	case porcupine.Ok:
		r.Verdict = VerdictOK
	case porcupine.Illegal:
		r.Verdict = VerdictIllegal
	default:
		r.Verdict = VerdictUnknown
	}
	return r, nil
}

// WriteReport writes into dir (made if missing) the raw history as JSON
// (history.json, one event per line) and porcupine's interactive
// visualisation (linearizability.html: per partition, the longest partial
// linearizations and where they get stuck). It re-runs the check in
// verbose mode, with Check's timeout, so call it when the verdict is
// worth a look: illegal, or unknown. It returns the files written.
func (r CheckResult) WriteReport(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nemesis report: %w", err)
	}
	hist := filepath.Join(dir, "history.json")
	if err := writeHistory(hist, r.events); err != nil {
		return nil, err
	}
	model := newModel()
	_, info := porcupine.CheckOperationsVerbose(model, r.ops, r.timeout)
	html := filepath.Join(dir, "linearizability.html")
	if err := porcupine.VisualizePath(model, info, html); err != nil {
		return []string{hist}, fmt.Errorf("nemesis report: visualisation %s: %w", html, err)
	}
	return []string{hist, html}, nil
}

func writeHistory(path string, events []Event) error {
	var b strings.Builder
	b.WriteString("[\n")
	for i, e := range events {
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("nemesis report: event %d: %w", e.ID, err)
		}
		b.Write(line)
		if i < len(events)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("nemesis report: %w", err)
	}
	return nil
}

// toOperations pairs each invocation with its end and turns the pairs into
// porcupine operations, in invocation order. Ends need not be in order;
// an invocation with no end, or ended with EventUnknown, returns never.
func toOperations(events []Event) ([]porcupine.Operation, error) {
	invoked := map[int]Event{}
	ended := map[int]Event{}
	var order []int
	paths := map[string]bool{}
	for _, e := range events {
		if e.Kind != EventInvoke {
			continue
		}
		if _, dup := invoked[e.ID]; dup {
			return nil, fmt.Errorf("%w: operation %d invoked twice", ErrBadHistory, e.ID)
		}
		if err := validOp(e.Op); err != nil {
			return nil, fmt.Errorf("%w: operation %d: %v", ErrBadHistory, e.ID, err)
		}
		invoked[e.ID] = e
		order = append(order, e.ID)
		for _, p := range e.Op.paths() {
			paths[p] = true
		}
	}
	for _, e := range events {
		switch e.Kind {
		case EventInvoke:
			continue
		case EventComplete, EventUnknown:
		default:
			return nil, fmt.Errorf("%w: operation %d: event kind %q (want invoke, complete or unknown)", ErrBadHistory, e.ID, e.Kind)
		}
		call, ok := invoked[e.ID]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: operation %d ends but was never invoked", ErrBadHistory, e.ID)
		case ended[e.ID].Kind != "":
			return nil, fmt.Errorf("%w: operation %d ends twice", ErrBadHistory, e.ID)
		case e.Time < call.Time:
			return nil, fmt.Errorf("%w: operation %d ends at %d, before its invocation at %d", ErrBadHistory, e.ID, e.Time, call.Time)
		}
		ended[e.ID] = e
	}
	if err := filesOnly(paths); err != nil {
		return nil, err
	}
	ops := make([]porcupine.Operation, 0, len(order))
	for _, id := range order {
		call, end := invoked[id], ended[id]
		o := porcupine.Operation{ClientId: call.Client, Input: call.Op, Call: call.Time, Metadata: id}
		if end.Kind != EventComplete {
			if call.Op.Kind == OpRead || call.Op.Kind == OpExists {
				continue // an unanswered read observed nothing and changed nothing
			}
			o.Output, o.Return = output{unknown: true}, never
			ops = append(ops, o)
			continue
		}
		res, err := normalResult(call.Op.Kind, end.Result)
		if err != nil {
			return nil, fmt.Errorf("%w: operation %d: %v", ErrBadHistory, id, err)
		}
		if res.Status == StatusFailed {
			continue // took no effect and observed nothing
		}
		o.Output, o.Return = output{res: res}, end.Time
		ops = append(ops, o)
	}
	return ops, nil
}

func validOp(op Op) error {
	switch op.Kind {
	case OpWrite, OpRead, OpDelete, OpExists:
	case OpRename, OpCopy:
		if op.To == "" {
			return fmt.Errorf("%s of %q has no destination", op.Kind, op.Path)
		}
	default:
		return fmt.Errorf("operation kind %q is not one of write, read, delete, exists, rename, copy", op.Kind)
	}
	if op.Path == "" {
		return fmt.Errorf("%s has no path", op.Kind)
	}
	return nil
}

// normalResult checks that res is an answer op can give, and reads an
// Exists answered not_found (a HEAD's 404) as Present(false).
func normalResult(kind OpKind, res Result) (Result, error) {
	switch res.Status {
	case StatusOK, StatusFailed:
		return res, nil
	case StatusNotFound:
		switch kind {
		case OpExists:
			return Present(false), nil
		case OpWrite:
			return res, fmt.Errorf("write cannot answer not_found: record a definite error as Failed")
		}
		return res, nil
	}
	return res, fmt.Errorf("status %q is not ok, not_found or failed", res.Status)
}

// filesOnly refuses a modelled path that is a directory of another: the
// model knows files only, and a write below a file fails in Shoal.
func filesOnly(paths map[string]bool) error {
	for p := range paths {
		for i := len(p) - 1; i > 0; i-- {
			if p[i] == '/' && paths[p[:i]] {
				return fmt.Errorf("%w: %q is below %q; the model covers files only, so use paths that are not each other's directories", ErrBadHistory, p, p[:i])
			}
		}
	}
	return nil
}
