package client

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"shoal/api"
)

// lookupCommand returns the subcommand called name. It is a function rather
// than a table so that the package holds no state beyond Commands.
func lookupCommand(name string) (command, bool) {
	if cmd, ok := transferCommand(name); ok {
		return cmd, true
	}
	if cmd, ok := adminCommand(name); ok {
		return cmd, true
	}
	return namespaceCommand(name)
}

// transferCommand returns the subcommands that move file content.
func transferCommand(name string) (command, bool) {
	switch name {
	case "put":
		return command{
			synopsis: "[-r] LOCAL|- REMOTE",
			about: "Write the local file LOCAL, or stdin when LOCAL is -, to REMOTE, creating it or\n" +
				"replacing it. A REMOTE ending in / gets LOCAL's base name. The content streams;\n" +
				"it is never held in memory whole.\n" +
				"With -r, LOCAL is a directory copied with everything in it, as cp -r does: into\n" +
				"REMOTE/NAME when REMOTE is a directory, else as REMOTE. Files and directories keep\n" +
				"their mode and modification time, symlinks stay symlinks; FIFOs, sockets and\n" +
				"devices are skipped. An entry that fails is reported and the rest go on.\n" +
				"With --no-clobber a file already at REMOTE is not replaced: the put of it fails.\n" +
				"With --if-match, REMOTE is replaced only if it is still the version named (the\n" +
				"hash 'shoal stat' shows): a write in between makes the put fail, changing nothing.",
			examples: []string{"shoal put ./report.pdf /docs/report.pdf", "tar c photos | shoal put - /backup/photos.tar",
				"shoal put -r ./photos /backup/", "shoal put --no-clobber ./lock /jobs/lock || echo taken",
				"shoal put --content-type text/csv ./data /exports/data.csv"},
			minArgs: 2, maxArgs: 2, run: runPut, failCode: exitFail, json: true,
			flags: func(fs *pflag.FlagSet, s *session) {
				treeFlags("upload")(fs, s)
				fs.BoolVarP(&s.quiet, "quiet", "q", false, "show no progress line (it shows only on a terminal)")
				fs.BoolVarP(&s.put.IfAbsent, "no-clobber", "n", false, "never replace a file already there: its put fails")
				fs.StringVar(&s.put.IfMatch, "if-match", "", "replace REMOTE only if its hash (or ETag) is still this")
				fs.StringVar(&s.put.ContentType, "content-type", "", "the media type the file is served as (default: guessed from its name)")
			},
		}, true
	case "get":
		return command{
			synopsis: "[-r] REMOTE [LOCAL|-]",
			about: "Download the remote file REMOTE to LOCAL (default: REMOTE's base name in the\n" +
				"current directory; into it when LOCAL is a directory), or to stdout when LOCAL\n" +
				"is -. A download that fails leaves no file behind.\n" +
				"With -r, REMOTE is a directory copied with everything in it, as cp -r does: into\n" +
				"LOCAL/NAME when LOCAL is a directory, else as LOCAL. Files and directories keep\n" +
				"their mode and modification time, symlinks are made as symlinks.",
			examples: []string{"shoal get /docs/report.pdf", "shoal get /docs/report.pdf ~/Downloads/", "shoal get /logs/today.log - | grep ERROR",
				"shoal get -r /backup/photos ."},
			minArgs: 1, maxArgs: 2, run: runGet, failCode: exitFail, json: true,
			flags: func(fs *pflag.FlagSet, s *session) {
				treeFlags("download")(fs, s)
				fs.BoolVarP(&s.quiet, "quiet", "q", false, "show no progress line (it shows only on a terminal)")
			},
		}, true
	case "sync":
		return command{
			synopsis: "[--delete] [--dry-run] [--checksum] [--exclude GLOB]... SRC DST",
			about: "Make the tree DST a copy of the tree SRC, moving only what differs: a file whose\n" +
				"size and modification time match (with --checksum: whose size and content's\n" +
				"SHA-256 match, whatever its time, which is then copied) is left alone. Files, directories and symlinks keep their mode and time,\n" +
				"as rsync -a keeps them. A side in a cluster is written :/path, or NAME:/path for\n" +
				"a cluster named with 'shoal alias'; any other is a local directory. Both may be\n" +
				"in clusters (within one, files are copied without moving their bytes). Without\n" +
				"--delete nothing is removed from DST, and a name that is a file on one side and\n" +
				"a directory on the other is reported and left. An interrupted sync, run again,\n" +
				"finishes the job. A summary ends it (on stderr; with --json on stdout).\n" +
				"--exclude GLOB leaves out names matching it (a pattern with a / matches the path\n" +
				"from the root), on both sides: an excluded name in DST is not deleted.",
			examples: []string{"shoal sync ./photos :/backup/photos", "shoal sync --delete :/site ./site",
				"shoal sync --dry-run --delete --exclude '*.tmp' ./build prod:/releases/v2", "shoal sync prod:/data lab:/data"},
			minArgs: 2, maxArgs: 2, run: runSync, failCode: exitFail, json: true,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.BoolVar(&s.sync.delete, "delete", false, "remove from DST what SRC lacks, and replace what is of another type")
				fs.BoolVarP(&s.sync.dryRun, "dry-run", "n", false, "print what would change (one line each) and change nothing")
				fs.BoolVarP(&s.sync.checksum, "checksum", "c", false, "compare files of equal size by content, not time (reads every such local file)")
				fs.StringArrayVar(&s.sync.exclude, "exclude", nil, "leave out names matching this glob (repeatable)")
				fs.IntVar(&s.parallel, "parallel", defaultParallel, "files to copy at once")
				fs.BoolVarP(&s.quiet, "quiet", "q", false, "show no progress line and no summary")
			},
		}, true
	case "cat":
		return command{
			synopsis: "REMOTE...",
			about: "Print the content of the remote files to stdout, one after the other. A file named\n" +
				"twice is read once: the second time from the client's cache, once the cluster\n" +
				"confirms it is unchanged.",
			examples: []string{"shoal cat /etc/motd", "shoal cat /logs/a.log /logs/b.log"},
			minArgs:  1, maxArgs: -1, run: runCat, failCode: exitFail,
		}, true
	}
	return command{}, false
}

// namespaceCommand returns the subcommands that work on names and on the
// cluster.
func namespaceCommand(name string) (command, bool) {
	switch name {
	case "ls":
		return command{
			synopsis: "[REMOTE]",
			about: "List the remote directory REMOTE (default /), one entry per line: type (d for a\n" +
				"directory, - for a file), size in bytes, modification time (UTC), name. A REMOTE\n" +
				"with wildcards (*, ?, [...]; quote it from the shell) lists what it matches,\n" +
				"expanded by the cluster; \\ makes a wildcard a plain character.",
			examples: []string{"shoal ls", "shoal ls /docs", "shoal ls '/logs/*/*.gz'", "shoal ls --owner alice"},
			minArgs:  0, maxArgs: 1, run: runLs, failCode: exitFail, json: true,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.StringVar(&s.owner, "owner", "", "list every file the user NAME owns, wherever it is, instead of a directory")
			},
		}, true
	case "rm":
		return command{
			synopsis: "[-r] REMOTE...",
			about: "Delete remote files, and directories: empty ones, or any with -r. A REMOTE with\n" +
				"wildcards (*, ?, [...]; quote it from the shell) deletes what it matches, as the\n" +
				"cluster expands it; one that matches nothing is an error and deletes nothing.",
			examples: []string{"shoal rm /docs/old.txt", "shoal rm -r /tmp/build", "shoal rm '/logs/2024-*.gz'"},
			minArgs:  1, maxArgs: -1, run: runRm, failCode: exitFail,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.BoolVarP(&s.recursive, "recursive", "r", false, "delete directories and everything in them")
			},
		}, true
	case "cp":
		return command{
			synopsis: "SRC DST",
			about: "Copy the remote file, symlink or directory (with everything in it) SRC to DST.\n" +
				"Only metadata is written: the copy shares SRC's chunks, however large.",
			examples: []string{"shoal cp /docs/report.pdf /archive/report-2024.pdf", "shoal cp /projects/site /projects/site-v2"},
			minArgs:  2, maxArgs: 2, run: runCp, failCode: exitFail,
		}, true
	case "mv":
		return command{
			synopsis: "SRC DST",
			about:    "Rename or move the remote file or directory SRC to DST.",
			examples: []string{"shoal mv /docs/draft.txt /docs/final.txt", "shoal mv /tmp/build /releases/v1"},
			minArgs:  2, maxArgs: 2, run: runMv, failCode: exitFail,
		}, true
	case "find":
		return command{
			synopsis: "[REMOTE] [--name GLOB] [--type f|d|l] [--min-size N] [--max-size N] [--newer T] [--owner U]",
			about: "Print the paths under REMOTE (default /) that match every condition given, in\n" +
				"name order, one per line (--json: a JSON line each, with its attributes). The\n" +
				"cluster walks the tree; nothing but the matches travels. Sizes take suffixes\n" +
				"(10MiB, 1G); --newer takes a time (2024-05-01T12:00:00Z), a date (2024-05-01) or\n" +
				"how long ago (24h). Directories you may not read are passed over, and counted.",
			examples: []string{"shoal find /logs --name '*.gz' --newer 24h", "shoal find --type f --min-size 1GiB",
				"shoal find /home --owner alice --json | jq -r .path"},
			minArgs: 0, maxArgs: 1, run: runFind, failCode: exitFail, json: true,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.StringVar(&s.find.Name, "name", "", "base names matching this glob, like '*.log'")
				fs.StringVar(&s.find.Type, "type", "", "f (files), d (directories) or l (symlinks)")
				fs.StringVar(&s.findMin, "min-size", "", "files of at least this size")
				fs.StringVar(&s.findMax, "max-size", "", "files of at most this size")
				fs.StringVar(&s.findNewer, "newer", "", "modified after this time, date or long ago")
				fs.StringVar(&s.find.Owner, "owner", "", "owned by this user (name or uid)")
			},
		}, true
	case "tree":
		return command{
			synopsis: "[REMOTE] [-L DEPTH]",
			about: "Print the tree under REMOTE (default /), a name per line indented by its depth,\n" +
				"directories with a trailing /, then how many directories and files it holds.\n" +
				"The cluster walks it (as for find); directories you may not read are passed over.",
			examples: []string{"shoal tree /projects", "shoal tree -L 2 /"},
			minArgs:  0, maxArgs: 1, run: runTree, failCode: exitFail,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.IntVarP(&s.depth, "level", "L", 0, "descend at most this many levels (0: all)")
			},
		}, true
	case "stat":
		return command{
			synopsis: "REMOTE",
			about:    "Show the path, type, size, mode (octal), modification time and content hash of REMOTE.",
			examples: []string{"shoal stat /docs/report.pdf"},
			minArgs:  1, maxArgs: 1, run: runStat, failCode: exitFail, json: true,
		}, true
	case "exists":
		return command{
			synopsis: "REMOTE",
			about:    "Exit 0 if REMOTE exists, 1 if it does not, 2 if that cannot be told. Prints nothing on success.",
			examples: []string{"shoal exists /docs/report.pdf && echo present"},
			minArgs:  1, maxArgs: 1, run: runExists, failCode: exitUsage, json: true,
		}, true
	case "lock":
		return lockCommand(), true
	case "mkdir":
		return command{
			synopsis: "[-p] REMOTE...",
			about:    "Create remote directories. With -p, create missing parents too and accept existing directories.",
			examples: []string{"shoal mkdir /docs", "shoal mkdir -p /projects/2024/q1"},
			minArgs:  1, maxArgs: -1, run: runMkdir, failCode: exitFail,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.BoolVarP(&s.parents, "parents", "p", false, "create missing parents; an existing directory is not an error")
			},
		}, true
	case "status":
		return command{
			synopsis: "",
			about: "Show the cluster as the router sees it: each group (the one keeping the namespace\n" +
				"marked meta) with its primary, term, space and repair progress, each group's\n" +
				"members as its primary reports them, the standby pool, then every node as\n" +
				"gossip sees it. Exit codes: 0 healthy, 3 degraded (serving, with less\n" +
				"redundancy), 4 unavailable (cannot serve reads or writes), 1 the router could\n" +
				"not be asked.",
			examples: []string{"shoal status", "shoal status --router http://10.0.0.5:8080"},
			minArgs:  0, maxArgs: 0, run: runStatus, failCode: exitFail, json: true,
		}, true
	case "du":
		return command{
			synopsis: "[-s] [-h] [-d DEPTH] [REMOTE]...",
			about: "Show how many bytes each REMOTE (default /) holds at every depth below it,\n" +
				"after the same for its directories one level down (-d 2: two levels; -s: REMOTE alone).\n" +
				"The cluster keeps every directory's totals as the tree changes, so this reads\n" +
				"one number per directory shown and walks nothing. Sizes are the files' own\n" +
				"(apparent) sizes; a file with several names counts under each.",
			examples: []string{"shoal du -sh /projects", "shoal du -h /", "shoal du --json -s /home/alice"},
			minArgs:  0, maxArgs: -1, run: runDu, failCode: exitFail, json: true, shortH: true,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.BoolVarP(&s.summarize, "summarize", "s", false, "show each REMOTE alone, not its directories")
				fs.BoolVarP(&s.human, "human-readable", "h", false, "sizes in KiB, MiB, GiB... instead of bytes")
				fs.IntVarP(&s.depth, "max-depth", "d", 1, "show directories down to this many levels below REMOTE")
			},
		}, true
	case "df":
		return command{
			about: "Show the bytes of file content the cluster can hold, holds and can still take,\n" +
				"summed over its groups (each group's fullest member counts: every member keeps a\n" +
				"full copy), as the mount's statfs reports them. Size and free are \"unlimited\"\n" +
				"when a group's members publish no capacity.",
			examples: []string{"shoal df", "shoal df --bytes"},
			minArgs:  0, maxArgs: 0, run: runDf, failCode: exitFail, json: true,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.BoolVar(&s.bytes, "bytes", false, "sizes in bytes instead of KiB, MiB, GiB...")
			},
		}, true
	}
	return command{}, false
}

// treeFlags are the flags of put and get: -r and how many files move at
// once.
func treeFlags(verb string) func(*pflag.FlagSet, *session) {
	return func(fs *pflag.FlagSet, s *session) {
		fs.BoolVarP(&s.recursive, "recursive", "r", false, verb+" a directory and everything in it")
		fs.IntVar(&s.parallel, "parallel", defaultParallel, "with -r, files to "+verb+" at once")
	}
}

func runPut(s *session, args []string) error {
	local, remote := args[0], args[1]
	if s.recursive {
		if local == "-" {
			return errors.New("put -r copies a directory; stdin is not one")
		}
		if s.put.IfMatch != "" {
			return errors.New("--if-match names one file's version; it cannot go with -r")
		}
		return runPutTree(s, local, remote)
	}
	if local == "-" {
		if strings.HasSuffix(remote, "/") {
			return fmt.Errorf("%s: name the remote file: stdin has no name to append", remote)
		}
		st, _, err := s.c.PutWith(s.ctx, remote, s.stdin, -1, s.put)
		if err == nil && s.json {
			return s.printJSON(st)
		}
		return onPath(remote, err)
	}
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.IsDir() {
		return fmt.Errorf("%s is a directory; put writes one file", local)
	}
	size := info.Size()
	if !info.Mode().IsRegular() {
		size = -1 // a pipe or device: its size says nothing about its content
	}
	if strings.HasSuffix(remote, "/") {
		remote += filepath.Base(local)
	}
	p := s.newProgress("put")
	p.add(1, size)
	var st Stat
	if size < 0 {
		st, _, err = s.c.PutWith(s.ctx, remote, p.reader(f), size, s.put)
	} else {
		st, err = uploadFile(s.ctx, s.c, local, remote, s.put, p, false)
	}
	if err == nil {
		p.fileDone()
	}
	p.finish()
	if err == nil && s.json {
		return s.printJSON(st)
	}
	return onPath(remote, err)
}

func runGet(s *session, args []string) error {
	remote := args[0]
	local := path.Base(strings.TrimSuffix(remote, "/"))
	if len(args) == 2 {
		local = args[1]
	}
	if s.recursive {
		if local == "-" {
			return errors.New("get -r copies a directory; it cannot go to stdout")
		}
		if len(args) == 1 {
			local = "."
		}
		return runGetTree(s, remote, local)
	}
	if local == "-" {
		if s.json {
			return errors.New("--json prints a summary on stdout; it cannot go with a download to stdout")
		}
		return runCat(s, args[:1])
	}
	if info, err := os.Stat(local); err == nil && info.IsDir() {
		local = filepath.Join(local, path.Base(strings.TrimSuffix(remote, "/")))
	}
	if base := filepath.Base(local); base == "/" || base == "." || base == ".." {
		return fmt.Errorf("%s has no file name to save under; name the LOCAL file", remote)
	}
	body, info, err := s.c.Get(s.ctx, remote)
	if err != nil {
		return onPath(remote, err)
	}
	defer body.Close()
	p := s.newProgress("get")
	p.add(1, info.Size)
	err = saveFile(local, p.reader(body), info.Size, remote)
	if err == nil {
		p.fileDone()
	}
	p.finish()
	if err != nil || !s.json {
		return err
	}
	return s.printJSON(transferSummary{Files: 1, Bytes: info.Size})
}

// saveFile writes body to local through a temporary file in the same
// directory, renamed into place only once complete and synced, so that a
// failed or interrupted download leaves nothing behind (and does not
// clobber an existing file with half a new one).
func saveFile(local string, body io.Reader, size int64, remote string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".shoal-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, body)
	if err != nil || (size >= 0 && n != size) {
		return transferError(remote, n, size, err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	// CreateTemp makes the file private; a download gets the usual mode.
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), local)
}

// runCat reads each file through the library's File, so a file named
// twice comes from the client's cache the second time.
func runCat(s *session, args []string) error {
	for _, remote := range args {
		f, err := s.c.Open(s.ctx, remote)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return onPath(remote, err)
		}
		if f.typ == api.TypeDir {
			f.Close()
			return fmt.Errorf("%s: is a directory; list it instead of reading it (%s)", remote, api.CodeIsDir)
		}
		_, err = io.Copy(s.stdout, f)
		f.Close()
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return onPath(remote, err)
		}
	}
	return nil
}

// transferError explains a download that stopped after n of size bytes
// (size -1: unknown). A body cut short is the router's doing, and worth
// retrying; other errors speak for themselves.
func transferError(remote string, n, size int64, err error) error {
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return onPath(remote, err)
	}
	if size < 0 {
		return fmt.Errorf("%s: the router stopped sending after %d bytes; retry", remote, n)
	}
	return fmt.Errorf("%s: the router stopped sending after %d of %d bytes; retry", remote, n, size)
}

func runLs(s *session, args []string) error {
	if s.owner != "" {
		if len(args) > 0 {
			return fmt.Errorf("--owner lists the user's files wherever they are: give no directory")
		}
		return runLsOwner(s)
	}
	dir := "/"
	if len(args) == 1 {
		dir = args[0]
	}
	if hasWildcard(dir) {
		// A pattern lists its matches, as ls -d of the shell's expansion.
		matches, err := s.glob(dir)
		if err != nil {
			return err
		}
		entries := make([]DirEntry, len(matches))
		for i, m := range matches {
			entries[i] = DirEntry{Name: m.Path, Attr: m.Attr}
		}
		if s.json {
			return s.printJSON(Listing{Path: dir, Entries: entries})
		}
		for _, e := range entries {
			printEntry(s.stdout, e)
		}
		return nil
	}
	entries, err := s.c.List(s.ctx, dir)
	if errors.Is(err, ErrNotDir) {
		// Like ls(1), listing a file shows that file.
		st, err := s.c.Stat(s.ctx, dir)
		if err != nil {
			return onPath(dir, err)
		}
		entries = []DirEntry{{Name: dir, Attr: st.Attr}}
	} else if err != nil {
		return onPath(dir, err)
	}
	if s.json {
		return s.printJSON(Listing{Path: dir, Entries: entries})
	}
	for _, e := range entries {
		printEntry(s.stdout, e)
	}
	return nil
}

// printEntry writes one line of ls output.
func printEntry(w io.Writer, e DirEntry) {
	kind, name := '-', e.Name
	switch e.Type {
	case TypeDir:
		kind = 'd'
	case TypeSymlink:
		kind, name = 'l', name+" -> "+e.Target
	case TypeFIFO:
		kind = 'p'
	case TypeSocket:
		kind = 's'
	case TypeCharDev:
		kind = 'c'
	case TypeBlockDev:
		kind = 'b'
	}
	fmt.Fprintf(w, "%c %12d %s %s\n", kind, e.Size, e.MTime.UTC().Format(time.DateTime), name)
}

func runRm(s *session, args []string) error {
	// Like rm(1), one failure does not stop the rest; each is reported.
	for _, arg := range args {
		paths, err := s.expand(arg)
		if err != nil {
			s.fail(err)
			continue
		}
		for _, p := range paths {
			if err := s.c.Delete(s.ctx, p, s.recursive); err != nil {
				s.fail(onPath(p, err))
			}
		}
	}
	return nil
}

// expand is the remote paths arg names: itself, or what it matches when
// it holds a wildcard (expanded by the cluster). A pattern that matches
// nothing is an error.
func (s *session) expand(arg string) ([]string, error) {
	if !hasWildcard(arg) {
		return []string{arg}, nil
	}
	matches, err := s.glob(arg)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(matches))
	for i, m := range matches {
		paths[i] = m.Path
	}
	return paths, nil
}

// glob returns what the pattern p matches (expanded by the cluster). A
// pattern that matches nothing, or is no pattern ("a[" is unclosed), but
// names a path that exists as written ("a[1].txt") is that path, as a
// shell leaves such a word as it is; otherwise it is an error.
func (s *session) glob(p string) ([]Stat, error) {
	matches, err := s.c.Glob(s.ctx, p)
	if err == nil && len(matches) > 0 {
		return matches, nil
	}
	if err == nil || errors.Is(err, ErrInvalid) {
		if st, serr := s.c.Stat(s.ctx, p); serr == nil {
			return []Stat{st}, nil
		}
	}
	if err != nil {
		return nil, onPath(p, err)
	}
	return nil, fmt.Errorf("%s: no match", p)
}

// hasWildcard reports whether a remote path holds a glob wildcard.
func hasWildcard(p string) bool { return strings.ContainsAny(p, `*?[`) }

func runCp(s *session, args []string) error {
	return onPath(args[0]+" -> "+args[1], s.c.Copy(s.ctx, args[0], args[1]))
}

func runMv(s *session, args []string) error {
	return onPath(args[0]+" -> "+args[1], s.c.Rename(s.ctx, args[0], args[1]))
}

func runStat(s *session, args []string) error {
	st, err := s.c.Stat(s.ctx, args[0])
	if err != nil {
		return onPath(args[0], err)
	}
	if s.json {
		return s.printJSON(st)
	}
	hash := st.Hash
	if hash == "" {
		hash = "-"
	}
	fmt.Fprintf(s.stdout, "path:  %s\ntype:  %s\nsize:  %d\nmode:  %04o\nmtime: %s\nhash:  %s\n",
		st.Path, st.Type, st.Size, st.Mode, st.MTime.Format(time.RFC3339Nano), hash)
	if st.Target != "" {
		fmt.Fprintf(s.stdout, "target: %s\n", st.Target)
	}
	if st.ContentType != "" {
		fmt.Fprintf(s.stdout, "content-type: %s\n", st.ContentType)
	}
	fmt.Fprintf(s.stdout, "inode: %d\nlinks: %d\nowner: %d:%d\nctime: %s\n",
		st.Ino, st.Nlink, st.Uid, st.Gid, st.CTime.Format(time.RFC3339Nano))
	return nil
}

func runExists(s *session, args []string) error {
	ok, err := s.c.Exists(s.ctx, args[0])
	if err != nil {
		return onPath(args[0], err)
	}
	if s.json {
		if err := s.printJSON(struct {
			Path   string `json:"path"`
			Exists bool   `json:"exists"`
		}{args[0], ok}); err != nil {
			return err
		}
	}
	if !ok {
		return exitStatus(exitFail)
	}
	return nil
}

func runMkdir(s *session, args []string) error {
	for _, p := range args {
		if err := s.c.Mkdir(s.ctx, p, s.parents); err != nil {
			s.fail(onPath(p, err))
		}
	}
	return nil
}

// orDash shows an empty field as "-" so table columns stay aligned and
// "none" is visible.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runFind(s *session, args []string) error {
	q := s.find
	q.Path = "/"
	if len(args) == 1 {
		q.Path = args[0]
	}
	var err error
	if s.findMin != "" {
		if q.MinSize, err = parseSize(s.findMin); err != nil {
			return fmt.Errorf("--min-size: %w", err)
		}
	}
	if s.findMax != "" {
		n, err := parseSize(s.findMax)
		if err != nil {
			return fmt.Errorf("--max-size: %w", err)
		}
		q.MaxSize = &n
	}
	if s.findNewer != "" {
		if q.Newer, err = api.ParseWhen(s.findNewer, time.Now()); err != nil {
			return fmt.Errorf("--newer %q: %w", s.findNewer, err)
		}
	}
	denied := 0
	for after := ""; ; {
		page, err := s.c.Search(s.ctx, q, after)
		if err != nil {
			return onPath(q.Path, err)
		}
		denied += page.Denied
		for _, m := range page.Matches {
			if s.json {
				err = s.printJSONLine(m)
			} else {
				_, err = fmt.Fprintln(s.stdout, m.Path)
			}
			if err != nil {
				return err
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if denied > 0 {
		fmt.Fprintf(s.stderr, "shoal find: %d directories passed over: you may not read them\n", denied)
	}
	return nil
}

// parseSize reads a byte count: digits, with K, M, G or T (powers of
// 1024, with or without iB/B after them).
func parseSize(v string) (int64, error) {
	num := strings.TrimRight(v, "KMGTkmgtiB")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a byte count like 4096, 10MiB or 2G", v)
	}
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(v[len(num):], "B"), "i"))
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	if !ok || n > (1<<63-1)>>sh {
		return 0, fmt.Errorf("%q: want a byte count like 4096, 10MiB or 2G", v)
	}
	return n << sh, nil
}

func runTree(s *session, args []string) error {
	root := "/"
	if len(args) == 1 {
		root = path.Clean("/" + args[0])
	}
	if s.depth < 0 {
		return fmt.Errorf("-L %d: give a depth of 1 or more, or 0 for all", s.depth)
	}
	fmt.Fprintln(s.stdout, root)
	base := strings.Count(strings.TrimSuffix(root, "/"), "/")
	var dirs, files int
	denied := 0
	for after := ""; ; {
		page, err := s.c.Search(s.ctx, SearchQuery{Path: root, Depth: s.depth}, after)
		if err != nil {
			return onPath(root, err)
		}
		denied += page.Denied
		for _, m := range page.Matches {
			depth := strings.Count(m.Path, "/") - base
			name := path.Base(m.Path)
			switch m.Type {
			case TypeDir:
				dirs++
				name += "/"
			case TypeSymlink:
				files++
				name += " -> " + m.Target
			default:
				files++
			}
			fmt.Fprintf(s.stdout, "%s%s\n", strings.Repeat("  ", depth), name)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	fmt.Fprintf(s.stdout, "\n%d directories, %d files\n", dirs, files)
	if denied > 0 {
		fmt.Fprintf(s.stderr, "shoal tree: %d directories passed over: you may not read them\n", denied)
	}
	return nil
}
