// Package docker tests the container image and docker-compose.yml as users
// run them: the image scripts/image builds, the compose cluster reached
// through the router's published port, a node killed with docker kill and
// a node cut off the network. It runs only with SHOAL_DOCKER=1, which
// .ci/run sets when a Docker engine answers.
package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"shoal/harness"
)

func TestSwarm(t *testing.T) {
	if os.Getenv("SHOAL_DOCKER") != "1" {
		t.Skip("SKIPPED: the Docker test runs only with SHOAL_DOCKER=1: it needs a Docker engine and docker-compose (.ci/run sets it when 'docker version' reaches an engine)")
	}
	began := time.Now()
	s := startSwarm(t)
	took := harness.Await(t, 2*time.Minute, "g1 and g2 with a primary and three live, synced voters, and two standbys", func() (bool, error) {
		cs, err := s.view()
		if err != nil {
			return false, err
		}
		if ok, state := groupsReady(cs, "g1", "g2"); !ok || len(cs.Standbys) != 2 {
			return false, fmt.Errorf("%s; standbys %v", state, cs.Standbys)
		}
		return true, nil
	})
	t.Logf("cluster ready %v after up", took.Round(time.Millisecond))

	basic := s.writeAndRead(t)
	w, err := startWriter(s.clientConfig(0, 0), "/w")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Halt() })
	s.killPrimary(t, w)
	s.cutOff(t, w)
	acked := w.Halt()
	_, failed := w.Counts()
	t.Logf("writer: %d writes acknowledged, %d failed (never acknowledged, so nothing was promised)", len(acked), failed)
	verify(t, s.cl, acked, "at the end")
	verify(t, s.cl, basic, "the first files, at the end")
	t.Logf("Docker test done in %v", time.Since(began).Round(time.Second))
}

// writeAndRead writes files of every kind through the published port,
// reads them back, and lists them with the image's own CLI from inside
// the network, as docs/docker.md shows.
func (s *swarm) writeAndRead(t *testing.T) []harness.Ack {
	t.Helper()
	w, err := startWriter(s.clientConfig(0, 0), "/basic")
	if err != nil {
		t.Fatal(err)
	}
	harness.Await(t, time.Minute, "16 files written through the router", func() (bool, error) {
		return acknowledged(w, 16)
	})
	files := w.Halt()
	verify(t, s.cl, files, "first files")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	entries, err := s.cl.List(ctx, "/basic")
	if err != nil || len(entries) < len(files) {
		t.Fatalf("list /basic: %d entries, %v; want at least %d", len(entries), err, len(files))
	}
	out := s.docker("run", "--rm", "--network", s.network, "--volume", s.project+"_secrets:/secrets:ro",
		"--env", "SHOAL_ROUTER=https://router:8080", "--env", "SHOAL_CA=/secrets/ca.pem", "--env", "SHOAL_TOKEN="+s.creds.Token,
		s.image, "ls", "/basic")
	if !strings.Contains(out, "000000") {
		t.Fatalf("'shoal ls /basic' in a container on the network does not list 000000:\n%s", out)
	}
	return files
}

// primaryOf waits until the router shows a primary of group and returns it.
func (s *swarm) primaryOf(t *testing.T, group string) string {
	t.Helper()
	var name string
	harness.Await(t, 30*time.Second, "a primary of "+group, func() bool {
		name = s.primary(group)
		return name != ""
	})
	return name
}

// primary is the primary of group the router shows now, or "".
func (s *swarm) primary(group string) string {
	cs, err := s.view()
	if err != nil {
		return ""
	}
	if i := indexGroup(cs, group); i >= 0 {
		return cs.Groups[i].Primary
	}
	return ""
}

// killPrimary kills g1's primary container (SIGKILL) under the writer,
// waits for writes to resume and checks that none acknowledged is lost,
// then starts the container again and waits until it is a synced member.
func (s *swarm) killPrimary(t *testing.T, w *harness.Writer) {
	t.Helper()
	before, _ := w.Counts()
	harness.Await(t, time.Minute, "10 more writes before the kill", func() (bool, error) {
		return acknowledged(w, before+10)
	})
	victim := s.primaryOf(t, "g1")
	id := s.container(victim)
	killed := time.Now()
	s.docker("kill", id)
	var first time.Time
	harness.Await(t, time.Minute, "a write acknowledged after the kill of "+victim, func() (bool, error) {
		var ok bool
		if first, ok = w.FirstAckAfter(killed); ok {
			return true, nil
		}
		n, failed := w.Counts()
		return false, fmt.Errorf("%d acknowledged, %d failed", n, failed)
	})
	var next string
	harness.Await(t, 30*time.Second, "a new primary of g1", func() (bool, error) {
		next = s.primary("g1")
		if next != "" && next != victim {
			return true, nil
		}
		return false, fmt.Errorf("primary %q", next)
	})
	t.Logf("docker kill of g1's primary %s: the first write begun after it was acknowledged %v later; new primary %s",
		victim, first.Sub(killed).Round(time.Millisecond), next)
	verify(t, s.cl, w.Acked(), "after the kill")

	s.docker("start", id)
	took := s.waitMember(t, victim)
	t.Logf("%s restarted: a live, synced voter again after %v", victim, took.Round(time.Millisecond))
}

// cutOff disconnects g2's primary container from the network under the
// writer, checks that the cluster keeps writing and reading, connects it
// again and waits until it is a synced member.
func (s *swarm) cutOff(t *testing.T, w *harness.Writer) {
	t.Helper()
	node := s.primaryOf(t, "g2")
	id := s.container(node)
	ip := s.ip(id)
	cut := time.Now()
	s.docker("network", "disconnect", s.network, id)
	harness.Await(t, 30*time.Second, "the router to see "+node+" as not alive", func() (bool, error) {
		cs, err := s.view()
		if err != nil {
			return false, err
		}
		if st := gossipStatus(cs, node); st == "alive" {
			return false, fmt.Errorf("%s is %s", node, st)
		}
		return true, nil
	})
	var first time.Time
	harness.Await(t, time.Minute, "a new primary of g2 and a write acknowledged after "+node+" was cut off", func() (bool, error) {
		p := s.primary("g2")
		var ok bool
		first, ok = w.FirstAckAfter(cut)
		if ok && p != "" && p != node {
			return true, nil
		}
		return false, fmt.Errorf("g2 primary %q, a write acknowledged since: %v", p, ok)
	})
	t.Logf("%s disconnected from %s: the first write begun after it was acknowledged %v later; g2 has a new primary",
		node, s.network, first.Sub(cut).Round(time.Millisecond))
	harness.Await(t, 30*time.Second, "g2's new primary to see "+node+" as not live", func() (bool, error) {
		cs, err := s.view()
		if err != nil {
			return false, err
		}
		if m, ok := memberDetail(cs, node); ok && !m.Live {
			return true, nil
		}
		_, state := groupsReady(cs, "g2")
		return false, errors.New(state)
	})
	verify(t, s.cl, w.Acked(), "while "+node+" is cut off")

	// The alias gives the service name back: peers reach the node at
	// NAME:7000, and a plain reconnect would leave only the container ID.
	s.docker("network", "connect", "--alias", node, s.network, id)
	if now := s.ip(id); now != ip {
		// Gossip advertises the address a node found at its start; a
		// node with a new one must restart to advertise it.
		t.Logf("Docker gave %s a new address on reconnect (%s, was %s): restarting it", node, now, ip)
		s.docker("restart", "--time", "3", id)
	}
	took := s.waitMember(t, node)
	t.Logf("%s reconnected: a live, synced voter again after %v", node, took.Round(time.Millisecond))
}

// waitMember waits until node is a live, synced voter of its group and
// both groups are whole again.
func (s *swarm) waitMember(t *testing.T, node string) time.Duration {
	t.Helper()
	return harness.Await(t, 2*time.Minute, node+" as a live, synced voter, and both groups whole", func() (bool, error) {
		cs, err := s.view()
		if err != nil {
			return false, err
		}
		if ok, state := groupsReady(cs, "g1", "g2"); !ok || !member(cs, node) {
			return false, fmt.Errorf("%s in gossip: %s; %s", node, gossipStatus(cs, node), state)
		}
		return true, nil
	})
}

// acknowledged reports whether w has had n writes acknowledged, and
// otherwise how many were acknowledged and how many failed.
func acknowledged(w *harness.Writer, n int) (bool, error) {
	acked, failed := w.Counts()
	if acked >= n {
		return true, nil
	}
	return false, fmt.Errorf("%d acknowledged, %d failed", acked, failed)
}
