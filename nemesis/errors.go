package nemesis

import "errors"

// Errors of the checker. Callers test them with errors.Is.
var (
	// ErrBadHistory: the history cannot be checked as given (an end
	// without its invocation, an unknown operation, a modelled path that
	// is a directory of another); fix the code that recorded it.
	ErrBadHistory = errors.New("malformed history")
	// ErrNotLinearizable: no order of the operations, consistent with
	// their real-time order, explains every answer. Write the report
	// (CheckResult.WriteReport) and read the visualisation.
	ErrNotLinearizable = errors.New("history is not linearizable")
	// ErrCheckTimeout: the checker gave up before deciding; give it more
	// time or record a shorter history (fewer clients, fewer unknown
	// operations).
	ErrCheckTimeout = errors.New("linearizability check timed out")
)
