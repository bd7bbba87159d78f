package secure

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Commands lists the offline subcommands that make secrets, for the
// top-level help.
var Commands = []struct{ Name, Summary string }{
	{"keygen", "print a new gossip or data key (--token: a new token)"},
	{"tls", "make a cluster CA and certificates: tls ca create, tls cert create"},
	{"secrets", "make every secret a cluster needs in one directory: secrets init DIR"},
}

const day = 24 * time.Hour

// Run executes subcommand name (keygen, tls or secrets) with args and
// returns the process exit code: 0, 1 when it failed, 2 for bad usage.
func Run(name string, args []string, stdout, stderr io.Writer) int {
	var err error
	switch name {
	case "keygen":
		err = keygen(args, stdout)
	case "tls":
		err = tlsCommand(args, stdout)
	case "secrets":
		err = secretsCommand(args, stdout)
	default:
		err = usageErr{fmt.Errorf("unknown command %q", name)}
	}
	switch {
	case err == nil || errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, new(usageErr)):
		fmt.Fprintf(stderr, "shoal %s: %v\n", name, err)
		return 2
	}
	fmt.Fprintf(stderr, "shoal %s: %v\n", name, err)
	return 1
}

// usageErr marks a mistake in the command line.
type usageErr struct{ error }

func (u usageErr) Unwrap() error { return u.error }

func flagSet(name, usage string, out io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s\n\nFlags:\n%s", usage, fs.FlagUsages())
	}
	return fs
}

func parse(fs *pflag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageErr{err}
	}
	if fs.NArg() > nargs {
		return usageErr{fmt.Errorf("unexpected argument %q", fs.Arg(nargs))}
	}
	return nil
}

func keygen(args []string, out io.Writer) error {
	fs := flagSet("shoal keygen", "shoal keygen [--token]\n\nPrints a new random key: a gossip key (--gossip-key) or a data key\n(--data-key-file). With --token, prints a new user token instead.", out)
	token := fs.Bool("token", false, "print a token (for --admin-token-file) instead of a key")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *token {
		fmt.Fprintln(out, NewToken())
	} else {
		fmt.Fprintln(out, NewKey())
	}
	return nil
}

func tlsCommand(args []string, out io.Writer) error {
	const usage = "shoal tls ca create [--dir DIR] [--days N]\n       shoal tls cert create --name NAME [--role node|router|client] [--ip IP]... [--dns NAME]..."
	if len(args) < 2 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintf(out, "Usage: %s\n", usage)
			return nil
		}
		return usageErr{fmt.Errorf("want 'ca create' or 'cert create'; usage: %s", usage)}
	}
	switch args[0] + " " + args[1] {
	case "ca create":
		return caCreate(args[2:], out)
	case "cert create":
		return certCreate(args[2:], out)
	}
	return usageErr{fmt.Errorf("unknown subcommand %q; usage: %s", args[0]+" "+args[1], usage)}
}

func caCreate(args []string, out io.Writer) error {
	fs := flagSet("shoal tls ca create", "shoal tls ca create [--dir DIR] [--days N]\n\nMakes the cluster's certificate authority: DIR/ca.pem (give it to every\nnode, router and client) and DIR/ca-key.pem (keep it secret and offline).", out)
	dir := fs.String("dir", ".", "directory to write ca.pem and ca-key.pem in")
	days := fs.Int("days", 3650, "days the CA is valid")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *days <= 0 {
		return usageErr{errors.New("--days must be positive")}
	}
	d := Dir(*dir)
	if exists(d.CA()) || exists(d.CAKey()) {
		return fmt.Errorf("%w: %s or %s (remove them first to make a new CA; every certificate must then be issued again)", ErrExists, d.CA(), d.CAKey())
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	c, k, err := NewCA("Shoal cluster CA", time.Duration(*days)*day)
	if err != nil {
		return err
	}
	if err := WriteNew(d.CAKey(), k, 0o600); err != nil {
		return err
	}
	if err := WriteNew(d.CA(), c, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s and %s\nnext: shoal tls cert create --name NAME --role node|router|client --dir %s\n", d.CA(), d.CAKey(), *dir)
	return nil
}

func certCreate(args []string, out io.Writer) error {
	fs := flagSet("shoal tls cert create", "shoal tls cert create --name NAME [--role node|router|client] [--ip IP]... [--dns NAME]...\n\n"+
		"Issues a certificate signed by the cluster CA: DIR/NAME.pem and DIR/NAME-key.pem.\n"+
		"The role is bound in the certificate: node for storage nodes, router for\n"+
		"routers (give --ip and --dns for every address clients use), client for mount\n"+
		"hosts whose users a token with the mount capability may act for.", out)
	name := fs.String("name", "", "the holder's name (required): file names and common name")
	roleName := fs.String("role", string(RoleNode), "node, router or client")
	ips := fs.StringSlice("ip", nil, "IP addresses clients reach the holder at")
	dns := fs.StringSlice("dns", nil, "DNS names clients reach the holder at")
	days := fs.Int("days", 730, "days the certificate is valid")
	dir := fs.String("dir", ".", "directory holding ca.pem and ca-key.pem, where the certificate is written")
	caFile := fs.String("ca", "", "CA certificate (default DIR/ca.pem)")
	caKeyFile := fs.String("ca-key", "", "CA private key (default DIR/ca-key.pem)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	role, err := ParseRole(*roleName)
	if err != nil {
		return usageErr{err}
	}
	if *name == "" || strings.ContainsAny(*name, `/\`) || *name == "ca" {
		return usageErr{errors.New("--name is required: a name for the holder, without slashes, other than ca")}
	}
	if *days <= 0 {
		return usageErr{errors.New("--days must be positive")}
	}
	req := CertRequest{Name: *name, Role: role, DNS: *dns, ValidFor: time.Duration(*days) * day}
	for _, s := range *ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return usageErr{fmt.Errorf("--ip %q is not an IP address", s)}
		}
		req.IPs = append(req.IPs, ip)
	}
	d := Dir(*dir)
	if *caFile == "" {
		*caFile = d.CA()
	}
	if *caKeyFile == "" {
		*caKeyFile = d.CAKey()
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("read the CA certificate: %w (make one with 'shoal tls ca create')", err)
	}
	caKey, err := os.ReadFile(*caKeyFile)
	if err != nil {
		return fmt.Errorf("read the CA key: %w", err)
	}
	c, k, err := IssueCert(caPEM, caKey, req)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(*dir, *name+".pem"), filepath.Join(*dir, *name+"-key.pem")
	if exists(certPath) || exists(keyPath) {
		return fmt.Errorf("%w: %s or %s", ErrExists, certPath, keyPath)
	}
	if err := WriteNew(keyPath, k, 0o600); err != nil {
		return err
	}
	if err := WriteNew(certPath, c, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s and %s (role %s, valid %d days)\n", certPath, keyPath, role, *days)
	return nil
}

func secretsCommand(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			args = []string{"init", "--help"}
		} else {
			return usageErr{errors.New("want 'secrets init DIR'")}
		}
	}
	fs := flagSet("shoal secrets init", "shoal secrets init DIR [--ip IP]... [--dns NAME]...\n\n"+
		"Makes, in DIR, every secret a cluster needs: a CA, a certificate for storage\n"+
		"nodes, one for routers (valid for localhost, 127.0.0.1 and the --ip and --dns\n"+
		"given), one for mount hosts, a gossip key, a data key and the first admin's\n"+
		"token. Files that exist are kept, so running it again is safe. Start every\n"+
		"server with --secrets DIR (or only the files its role needs).", out)
	ips := fs.StringSlice("ip", nil, "further IP addresses clients reach routers at")
	dns := fs.StringSlice("dns", nil, "further DNS names clients reach routers at")
	if err := parse(fs, args[1:], 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr{errors.New("want the directory: secrets init DIR")}
	}
	o := DefaultInitOptions()
	o.DNS = *dns
	for _, s := range *ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return usageErr{fmt.Errorf("--ip %q is not an IP address", s)}
		}
		o.IPs = append(o.IPs, ip)
	}
	made, err := Dir(fs.Arg(0)).Init(o)
	if err != nil {
		return err
	}
	if len(made) == 0 {
		fmt.Fprintf(out, "%s already holds every secret; nothing changed\n", fs.Arg(0))
		return nil
	}
	for _, p := range made {
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	return nil
}
