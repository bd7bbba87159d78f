package gossip

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestTransportPacketsKeepTheirBytes sends packets of different sizes and
// contents and checks each arrives whole and unchanged after later ones
// were read: the reader reuses its buffer, so a packet handed on must own
// its bytes.
func TestTransportPacketsKeepTheirBytes(t *testing.T) {
	a, b := listenTest(t), listenTest(t)
	ip, port, err := b.FinalAdvertiseAddr("", 0)
	if err != nil || !ip.Equal([]byte{127, 0, 0, 1}) || port != b.port() {
		t.Fatalf("advertise address = %v:%d, %v; want 127.0.0.1:%d", ip, port, err, b.port())
	}
	to := fmt.Sprintf("127.0.0.1:%d", port)

	var sent [][]byte
	for i, size := range []int{1, 1400, 30, 60000, 7} {
		p := bytes.Repeat([]byte{byte('a' + i)}, size)
		sent = append(sent, p)
		if _, err := a.WriteTo(p, to); err != nil {
			t.Fatalf("send packet %d: %v", i, err)
		}
	}
	var got [][]byte
	for range sent {
		select {
		case p := <-b.PacketCh():
			if p.From.String() != fmt.Sprintf("127.0.0.1:%d", a.port()) {
				t.Errorf("packet from %v, want 127.0.0.1:%d", p.From, a.port())
			}
			got = append(got, p.Buf)
		case <-time.After(5 * time.Second):
			t.Fatalf("waited 5 s for packet %d of %d over loopback", len(got)+1, len(sent))
		}
	}
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Errorf("packet %d: got %d bytes starting %q, sent %d bytes of %q", i, len(got[i]), got[i][:min(len(got[i]), 4)], len(sent[i]), sent[i][:1])
		}
	}
}

// TestTransportStreams checks a dialled TCP connection reaches the other
// side's stream channel.
func TestTransportStreams(t *testing.T) {
	b := listenTest(t)
	conn, err := b.DialTimeout(fmt.Sprintf("127.0.0.1:%d", b.port()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("state")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-b.StreamCh():
		defer c.Close()
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "state" {
			t.Fatalf("read %q, %v; want \"state\"", buf, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waited 5 s for the dialled connection to be accepted")
	}
}

// Shutdown returns even when a packet and a connection arrived that
// nobody reads (memberlist never started, as when serf fails to start),
// and a second Shutdown does nothing.
func TestTransportShutdownUnread(t *testing.T) {
	b := listenTest(t)
	to := fmt.Sprintf("127.0.0.1:%d", b.port())
	if _, err := b.WriteTo([]byte("unread"), to); err != nil {
		t.Fatal(err)
	}
	conn, err := b.DialTimeout(to, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		b.Shutdown()
		b.Shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown still waiting after 5 s for readers blocked on channels nobody reads")
	}
}

// listenTest opens a transport on a free port of 127.0.0.1, shut down
// when the test ends (a second Shutdown does nothing).
func listenTest(t *testing.T) *transport {
	t.Helper()
	tr, err := listen("127.0.0.1", 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Shutdown() })
	return tr
}
