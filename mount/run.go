package mount

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RunConfig is what 'shoal mount' runs.
type RunConfig struct {
	Dir   string
	Mount Config
	// Foreground serves in this process until unmounted or signalled.
	// Otherwise the mount is served by a copy of this program started
	// in the background with Relaunch as its arguments, and Run returns
	// once that copy has mounted (or failed to).
	Foreground bool
	Relaunch   []string
	// LogFile receives the background copy's logs ("": discarded).
	LogFile string
}

// notifyEnv names the file descriptor a background mount reports on: a
// line "ok", or the error that stopped it.
const notifyEnv = "SHOAL_MOUNT_NOTIFY_FD"

// readyWait bounds how long Run waits for the background copy to mount.
const readyWait = time.Minute

// Run mounts the cluster at cfg.Dir, in the background unless
// cfg.Foreground. In the foreground it serves until ctx ends (SIGINT or
// SIGTERM), then unmounts: lazily, if a program still uses the mount.
func Run(ctx context.Context, cfg RunConfig) error {
	if cfg.Dir == "" {
		return errors.New("mount: name the directory to mount on")
	}
	if !cfg.Foreground {
		return background(cfg)
	}
	notify := notifier()
	mt, err := Mount(ctx, cfg.Dir, cfg.Mount)
	if err != nil {
		notify(err)
		return err
	}
	notify(nil)
	cfg.Mount.Logger.Info("mounted", "dir", cfg.Dir, "router", cfg.Mount.Client.Router())
	done := make(chan struct{})
	go func() {
		mt.Wait()
		close(done)
	}()
	select {
	case <-done:
		cfg.Mount.Logger.Info("unmounted from outside", "dir", cfg.Dir)
		return nil
	case <-ctx.Done():
	}
	if err := mt.Unmount(); err != nil {
		cfg.Mount.Logger.Warn("the mount is busy; detaching it lazily: programs using it keep it until they let go", "dir", cfg.Dir, "err", err)
		if err := Unmount(cfg.Dir, true); err != nil {
			return err
		}
	}
	<-done
	cfg.Mount.Logger.Info("unmounted", "dir", cfg.Dir)
	return nil
}

// notifier returns the function that tells a waiting parent how mounting
// went; a no-op in a mount started in the foreground by a person.
func notifier() func(error) {
	fd, err := strconv.Atoi(os.Getenv(notifyEnv))
	if err != nil {
		return func(error) {}
	}
	os.Unsetenv(notifyEnv)
	w := os.NewFile(uintptr(fd), "notify")
	return func(err error) {
		if err == nil {
			fmt.Fprintln(w, "ok")
		} else {
			fmt.Fprintln(w, strings.ReplaceAll(err.Error(), "\n", " "))
		}
		w.Close()
	}
}

// background starts the mount in a copy of this program, in a session of
// its own, and waits for it to report.
func background(cfg RunConfig) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("mount: find this program to start it in the background: %w (or use --foreground)", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(self, cfg.Relaunch...) // no log file: stderr is /dev/null
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			w.Close()
			return fmt.Errorf("mount: --log: %w", err)
		}
		defer f.Close()
		cmd.Stderr = f
	}
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), notifyEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("mount: start in the background: %w", err)
	}
	w.Close()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s == "ok" {
			return cmd.Process.Release()
		}
		cmd.Wait()
		if s == "" {
			s = "the background mount exited without saying why (run with --foreground to see its log)"
		}
		return errors.New(s)
	case <-time.After(readyWait):
		cmd.Process.Kill()
		return fmt.Errorf("mount: not mounted after %v (run with --foreground to see why)", readyWait)
	}
}

// IsMounted reports whether dir is a Shoal mount now, from the kernel's
// table of this process's mounts.
func IsMounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// id parent maj:min root mountpoint options... - fstype source ...
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && fields[4] == dir && strings.Contains(s.Text(), " - fuse.shoal ") {
			return true
		}
	}
	return false
}

// Unmount unmounts the FUSE file system at dir with fusermount3 (or
// fusermount); lazy detaches it even while programs use it.
func Unmount(dir string, lazy bool) error {
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	args = append(args, dir)
	var lastErr error
	for _, prog := range []string{"fusermount3", "fusermount"} {
		path, err := exec.LookPath(prog)
		if err != nil {
			lastErr = err
			continue
		}
		out, err := exec.Command(path, args...).CombinedOutput()
		if err == nil {
			return nil
		}
		return fmt.Errorf("unmount %s: %s: %s", dir, prog, strings.TrimSpace(string(out)))
	}
	// Without fusermount, root can unmount directly.
	flags := 0
	if lazy {
		flags = syscall.MNT_DETACH
	}
	if err := syscall.Unmount(dir, flags); err != nil {
		return fmt.Errorf("unmount %s: %w (and no fusermount3: %v; install fuse3)", dir, err, lastErr)
	}
	return nil
}
