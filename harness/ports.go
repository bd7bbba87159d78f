package harness

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
)

// Ports hands out ports of 127.0.0.1 that were free for both TCP and UDP
// (gossip uses both) a moment ago, and never the same one twice. They are
// taken below the kernel's ephemeral range (32768-60999 on Linux): a port
// from there, found free and closed, could be taken by anything that
// binds port 0 or connects out (a --metrics 127.0.0.1:0 endpoint, a
// client's socket) before the process it was meant for binds it. Share
// one between the clusters of a process. The zero value is ready.
type Ports struct {
	mu    sync.Mutex
	given map[int]bool
	next  int
}

// The ports handed out: [lowPort, lowPort+lowSpan), below the ephemeral
// range. Each test binary starts at an offset scattered from its process
// ID (see startOffset), so binaries running side by side, whose IDs are
// often consecutive, start far apart and seldom try the same ones.
const (
	lowPort = 10000
	lowSpan = 22000
)

// startOffset scatters a process ID over [0, lowSpan): each next ID
// moves the start by lowSpan over the golden ratio, so IDs up to 15 apart
// start at least 700 ports apart (the three-distance theorem).
func startOffset(pid int) int { return int(uint64(pid) * 13597 % lowSpan) }

// Free returns one port.
func (p *Ports) Free() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == 0 {
		p.next = lowPort + startOffset(os.Getpid())
	}
	for range lowSpan {
		port := p.next
		if p.next++; p.next >= lowPort+lowSpan {
			p.next = lowPort
		}
		if p.given[port] || !freeTCP(port) || !freeUDP(port) {
			continue
		}
		p.mark(port)
		return port, nil
	}
	return 0, fmt.Errorf("no free port on 127.0.0.1 from %d to %d", lowPort, lowPort+lowSpan-1)
}

// Block returns the first of n consecutive ports, for a process that
// takes a base port and counts up from it ('shoal dev --port-base').
func (p *Ports) Block(n int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := os.Getpid() * 7919
	for i := range lowSpan / 97 {
		base := lowPort + (start+i*97)%(lowSpan-n)
		ok := true
		for port := base; port < base+n && ok; port++ {
			ok = !p.given[port] && freeTCP(port) && freeUDP(port)
		}
		if ok {
			for port := base; port < base+n; port++ {
				p.mark(port)
			}
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports on 127.0.0.1 from %d to %d", n, lowPort, lowPort+lowSpan-1)
}

func (p *Ports) mark(port int) {
	if p.given == nil {
		p.given = map[int]bool{}
	}
	p.given[port] = true
}

func freeTCP(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func freeUDP(port int) bool {
	u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	u.Close()
	return true
}
