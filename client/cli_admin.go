package client

import (
	"errors"
	"fmt"
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
			minArgs:  0, maxArgs: 0, run: runWhoami, failCode: exitFail,
		}, true
	case "user":
		return command{
			synopsis: "add NAME [flags] | list | remove NAME | token rotate [NAME]",
			about: "Manage the cluster's users (admins only, but anyone may rotate their own token).\n" +
				"  add NAME      add a user, make its home /home/NAME (mode 0700) and print its\n" +
				"                token: it is shown this once, the cluster keeps only a hash\n" +
				"  list          list the users\n" +
				"  remove NAME   remove a user: its token stops working; its files stay\n" +
				"  token rotate  print a new token for NAME (default: yourself); the old one\n" +
				"                stops working",
			examples: []string{"shoal user add alice", "shoal user add build --uid 2000 --gid 2000 --groups 100,101",
				"shoal user add host-a --mount", "shoal user list", "shoal user token rotate alice", "shoal user remove alice"},
			minArgs: 1, maxArgs: 3, run: runUser, failCode: exitFail,
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
			minArgs:  1, maxArgs: 2, run: runKeyring, failCode: exitFail,
		}, true
	}
	return command{}, false
}

func runWhoami(s *session, _ []string) error {
	u, err := s.c.WhoAmI(s.ctx)
	if err != nil {
		return err
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
		fmt.Fprintf(s.stderr, "added user %s (uid %d, gid %d), home %s; its token (shown once):\n", u.Name, u.Uid, u.Gid, u.Home)
		fmt.Fprintln(s.stdout, u.Token)
		return nil
	case args[0] == "list" && len(args) == 1:
		us, err := s.c.Users(s.ctx)
		if err != nil {
			return err
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
		fmt.Fprintf(s.stderr, "new token of %s (shown once; the old one no longer works):\n", u.Name)
		fmt.Fprintln(s.stdout, u.Token)
		return nil
	}
	return errors.New("want: user add NAME, user list, user remove NAME, or user token rotate [NAME]; see 'shoal user --help'")
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
	if res.Errors > 0 {
		return fmt.Errorf("%d members failed the %s", res.Errors, op)
	}
	return nil
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
			printEntry(s.stdout, DirEntry{Name: name, Attr: f.Attr})
		}
		if next == 0 {
			return nil
		}
		after = next
	}
}
