package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// maxPacket is the largest UDP payload there is; a read needs a buffer
// this size to be sure a packet is never cut short.
const maxPacket = 65536

// udpRecvBuffer is the socket receive buffer asked for, so bursts of
// gossip wait in the kernel rather than being dropped (memberlist's own
// transport asks for the same).
const udpRecvBuffer = 2 << 20

// transport carries memberlist's packets over UDP and its streams over
// TCP on one address, as memberlist's NetTransport does, with one
// difference: each UDP packet is read into a buffer kept for the next
// read and handed on as a copy of just its bytes. NetTransport gives every
// packet a fresh 64 KiB buffer; an idle `shoal dev` cluster of nine nodes
// receives about 200 packets a second, so that was 13 MB/s of garbage and
// a third of the cluster's idle CPU spent collecting it.
type transport struct {
	tcp     *net.TCPListener
	udp     *net.UDPConn
	packets chan *memberlist.Packet
	streams chan net.Conn
	closing atomic.Bool
	done    chan struct{} // closed by Shutdown: nobody may be reading the channels
	stop    sync.Once
	wg      sync.WaitGroup
	logger  *slog.Logger
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

// listen opens the TCP and UDP sockets on host:port and starts reading
// them. With port 0 the kernel picks a TCP port and the UDP socket takes
// the same number; another process can take that UDP port in between, so
// that case is tried a few times.
func listen(host string, port int, logger *slog.Logger) (*transport, error) {
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("gossip: bind address %q is not an IP address", host)
	}
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var t *transport
		if t, err = listenOnce(ip, port, logger); err == nil {
			t.wg.Add(2)
			go t.acceptStreams()
			go t.readPackets()
			return t, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, err
}

func listenOnce(ip net.IP, port int, logger *slog.Logger) (*transport, error) {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("gossip: listen on TCP %s: %w", net.JoinHostPort(ip.String(), fmt.Sprint(port)), err)
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("gossip: listen on UDP %s: %w", net.JoinHostPort(ip.String(), fmt.Sprint(port)), err)
	}
	for size := udpRecvBuffer; size > 0; size /= 2 {
		if udp.SetReadBuffer(size) == nil {
			break
		}
	}
	return &transport{
		tcp:     tcp,
		udp:     udp,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
		logger:  logger,
	}, nil
}

// port is the port both sockets listen on.
func (t *transport) port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr is the address peers are told to reach this node on:
// the one configured, else the address bound, else (bound to every
// interface) this host's private address, as memberlist's own transport
// chooses.
func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		addr := net.ParseIP(ip)
		if addr == nil {
			return nil, 0, fmt.Errorf("gossip: advertise address %q is not an IP address", ip)
		}
		if v4 := addr.To4(); v4 != nil {
			addr = v4
		}
		return addr, port, nil
	}
	bound := t.tcp.Addr().(*net.TCPAddr).IP
	if !bound.IsUnspecified() {
		return bound, t.port(), nil
	}
	private, err := sockaddr.GetPrivateIP()
	if err != nil {
		return nil, 0, fmt.Errorf("gossip: find this host's address: %w", err)
	}
	addr := net.ParseIP(private)
	if addr == nil {
		return nil, 0, errors.New("gossip: no private IP address found: set an advertise address")
	}
	return addr, t.port(), nil
}

// WriteTo sends one packet.
func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends one packet. Peers' addresses are IP:port, parsed
// without allocating; anything else is resolved.
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if ap, err := netip.ParseAddrPort(a.Addr); err == nil {
		_, err = t.udp.WriteToUDPAddrPort(b, ap)
		return time.Now(), err
	}
	ua, err := net.ResolveUDPAddr("udp", a.Addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteTo(b, ua)
	return time.Now(), err
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", a.Addr)
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes both sockets and waits for the readers to stop. A
// packet or connection that nobody will read any more (memberlist never
// started, or stopped) is dropped. Calling it again does nothing.
func (t *transport) Shutdown() error {
	t.stop.Do(func() {
		t.closing.Store(true)
		close(t.done)
		t.tcp.Close()
		t.udp.Close()
	})
	t.wg.Wait()
	return nil
}

// readPackets hands each UDP packet to memberlist, stamped with the time
// it was read (memberlist measures round trips from it).
func (t *transport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := t.udp.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if t.closing.Load() {
				return
			}
			t.logger.Warn("gossip: read a UDP packet", "err", err)
			continue
		}
		if n == 0 {
			continue
		}
		select {
		case t.packets <- &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Timestamp: now}:
		case <-t.done:
			return
		}
	}
}

// acceptStreams hands each TCP connection to memberlist. Accept errors
// (out of file descriptors, say) are retried with a growing pause, so a
// passing shortage does not stop the node from taking state exchanges.
func (t *transport) acceptStreams() {
	defer t.wg.Done()
	var pause time.Duration
	for {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.closing.Load() {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			t.logger.Warn("gossip: accept a TCP connection", "err", err, "retry_in", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		select {
		case t.streams <- conn:
		case <-t.done:
			conn.Close()
			return
		}
	}
}
