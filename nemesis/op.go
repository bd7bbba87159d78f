package nemesis

// OpKind names a file operation of the HTTP API that a history records.
type OpKind string

// The operations the checker models. Each acts on whole files.
const (
	OpWrite  OpKind = "write"  // PUT: create or replace Path with Value
	OpRead   OpKind = "read"   // GET: Path's content
	OpDelete OpKind = "delete" // DELETE: remove Path
	OpExists OpKind = "exists" // HEAD: is Path present
	OpRename OpKind = "rename" // POST op=rename: move Path to To, replacing To
	OpCopy   OpKind = "copy"   // POST op=copy: copy Path to To, replacing To
)

// Op is one operation a client invokes. Path is the file (for Rename and
// Copy, the source); To is the destination of Rename and Copy; Value is
// the content Write stores.
type Op struct {
	Kind  OpKind `json:"kind"`
	Path  string `json:"path"`
	To    string `json:"to,omitempty"`
	Value string `json:"value,omitempty"`
}

// Write is PUT path with content value.
func Write(path, value string) Op { return Op{Kind: OpWrite, Path: path, Value: value} }

// Read is GET path.
func Read(path string) Op { return Op{Kind: OpRead, Path: path} }

// Delete is DELETE path.
func Delete(path string) Op { return Op{Kind: OpDelete, Path: path} }

// Exists is HEAD path.
func Exists(path string) Op { return Op{Kind: OpExists, Path: path} }

// Rename moves from to to, replacing to.
func Rename(from, to string) Op { return Op{Kind: OpRename, Path: from, To: to} }

// Copy copies from to to, replacing to and keeping from.
func Copy(from, to string) Op { return Op{Kind: OpCopy, Path: from, To: to} }

// paths lists the files op touches: one, or two for Rename and Copy.
func (op Op) paths() []string {
	if op.Kind == OpRename || op.Kind == OpCopy {
		return []string{op.Path, op.To}
	}
	return []string{op.Path}
}

// Status is how an operation with a known outcome ended.
type Status string

// The outcomes. An operation whose outcome is not known (a timeout, a
// connection cut, a 5xx that may have come after the commit) has no
// Status: record it with Pending.Unknown, never as StatusFailed.
const (
	// StatusOK: the operation took effect (Write, Delete, Rename, Copy)
	// or answered (Read found a file, Exists answered Present).
	StatusOK Status = "ok"
	// StatusNotFound: the operation happened and observed its path (the
	// source, for Rename and Copy) absent: 404 not_found. For Delete,
	// Rename and Copy that is a real result, not a failure: it says the
	// file was absent at the operation's linearization point.
	StatusNotFound Status = "not_found"
	// StatusFailed: a definite error that guarantees the operation took
	// no effect and observed nothing (400, 409, 413, 507). The checker
	// trusts it: if a failed write's value is read later, the history is
	// illegal.
	StatusFailed Status = "failed"
)

// Result is the answer an operation got. Value is Read's content (with
// StatusOK); Present is Exists' answer (with StatusOK); Reason says why
// an operation failed, for the report.
type Result struct {
	Status  Status `json:"status"`
	Value   string `json:"value,omitempty"`
	Present bool   `json:"present,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// OK is the success of Write, Delete, Rename or Copy.
func OK() Result { return Result{Status: StatusOK} }

// NotFound is the answer of Read, Delete, Rename or Copy on an absent path.
func NotFound() Result { return Result{Status: StatusNotFound} }

// Found is a Read that returned value.
func Found(value string) Result { return Result{Status: StatusOK, Value: value} }

// Present is Exists' answer.
func Present(present bool) Result { return Result{Status: StatusOK, Present: present} }

// Failed is a definite error: the operation took no effect.
func Failed(reason string) Result { return Result{Status: StatusFailed, Reason: reason} }
