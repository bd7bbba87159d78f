package nemesis

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Net is a set of hosts, each a network namespace with its own address on
// one bridge, so that a partition is a real one: packets between two
// hosts are dropped by the kernel (a blackhole route in the sender's
// namespace), and an isolated host's link is down. It needs root and
// iproute2, and uses only addresses inside the namespaces it makes.
//
// Layout, for prefix P and subnet 10.99.K.0/24:
//
//	bridge Pbr (10.99.K.254 in the root namespace, for the test's client)
//	host i: namespace Pi, veth Pia (on the bridge) <-> eth0 (10.99.K.i+1)
type Net struct {
	prefix string
	subnet string
	bridge string
	Hosts  []*Host
	// fw lists the iptables commands that let the bridge forward, to be
	// undone: a Docker engine sets the FORWARD policy to DROP, and with
	// br_netfilter loaded that applies to bridged packets too.
	fw [][]string

	mu    sync.Mutex
	cuts  map[[2]int]bool // blackholed from → to
	down  map[int]bool
	drops map[[2]int]bool // host index, port: dropped by DropPort
}

// Host is one network namespace of a Net.
type Host struct {
	Index int
	NS    string
	veth  string
	IP    string
}

// NewNet makes n hosts on subnet 10.99.k.0/24 with names starting with
// prefix (at most 6 characters: interface names are short).
func NewNet(prefix string, k, n int) (*Net, error) {
	if len(prefix) > 6 || n > 200 {
		return nil, fmt.Errorf("nemesis: prefix %q too long or %d hosts too many", prefix, n)
	}
	nt := &Net{prefix: prefix, subnet: fmt.Sprintf("10.99.%d", k), bridge: prefix + "br",
		cuts: map[[2]int]bool{}, down: map[int]bool{}, drops: map[[2]int]bool{}}
	ok := false
	defer func() {
		if !ok {
			nt.Close()
		}
	}()
	// A run that was killed leaves its namespaces and links behind:
	// remove any of ours before making them again.
	for i := range n {
		run("ip", "netns", "del", fmt.Sprintf("%s%d", prefix, i))
		run("ip", "link", "del", fmt.Sprintf("%s%da", prefix, i))
	}
	run("ip", "link", "del", nt.bridge)
	if err := run("ip", "link", "add", nt.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "addr", "add", nt.subnet + ".254/24", "dev", nt.bridge},
		{"ip", "link", "set", nt.bridge, "up"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return nil, err
		}
	}
	nt.allowForwarding()
	for i := range n {
		h := &Host{Index: i, NS: fmt.Sprintf("%s%d", prefix, i), veth: fmt.Sprintf("%s%da", prefix, i),
			IP: fmt.Sprintf("%s.%d", nt.subnet, i+1)}
		peer := fmt.Sprintf("%s%db", prefix, i)
		steps := [][]string{
			{"ip", "netns", "add", h.NS},
			{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", peer},
			{"ip", "link", "set", h.veth, "master", nt.bridge, "up"},
			{"ip", "link", "set", peer, "netns", h.NS},
			{"ip", "-n", h.NS, "link", "set", peer, "name", "eth0"},
			{"ip", "-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
			{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
			{"ip", "-n", h.NS, "link", "set", "lo", "up"},
		}
		for _, s := range steps {
			if err := run(s...); err != nil {
				return nil, err
			}
		}
		nt.Hosts = append(nt.Hosts, h)
	}
	ok = true
	return nt, nil
}

// allowForwarding accepts packets in and out of the bridge in every
// iptables flavour present; failures are ignored (no iptables, no need).
func (nt *Net) allowForwarding() {
	for _, bin := range []string{"iptables", "iptables-legacy"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		for _, dir := range []string{"-i", "-o"} {
			rule := []string{"FORWARD", dir, nt.bridge, "-j", "ACCEPT"}
			if run(append([]string{bin, "-I"}, rule...)...) == nil {
				nt.fw = append(nt.fw, append([]string{bin, "-D"}, rule...))
			}
		}
	}
}

// Close removes the namespaces, links, bridge and firewall rules.
func (nt *Net) Close() error {
	var errs []error
	for _, h := range nt.Hosts {
		if err := run("ip", "netns", "del", h.NS); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range nt.fw {
		run(r...)
	}
	run("ip", "link", "del", nt.bridge)
	return errors.Join(errs...)
}

// Gateway is the root namespace's address on the bridge: a client in the
// test process reaches the hosts through it.
func (nt *Net) Gateway() string { return nt.subnet + ".254" }

// Command returns a command that runs inside h's namespace.
func (nt *Net) Command(h *Host, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Cut drops every packet from a to b (one direction).
func (nt *Net) Cut(a, b *Host) error {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.cuts[[2]int{a.Index, b.Index}] {
		return nil
	}
	if err := run("ip", "-n", a.NS, "route", "add", "blackhole", b.IP+"/32"); err != nil {
		return err
	}
	nt.cuts[[2]int{a.Index, b.Index}] = true
	return nil
}

// Partition cuts every link between the two sides, both ways.
func (nt *Net) Partition(side1, side2 []*Host) error {
	for _, a := range side1 {
		for _, b := range side2 {
			if err := nt.Cut(a, b); err != nil {
				return err
			}
			if err := nt.Cut(b, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// Isolate takes h's link down: nobody, the test's client included,
// reaches it.
func (nt *Net) Isolate(h *Host) error {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if err := run("ip", "link", "set", h.veth, "down"); err != nil {
		return err
	}
	nt.down[h.Index] = true
	return nil
}

// portRules are the iptables rules, in h's namespace, that drop every
// packet to or from port, TCP and UDP.
func portRules(port int) [][]string {
	var rules [][]string
	p := fmt.Sprint(port)
	for _, proto := range []string{"udp", "tcp"} {
		for _, r := range [][]string{{"INPUT", "--dport"}, {"INPUT", "--sport"}, {"OUTPUT", "--dport"}, {"OUTPUT", "--sport"}} {
			rules = append(rules, []string{r[0], "-p", proto, r[1], p, "-j", "DROP"})
		}
	}
	return rules
}

// DropPort drops, inside h, every packet to or from port: one service of
// the host (its gossip, say) falls silent while the others go on.
func (nt *Net) DropPort(h *Host, port int) error {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.drops[[2]int{h.Index, port}] {
		return nil
	}
	for _, r := range portRules(port) {
		if err := run(append([]string{"ip", "netns", "exec", h.NS, "iptables", "-I"}, r...)...); err != nil {
			return err
		}
	}
	nt.drops[[2]int{h.Index, port}] = true
	return nil
}

// Heal removes every cut and dropped port and brings every link up.
func (nt *Net) Heal() error {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	var errs []error
	for c := range nt.cuts {
		a, b := nt.Hosts[c[0]], nt.Hosts[c[1]]
		if err := run("ip", "-n", a.NS, "route", "del", "blackhole", b.IP+"/32"); err != nil {
			errs = append(errs, err)
		}
		delete(nt.cuts, c)
	}
	for d := range nt.drops {
		for _, r := range portRules(d[1]) {
			if err := run(append([]string{"ip", "netns", "exec", nt.Hosts[d[0]].NS, "iptables", "-D"}, r...)...); err != nil {
				errs = append(errs, err)
			}
		}
		delete(nt.drops, d)
	}
	for i := range nt.down {
		if err := run("ip", "link", "set", nt.Hosts[i].veth, "up"); err != nil {
			errs = append(errs, err)
		}
		delete(nt.down, i)
	}
	return errors.Join(errs...)
}

// Available reports why namespaces cannot be made here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("iproute2 (ip) is not installed")
	}
	return nil
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
