package client

import (
	"context"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// completeTimeout bounds what completing a remote path may wait for the
// router: a shell waits on it with the user's cursor.
const completeTimeout = 2 * time.Second

// Completion is what a shell should offer for the word being typed.
type Completion struct {
	Words []string // the candidates, each a whole word
	// Files: offer local file names instead (the shell's own completion).
	Files bool
}

// Complete returns the completions of the last of args, the words typed
// after the client subcommand name (the last may be empty: a new word).
// Flags complete from the command's flag set, remote paths by listing
// their directory on the router the typed flags, the environment and the
// credentials file name (bounded by completeTimeout; nothing on failure),
// and local paths by the shell.
func Complete(name string, args []string, getenv func(string) string) Completion {
	cmd, ok := lookupCommand(name)
	if !ok || len(args) == 0 {
		return Completion{}
	}
	cur, typed := args[len(args)-1], args[:len(args)-1]
	s := &session{name: name}
	var given Credentials
	fs, _ := s.flagSet(cmd, &given)
	if strings.HasPrefix(cur, "-") {
		return Completion{Words: FlagWords(fs, cur)}
	}
	// The flag the word is the value of, if any.
	if n := len(typed); n > 0 && strings.HasPrefix(typed[n-1], "-") && !strings.Contains(typed[n-1], "=") {
		if f := lookupFlag(fs, typed[n-1]); f != nil && f.NoOptDefVal == "" {
			return Completion{Files: f.Name == "ca"}
		}
	}
	_ = fs.Parse(typed) // what was typed so far: the router to ask, -r
	pos := fs.Args()
	switch name {
	case "user":
		if len(pos) == 0 {
			return Completion{Words: WithPrefix([]string{"add", "list", "remove", "token"}, cur)}
		}
		if len(pos) == 1 && pos[0] == "token" {
			return Completion{Words: WithPrefix([]string{"rotate"}, cur)}
		}
		return Completion{}
	case "keyring":
		if len(pos) == 0 {
			return Completion{Words: WithPrefix([]string{"list", "install", "use", "remove"}, cur)}
		}
		return Completion{}
	case "whoami", "status", "df":
		return Completion{}
	case "put":
		if len(pos) == 0 {
			return Completion{Files: true}
		}
	case "get":
		if len(pos) == 1 {
			return Completion{Files: true}
		}
	}
	if cmd.maxArgs >= 0 && len(pos) >= cmd.maxArgs {
		return Completion{}
	}
	return Completion{Words: s.remotePaths(given, cur, getenv)}
}

// remotePaths lists the remote names that complete cur: the entries of
// its directory, a directory's with a trailing slash.
func (s *session) remotePaths(given Credentials, cur string, getenv func(string) string) []string {
	if !strings.HasPrefix(cur, "/") {
		return []string{"/"}
	}
	dir := cur[:strings.LastIndexByte(cur, '/')+1]
	creds, _, err := ResolveCredentials(given, getenv)
	if err != nil {
		return nil
	}
	cfg, err := creds.Config()
	if err != nil {
		return nil
	}
	cfg.Timeout, cfg.Retry503 = completeTimeout, time.Nanosecond
	c, err := New(cfg)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
	defer cancel()
	if schemeless(creds.Router) {
		c = plainIfAsked(ctx, c, cfg)
	}
	entries, err := c.List(ctx, dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		p := path.Join(dir, e.Name)
		if e.Type == TypeDir {
			p += "/"
		}
		if strings.HasPrefix(p, cur) {
			out = append(out, p)
		}
	}
	return out
}

// FlagWords lists the flags of fs that complete cur, long and short.
func FlagWords(fs *pflag.FlagSet, cur string) []string {
	var out []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		out = append(out, "--"+f.Name)
		if f.Shorthand != "" {
			out = append(out, "-"+f.Shorthand)
		}
	})
	slices.Sort(out)
	return WithPrefix(out, cur)
}

// lookupFlag finds the flag a word like --router or -r names.
func lookupFlag(fs *pflag.FlagSet, word string) *pflag.Flag {
	if name, ok := strings.CutPrefix(word, "--"); ok {
		return fs.Lookup(name)
	}
	if short := strings.TrimPrefix(word, "-"); len(short) == 1 {
		return fs.ShorthandLookup(short)
	}
	return nil
}

// WithPrefix keeps the words that start with prefix.
func WithPrefix(words []string, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}
