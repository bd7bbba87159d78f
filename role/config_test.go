package role

import (
	"errors"
	"strings"
	"testing"

	"shoal/gossip"
	"shoal/store"
)

// validNode is the smallest NodeConfig that passes Validate.
func validNode() NodeConfig {
	c := DefaultNodeConfig()
	c.Start, c.Group, c.DataDir = gossip.RoleReplica, "g1", "/tmp/shoal-test"
	return c
}

func TestNodeConfigValidate(t *testing.T) {
	if err := validNode().Validate(); err != nil {
		t.Fatalf("defaults with a role, group and data directory: %v", err)
	}
	standby := validNode()
	standby.Start, standby.Group = gossip.RoleStandby, ""
	if err := standby.Validate(); err != nil {
		t.Fatalf("a standby needs no group: %v", err)
	}
	never := validNode()
	never.ReplaceAfter = -1
	if err := never.Validate(); err != nil {
		t.Fatalf("a negative --replace-after disables replacement: %v", err)
	}
	tests := []struct {
		says string // the field the error must name
		bad  func(*NodeConfig)
	}{
		{"--group", func(c *NodeConfig) { c.Group = "" }},
		{"Start", func(c *NodeConfig) { c.Start = gossip.RoleRouter }},
		{"--data", func(c *NodeConfig) { c.DataDir = "" }},
		{"--listen", func(c *NodeConfig) { c.Listen = "7000" }},
		{"--capacity", func(c *NodeConfig) { c.Capacity = -1 }},
		{"--meta-reserve", func(c *NodeConfig) { c.MetaReserve = -1 }},
		{"--high-water", func(c *NodeConfig) { c.HighWater = 0 }},
		{"--high-water", func(c *NodeConfig) { c.HighWater = 1.5 }},
		{"--meta-group", func(c *NodeConfig) { c.MetaGroup = "" }},
		{"--startup-grace", func(c *NodeConfig) { c.StartupGrace = 0 }},
		{"--replace-after", func(c *NodeConfig) { c.ReplaceAfter = 0 }},
		{"PromoteBackoff", func(c *NodeConfig) { c.PromoteBackoff = 0 }},
		{"Logger", func(c *NodeConfig) { c.Logger = nil }},
	}
	for _, tt := range tests {
		c := validNode()
		tt.bad(&c)
		checkBadConfig(t, c.Validate(), tt.says)
	}
}

func TestRouterConfigValidate(t *testing.T) {
	if err := DefaultRouterConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c := DefaultRouterConfig()
	c.HTTP = "localhost"
	checkBadConfig(t, c.Validate(), "--http")
	c = DefaultRouterConfig()
	c.Logger = nil
	checkBadConfig(t, c.Validate(), "Logger")
}

func TestDevConfigValidate(t *testing.T) {
	if err := DefaultDevConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	last := DefaultDevConfig()
	last.PortBase = 65536 - devPorts // the router gossips on 65535
	if err := last.Validate(); err != nil {
		t.Fatalf("the highest port base: %v", err)
	}
	tests := []struct {
		says string
		bad  func(*DevConfig)
	}{
		{"--http", func(c *DevConfig) { c.HTTP = "8080" }},
		{"--data", func(c *DevConfig) { c.DataDir = "" }},
		{"--port-base", func(c *DevConfig) { c.PortBase = 0 }},
		{"--port-base", func(c *DevConfig) { c.PortBase = 65536 - devPorts + 1 }},
		{"Logger", func(c *DevConfig) { c.Logger = nil }},
		{"Out", func(c *DevConfig) { c.Out = nil }},
	}
	for _, tt := range tests {
		c := DefaultDevConfig()
		tt.bad(&c)
		checkBadConfig(t, c.Validate(), tt.says)
	}
}

// checkBadConfig wants err to be ErrBadConfig naming field.
func checkBadConfig(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), field) {
		t.Errorf("Validate = %v, want ErrBadConfig naming %s", err, field)
	}
}

// A node's default capacity is what it holds (meta.db included) plus the
// disk's free space, less the reserve: chunks alone can never take the
// room metadata needs. The reserve defaults to 2% of the disk; given
// values are kept.
func TestNodeLimits(t *testing.T) {
	const mib = 1 << 20
	u := store.Usage{Chunks: 100 * mib, Meta: 30 * mib, Disk: store.DiskSpace{Size: 10 << 30, Free: 1000 * mib}}
	l := nodeLimits(0, 0, u)
	reserve := int64(10<<30) / 50
	if l.Reserve != reserve || l.Capacity != 130*mib+1000*mib-reserve {
		t.Fatalf("defaults: %+v, want reserve %d and capacity %d", l, reserve, 130*mib+1000*mib-reserve)
	}
	// The chunks' room at start: the free space less the reserve.
	if room := l.Capacity - u.Used(); room != u.Disk.Free-reserve {
		t.Errorf("room for new data at start %d, want %d", room, u.Disk.Free-reserve)
	}
	if got := nodeLimits(0, 8*mib, u); got.Reserve != 8*mib || got.Capacity != 130*mib+1000*mib-8*mib {
		t.Errorf("--meta-reserve 8MiB: %+v", got)
	}
	if got := nodeLimits(500*mib, 0, u); got.Capacity != 500*mib || got.Reserve != reserve {
		t.Errorf("--capacity 500MiB: %+v", got)
	}
	// A full disk: no room above what the node holds.
	full := u
	full.Disk.Free = reserve / 2
	if got := nodeLimits(0, 0, full); got.Capacity >= full.Used() {
		t.Errorf("full disk: capacity %d, want under the %d held", got.Capacity, full.Used())
	}
}
