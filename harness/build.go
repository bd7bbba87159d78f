package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// BinaryEnv names an environment variable that, when set, gives the shoal
// binary to test instead of building one: a build with -race, say.
const BinaryEnv = "SHOAL_E2E_BINARY"

// Build builds the shoal binary from the module the caller runs in, once,
// and hands out its path; a test package keeps one in a variable. The
// zero value is ready.
type Build struct {
	mu   sync.Mutex
	path string
}

// Path returns the binary BinaryEnv names, or the one Build made,
// building it (with CGO_ENABLED=0, into a new temporary directory) on the
// first call. A failed build is tried again on the next call.
func (b *Build) Path(ctx context.Context) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path != "" {
		return b.path, nil
	}
	dir, err := os.MkdirTemp("", "shoal-bin-")
	if err != nil {
		return "", fmt.Errorf("build shoal: %w", err)
	}
	path := filepath.Join(dir, "shoal")
	// The module's main package is named by the module path, so this
	// works from any directory of the module (a test runs in its own).
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "shoal")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build shoal: %w\n%s", err, out)
	}
	b.path = path
	return path, nil
}

// buildTimeout bounds a build started by For.
const buildTimeout = 10 * time.Minute

// For returns the binary for a test, building it first if need be, and
// fails t when it cannot be built within ten minutes.
func (b *Build) For(t TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	p, err := b.Path(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}
