package replication

import (
	"errors"
	"strings"
	"testing"
	"time"

	"shoal/store"
	"shoal/wire"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.ID, c.Addr, c.Group = 1, "n1:7000", "g1"
		c.Store, c.Transport = &store.DB{}, wire.NewMemNetwork(1).Transport("n1:7000")
		return c
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("defaults with an identity, a store and a transport: %v", err)
	}
	off := valid()
	off.GCInterval, off.GCGrace, off.ScrubRate, off.MetaScrubEvery = 0, 0, 0, 0
	if err := off.Validate(); err != nil {
		t.Fatalf("collection and scrubbing off: %v", err)
	}
	tests := []struct {
		field string // the field the error must name
		bad   func(*Config)
	}{
		{"ID", func(c *Config) { c.ID = 0 }},
		{"Addr", func(c *Config) { c.Addr = "" }},
		{"Group", func(c *Config) { c.Group = "" }},
		{"Store", func(c *Config) { c.Store = nil }},
		{"Transport", func(c *Config) { c.Transport = nil }},
		{"Logger", func(c *Config) { c.Logger = nil }},
		{"Heartbeat", func(c *Config) { c.Heartbeat = 0 }},
		{"RPCTimeout", func(c *Config) { c.RPCTimeout = -1 }},
		{"MaxBatchBytes", func(c *Config) { c.MaxBatchBytes = 0 }},
		{"LogRetain", func(c *Config) { c.LogRetain = 0 }},
		{"GroupSize", func(c *Config) { c.GroupSize = 0 }},
		{"RepairInterval", func(c *Config) { c.RepairInterval = 0 }},
		{"GCInterval", func(c *Config) { c.GCInterval = -1 }},
		{"ScrubRate", func(c *Config) { c.ScrubRate = -1 }},
		{"MetaScrubEvery", func(c *Config) { c.MetaScrubEvery = -time.Second }},
		{"ChunkWrites", func(c *Config) { c.ChunkWrites = 0 }},
		{"GCGrace", func(c *Config) { c.GCGrace = 0 }},
	}
	for _, tt := range tests {
		c := valid()
		tt.bad(&c)
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.field+" ") {
			t.Errorf("Validate = %v, want ErrBadConfig naming %s", err, tt.field)
		}
	}
}
