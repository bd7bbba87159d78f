package harness

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// errNotRunning: the process is not running.
var errNotRunning = errors.New("process is not running")

// PeakRSS returns the most memory p has held resident since it started or
// since ResetPeakRSS, in bytes (Linux: VmHWM in /proc/PID/status).
func (p *Proc) PeakRSS() (int64, error) {
	pid := p.Pid()
	if pid <= 0 {
		return 0, fmt.Errorf("peak memory of %s: %w", p.Name, errNotRunning)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: VmHWM %q: %w", pid, rest, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// ResetPeakRSS starts a new peak for PeakRSS at what p holds now (writing
// 5 to /proc/PID/clear_refs: Linux 4.0 or later, and p's owner or root).
func (p *Proc) ResetPeakRSS() error {
	pid := p.Pid()
	if pid <= 0 {
		return fmt.Errorf("reset the peak memory of %s: %w", p.Name, errNotRunning)
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
