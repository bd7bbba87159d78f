package client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// adminCommand returns the subcommands about users and keys.
func adminCommand(name string) (command, bool) {
	switch name {
	case "whoami":
		return command{
			about:    "Show the user your token belongs to: name, uid, gid, groups and rights.",
			examples: []string{"shoal whoami"},
			minArgs:  0, maxArgs: 0, run: runWhoami, failCode: exitFail, json: true,
		}, true
	case "user":
		return command{
			synopsis: "add NAME [flags] | list | remove NAME | token rotate [NAME] | key add|list [NAME] | key remove [NAME] ID",
			about: "Manage the cluster's users (admins only, but anyone may rotate their own token).\n" +
				"  add NAME      add a user, make its home /home/NAME (mode 0700) and print its\n" +
				"                token: it is shown this once, the cluster keeps only a hash\n" +
				"  list          list the users\n" +
				"  remove NAME   remove a user: its token stops working; its files stay\n" +
				"  token rotate  print a new token for NAME (default: yourself); the old one\n" +
				"                stops working\n" +
				"  key add       make an S3 access key for NAME (default: yourself) and print its\n" +
				"                ID and secret: the secret is shown this once\n" +
				"  key list      list NAME's access keys (IDs only)\n" +
				"  key remove    remove an access key: requests signed with it fail",
			examples: []string{"shoal user add alice", "shoal user add build --uid 2000 --gid 2000 --groups 100,101",
				"shoal user add host-a --mount", "shoal user list", "shoal user token rotate alice", "shoal user key add alice", "shoal user key list",
				"shoal user key remove alice SHABCDEFGHIJKLMNOPQR", "shoal user remove alice"},
			minArgs: 1, maxArgs: 4, run: runUser, failCode: exitFail, json: true,
			flags: func(fs *pflag.FlagSet, s *session) {
				fs.StringVar(&s.user.uid, "uid", "", "add: the user's uid (default: the lowest free from 1000)")
				fs.StringVar(&s.user.gid, "gid", "", "add: the user's primary gid (default: its uid)")
				fs.UintSliceVar(&s.user.groups, "groups", nil, "add: supplementary gids, comma separated")
				fs.BoolVar(&s.user.admin, "admin", false, "add: make the user an admin (root in permission checks; manages users and keys)")
				fs.BoolVar(&s.user.mount, "mount", false, "add: let the user's token act for a mount host's users (with that host's certificate)")
			},
		}, true
	case "keyring":
		return command{
			synopsis: "list | install KEY | use KEY | remove KEY",
			about: "Change the gossip encryption keys of the running cluster (admins only). To rotate:\n" +
				"install a new key (from 'shoal keygen') everywhere, use it, then remove the old\n" +
				"one; storage nodes keep the keyring in their data directory, and routers need\n" +
				"the new key in --gossip-key-file before they restart.",
			examples: []string{"shoal keyring list", "shoal keyring install $(shoal keygen)"},
			minArgs:  1, maxArgs: 2, run: runKeyring, failCode: exitFail, json: true,
		}, true
	case "alias":
		return command{
			synopsis: "set NAME URL [--ca FILE] [--token TOKEN|-] | list | remove NAME",
			about: "Name the clusters you use, as mc aliases or rclone remotes do, in the credentials\n" +
				"file ($SHOAL_CREDENTIALS, else ~/.config/shoal/credentials); then any command\n" +
				"reaches one with --cluster NAME or $SHOAL_CLUSTER. A named cluster's router, CA\n" +
				"and token come from its entry alone (flags still win), never from the\n" +
				"environment, whose token may be another cluster's.\n" +
				"  set NAME URL  add or replace NAME: its router, with --ca and --token (--token -\n" +
				"                reads it from stdin, keeping it out of the shell's history)\n" +
				"  list          list the named clusters and the default one (tokens hidden)\n" +
				"  remove NAME   forget NAME",
			examples: []string{"shoal alias set prod https://shoal.example.com:8080 --ca prod-ca.pem --token - < prod.token",
				"shoal --cluster prod ls /", "SHOAL_CLUSTER=prod shoal status", "shoal alias list"},
			minArgs: 1, maxArgs: 3, run: runAlias, failCode: exitFail, json: true, offline: true,
		}, true
	}
	return command{}, false
}

func runWhoami(s *session, _ []string) error {
	u, err := s.c.WhoAmI(s.ctx)
	if err != nil {
		return err
	}
	if s.json {
		return s.printJSON(u)
	}
	printUsers(s, []User{u})
	return nil
}

func runUser(s *session, args []string) error {
	switch {
	case args[0] == "add" && len(args) == 2:
		nu := NewUser{Name: args[1], Admin: s.user.admin, Mount: s.user.mount}
		for _, f := range []struct {
			name, v string
			dst     **uint32
		}{{"--uid", s.user.uid, &nu.Uid}, {"--gid", s.user.gid, &nu.Gid}} {
			if f.v == "" {
				continue
			}
			id, err := strconv.ParseUint(f.v, 10, 32)
			if err != nil {
				return fmt.Errorf("%s %q: want a number from 0 to %d", f.name, f.v, uint32(0xffffffff))
			}
			v := uint32(id)
			*f.dst = &v
		}
		for _, g := range s.user.groups {
			nu.Groups = append(nu.Groups, uint32(g))
		}
		u, err := s.c.AddUser(s.ctx, nu)
		if err != nil {
			return onPath(args[1], err)
		}
		if s.json {
			return s.printJSON(u)
		}
		fmt.Fprintf(s.stderr, "added user %s (uid %d, gid %d), home %s; its token (shown once):\n", u.Name, u.Uid, u.Gid, u.Home)
		fmt.Fprintln(s.stdout, u.Token)
		return nil
	case args[0] == "list" && len(args) == 1:
		us, err := s.c.Users(s.ctx)
		if err != nil {
			return err
		}
		if s.json {
			return s.printJSON(us)
		}
		printUsers(s, us)
		return nil
	case args[0] == "remove" && len(args) == 2:
		return onPath(args[1], s.c.RemoveUser(s.ctx, args[1]))
	case args[0] == "token" && len(args) >= 2 && args[1] == "rotate":
		name := ""
		if len(args) == 3 {
			name = args[2]
		} else {
			me, err := s.c.WhoAmI(s.ctx)
			if err != nil {
				return err
			}
			name = me.Name
		}
		u, err := s.c.RotateToken(s.ctx, name)
		if err != nil {
			return onPath(name, err)
		}
		if s.json {
			return s.printJSON(u)
		}
		fmt.Fprintf(s.stderr, "new token of %s (shown once; the old one no longer works):\n", u.Name)
		fmt.Fprintln(s.stdout, u.Token)
		return nil
	case args[0] == "key" && len(args) >= 2:
		return runUserKey(s, args[1:])
	}
	return errors.New("want: user add NAME, user list, user remove NAME, user token rotate [NAME], or user key add|list|remove; see 'shoal user --help'")
}

// runUserKey is 'user key add|list [NAME]' and 'user key remove [NAME] ID'.
func runUserKey(s *session, args []string) error {
	op, rest := args[0], args[1:]
	if op == "remove" && len(rest) == 1 || op != "remove" && len(rest) == 0 {
		me, err := s.c.WhoAmI(s.ctx)
		if err != nil {
			return err
		}
		rest = append([]string{me.Name}, rest...)
	}
	switch {
	case op == "add" && len(rest) == 1:
		k, err := s.c.AddAccessKey(s.ctx, rest[0])
		if err != nil {
			return onPath(rest[0], err)
		}
		if s.json {
			return s.printJSON(k)
		}
		fmt.Fprintf(s.stderr, "new S3 access key of %s (the secret is shown once; the cluster keeps it sealed):\n", k.User)
		fmt.Fprintf(s.stdout, "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", k.ID, k.Secret)
		return nil
	case op == "list" && len(rest) == 1:
		ks, err := s.c.AccessKeys(s.ctx, rest[0])
		if err != nil {
			return onPath(rest[0], err)
		}
		if s.json {
			return s.printJSON(ks)
		}
		tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCESS KEY ID\tCREATED")
		for _, k := range ks {
			fmt.Fprintf(tw, "%s\t%s\n", k.ID, k.Created.UTC().Format(time.DateTime))
		}
		return tw.Flush()
	case op == "remove" && len(rest) == 2:
		return onPath(rest[0], s.c.RemoveAccessKey(s.ctx, rest[0], rest[1]))
	}
	return errors.New("want: user key add [NAME], user key list [NAME], or user key remove [NAME] ID")
}

// printUsers writes a table of users.
func printUsers(s *session, us []User) {
	sort.Slice(us, func(i, j int) bool { return us[i].Name < us[j].Name })
	tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUID\tGID\tGROUPS\tRIGHTS\tCREATED")
	for _, u := range us {
		var rights []string
		if u.Admin {
			rights = append(rights, "admin")
		}
		if u.Mount {
			rights = append(rights, "mount")
		}
		gs := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			gs[i] = fmt.Sprint(g)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", u.Name, u.Uid, u.Gid, orDash(strings.Join(gs, ",")),
			orDash(strings.Join(rights, ",")), u.Created.UTC().Format(time.DateTime))
	}
	tw.Flush()
}

func runKeyring(s *session, args []string) error {
	op := args[0]
	switch {
	case op == "list" && len(args) == 1:
	case (op == "install" || op == "use" || op == "remove") && len(args) == 2:
	default:
		return errors.New("want: keyring list, or keyring install|use|remove KEY")
	}
	key := ""
	if len(args) == 2 {
		key = args[1]
	}
	res, err := s.c.Keyring(s.ctx, op, key)
	if err != nil {
		return err
	}
	if s.json {
		if err := s.printJSON(res); err != nil {
			return err
		}
	} else {
		printKeyring(s, res)
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d members failed the %s", res.Errors, op)
	}
	return nil
}

// printKeyring writes what the members answered of their keyrings.
func printKeyring(s *session, res KeyringResult) {
	fmt.Fprintf(s.stdout, "%d of %d members answered, %d failed\n", res.Responses, res.Nodes, res.Errors)
	keys := make([]string, 0, len(res.Keys))
	for k := range res.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(s.stdout, "%s  held by %d, in use by %d\n", k, res.Keys[k], res.Primary[k])
	}
	for node, msg := range res.Messages {
		if msg != "" {
			fmt.Fprintf(s.stdout, "%s: %s\n", node, msg)
		}
	}
}

// runLsOwner lists every inode the user owns, a page at a time.
func runLsOwner(s *session) error {
	var after uint64
	for {
		files, next, err := s.c.Owned(s.ctx, s.owner, after, 1000)
		if err != nil {
			return onPath(s.owner, err)
		}
		for _, f := range files {
			name := f.Path
			if name == "" {
				name = fmt.Sprintf("(inode %d, open but unlinked)", f.Ino)
			}
			if s.json {
				if err := s.printJSONLine(f); err != nil {
					return err
				}
				continue
			}
			printEntry(s.stdout, DirEntry{Name: name, Attr: f.Attr})
		}
		if next == 0 {
			return nil
		}
		after = next
	}
}

// aliasEntry is one line of alias list.
type aliasEntry struct {
	Name   string `json:"name"` // "" for the default cluster
	Router string `json:"router,omitempty"`
	CA     string `json:"ca,omitempty"`
	Token  bool   `json:"token"` // whether a token is kept (never printed)
}

func runAlias(s *session, args []string) error {
	path := CredentialsPath(s.getenv)
	if path == "" {
		return errors.New("no credentials file: set $SHOAL_CREDENTIALS or $HOME")
	}
	f, err := ReadCredentialsFile(path)
	if err != nil {
		return err
	}
	const header = "Shoal's credentials: the default cluster, then named ones ('shoal alias').\nKeep this file private: it holds tokens."
	switch {
	case args[0] == "set" && len(args) == 3:
		name, router := args[1], args[2]
		if !validClusterName(name) {
			return fmt.Errorf("cluster name %q: use letters, digits, '-', '_' and '.' (at most 64)", name)
		}
		if _, err := parseRouters(router); err != nil {
			return err
		}
		c := Credentials{Cluster: name, Router: router, Token: s.given.Token, Cert: s.given.Cert, Key: s.given.Key}
		if s.given.Router != "" {
			return errors.New("give the router as URL, not --router")
		}
		if c.Token == "-" {
			line, err := bufio.NewReader(s.stdin).ReadString('\n')
			if c.Token = strings.TrimSpace(line); c.Token == "" {
				if err != nil && err != io.EOF {
					return fmt.Errorf("--token -: reading the token from stdin: %w", err)
				}
				return errors.New("--token -: stdin holds no token: pipe one in, e.g. echo $TOKEN | shoal alias set ...")
			}
		}
		if s.given.CA != "" {
			// A relative path would name another file from elsewhere.
			if c.CA, err = filepath.Abs(s.given.CA); err != nil {
				return err
			}
			if _, err := os.Stat(c.CA); err != nil {
				return fmt.Errorf("--ca: %w", err)
			}
		}
		f.Set(c)
		if err := f.Write(path, header); err != nil {
			return err
		}
		fmt.Fprintf(s.stderr, "cluster %s is %s; reach it with --cluster %s\n", name, router, name)
		return nil
	case args[0] == "list" && len(args) == 1:
		var list []aliasEntry
		if f.Default != (Credentials{}) {
			list = append(list, aliasEntry{Router: f.Default.Router, CA: f.Default.CA, Token: f.Default.Token != ""})
		}
		for _, c := range f.Clusters {
			list = append(list, aliasEntry{Name: c.Cluster, Router: c.Router, CA: c.CA, Token: c.Token != ""})
		}
		if s.json {
			if list == nil {
				list = []aliasEntry{}
			}
			return s.printJSON(list)
		}
		tw := tabwriter.NewWriter(s.stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROUTER\tCA\tTOKEN")
		for _, e := range list {
			name, token := e.Name, "-"
			if name == "" {
				name = "(default)"
			}
			if e.Token {
				token = "kept"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, orDash(e.Router), orDash(e.CA), token)
		}
		return tw.Flush()
	case args[0] == "remove" && len(args) == 2:
		if !f.Remove(args[1]) {
			return fmt.Errorf("no cluster %q in %s", args[1], path)
		}
		return f.Write(path, header)
	}
	return errors.New("want: alias set NAME URL, alias list, or alias remove NAME; see 'shoal alias --help'")
}
