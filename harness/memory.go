package harness

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// errNotRunning: the process is not running.
var errNotRunning = errors.New("process is not running")

// PeakRSS returns the most memory p has held resident since it started or
// since ResetPeakRSS, in bytes (Linux: VmHWM in /proc/PID/status).
func (p *Proc) PeakRSS() (int64, error) {
	kb, err := p.procField("status", "VmHWM:")
	return kb << 10, err
}

// PidWriteBytes returns the bytes the process pid has caused to be sent
// to storage since it started (Linux: write_bytes in /proc/PID/io,
// readable by its owner or root; it needs the kernel's task I/O
// accounting). The kernel counts a page when the process dirties it, so rewriting a dirty page counts once, data
// deleted before it reached the disk still counts, and the file system's
// own journal writes do not; files on tmpfs count nothing.
func PidWriteBytes(pid int) (int64, error) { return pidField(pid, "io", "write_bytes:") }

// clockTicks is the unit of the CPU times in /proc/PID/stat: Linux
// reports them in USER_HZ, 100 a second on x86, arm and the other
// architectures Go builds this project for.
const clockTicks = 100

// PidCPUTime returns the CPU time the process pid and all its threads
// have used since it started, in user and kernel mode together (Linux:
// utime and stime in /proc/PID/stat, to a hundredth of a second).
func PidCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPUTime(string(b))
}

// parseCPUTime reads utime and stime, fields 14 and 15, from a line of
// /proc/PID/stat. The command (field 2) is in parentheses and may hold
// spaces and parentheses itself, so fields are counted from its last ')'.
func parseCPUTime(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: no CPU times in %q", stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: a CPU time of %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// procField reads the number after name in /proc/PID/file, without a
// trailing "kB".
func (p *Proc) procField(file, name string) (int64, error) {
	pid := p.Pid()
	if pid <= 0 {
		return 0, fmt.Errorf("%s of %s: %w", strings.TrimSuffix(name, ":"), p.Name, errNotRunning)
	}
	return pidField(pid, file, name)
}

// pidField is procField for the process pid.
func pidField(pid int, file, name string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/%s: %s %q: %w", pid, file, name, rest, err)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/%s has no %s", pid, file, strings.TrimSuffix(name, ":"))
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
