package harness

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
)

// Ports hands out ports of 127.0.0.1 that were free for both TCP and UDP
// (gossip uses both) a moment ago, and never the same one twice: the
// kernel may offer a closed port again before the process it was meant
// for binds it. Share one between the clusters of a process. The zero
// value is ready.
type Ports struct {
	mu    sync.Mutex
	given map[int]bool
}

// Free returns one port.
func (p *Ports) Free() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p.given[port] || !freeUDP(port) {
			continue
		}
		p.mark(port)
		return port, nil
	}
	return 0, fmt.Errorf("no free port on 127.0.0.1 after 200 tries")
}

// Block returns the first of n consecutive ports, for a process that
// takes a base port and counts up from it ('shoal dev --port-base').
// Bases are tried from one derived from the process ID, so that test
// binaries running side by side seldom try the same ones.
func (p *Ports) Block(n int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for base := 20000 + os.Getpid()%20000; base+n <= 60000; base += 97 {
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
	return 0, fmt.Errorf("no %d consecutive free ports on 127.0.0.1", n)
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
