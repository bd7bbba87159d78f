package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// CLIResult is the CLI's tree transfers measured beside the API's small
// writes, in the same reps on the same cluster: put -r of a tree of small
// files, sync of that tree unchanged, and a large file put twice.
type CLIResult struct {
	Files    int `json:"files"`
	Parallel int `json:"parallel"`
	// APIWritesPerSec is the small workload's write rate (SmallClients
	// clients writing 1 KiB files); PutTreeFilesPerSec the rate of
	// 'shoal put -r --parallel SmallClients' of the same number of such
	// files, and PutTreeRatio the one over the other, per rep.
	APIWritesPerSec    Figure `json:"api_writes_per_sec"`
	PutTreeFilesPerSec Figure `json:"put_tree_files_per_sec"`
	PutTreeRatio       Figure `json:"put_tree_ratio"`
	// SyncUnchangedSec is 'shoal sync' of the tree just put, with nothing
	// to copy: the time to compare both sides.
	SyncUnchangedSec Figure `json:"sync_unchanged_sec"`
	// LargeBytes is the size of the file put twice; LargeUploadSec the
	// first put, LargeReuploadSec the second, of the same bytes.
	LargeBytes       int64  `json:"large_bytes"`
	LargeUploadSec   Figure `json:"large_upload_sec"`
	LargeReuploadSec Figure `json:"large_reupload_sec"`
	// LargeAPISec is one streamed PUT of the same file through the API,
	// in the same reps; LargeUploadRatio the put's time over it.
	LargeAPISec      Figure `json:"large_api_sec"`
	LargeUploadRatio Figure `json:"large_upload_ratio"`
}

// runCLI measures the CLI: the binary run as a user runs it, against the
// cluster the other workloads measure.
func (e *env) runCLI(ctx context.Context) (*CLIResult, error) {
	bin := e.cfg.Binary
	if bin == "" {
		var err error
		if bin, err = osExecutable(); err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp(e.cfg.DataDir, "shoal-bench-cli-")
	if err != nil {
		return nil, fmt.Errorf("local files: %w", err)
	}
	defer os.RemoveAll(work)
	n := e.cfg.SmallFiles
	e.prog.start(fmt.Sprintf("cli: making a local tree of %d files and a file of %d bytes", n, e.cfg.CLILargeSize))
	tree := filepath.Join(work, "tree")
	for i := range n {
		p := filepath.Join(tree, fmt.Sprintf("d%03d", i/smallPerDir), fmt.Sprintf("f%06d", i))
		if i%smallPerDir == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(p, content(seedOf(7, uint64(i)), smallFileSize), 0o644); err != nil {
			return nil, err
		}
	}
	large := filepath.Join(work, "large")
	f, err := os.Create(large)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, newStream(seedOf(8), e.cfg.CLILargeSize))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("local large file: %w", err)
	}
	shoal := func(what string, args ...string) (time.Duration, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "SHOAL_ROUTER="+e.api, "SHOAL_CA="+e.creds.CA, "SHOAL_TOKEN="+e.creds.Token,
			"SHOAL_CREDENTIALS="+os.DevNull, "SHOAL_CLUSTER=")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("%s: shoal %v: %w: %s", what, args, err, bytes.TrimSpace(errb.Bytes()))
		}
		return time.Since(start), nil
	}

	var api, putTree, ratio, sync, upload, reupload, apiLarge, largeRatio []float64
	parallel := fmt.Sprint(e.cfg.SmallClients)
	for rep := range e.cfg.Reps {
		dir := fmt.Sprintf("%s/cli/r%d", e.root, rep)
		label := fmt.Sprintf("(%d files, rep %d/%d)", n, rep+1, e.cfg.Reps)
		e.prog.start("cli: API writes " + label)
		for d := range (n + smallPerDir - 1) / smallPerDir {
			if err := e.fs.MkdirAll(ctx, fmt.Sprintf("%s/api/d%03d", dir, d)); err != nil {
				return nil, err
			}
		}
		_, took, err := e.smallPhase(ctx, func(ctx context.Context, i int) error {
			b := content(seedOf(7, uint64(i)), smallFileSize)
			return e.fs.Put(ctx, fmt.Sprintf("%s/api/d%03d/f%06d", dir, i/smallPerDir, i), bytes.NewReader(b), int64(len(b)))
		})
		if err != nil {
			return nil, fmt.Errorf("API writes: %w", err)
		}
		api = append(api, perSecond(n, took))
		e.prog.start("cli: shoal put -r " + label)
		took, err = shoal("put -r", "put", "-r", "--quiet", "--parallel", parallel, tree, dir+"/tree")
		if err != nil {
			return nil, err
		}
		putTree = append(putTree, perSecond(n, took))
		ratio = append(ratio, putTree[rep]/api[rep])
		e.prog.start("cli: shoal sync of the unchanged tree " + label)
		if took, err = shoal("sync", "sync", "--quiet", "--parallel", parallel, tree, ":"+dir+"/tree"); err != nil {
			return nil, err
		}
		sync = append(sync, took.Seconds())
		e.prog.start("cli: API PUT of the large file " + label)
		lf, err := os.Open(large)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		err = e.fs.Put(ctx, dir+"/large-api", lf, e.cfg.CLILargeSize)
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("API PUT of the large file: %w", err)
		}
		apiLarge = append(apiLarge, time.Since(start).Seconds())
		e.prog.start("cli: shoal put of the large file, twice " + label)
		if took, err = shoal("put", "put", "--quiet", large, dir+"/large"); err != nil {
			return nil, err
		}
		upload = append(upload, took.Seconds())
		largeRatio = append(largeRatio, upload[rep]/apiLarge[rep])
		if took, err = shoal("put again", "put", "--quiet", large, dir+"/large"); err != nil {
			return nil, err
		}
		reupload = append(reupload, took.Seconds())
	}
	return &CLIResult{
		Files: n, Parallel: e.cfg.SmallClients,
		APIWritesPerSec: figureOf(api), PutTreeFilesPerSec: figureOf(putTree), PutTreeRatio: figureOf(ratio),
		SyncUnchangedSec: figureOf(sync),
		LargeBytes:       e.cfg.CLILargeSize, LargeUploadSec: figureOf(upload), LargeReuploadSec: figureOf(reupload),
		LargeAPISec: figureOf(apiLarge), LargeUploadRatio: figureOf(largeRatio),
	}, nil
}
