package router

import (
	"errors"
	"strings"
	"testing"

	"shoal/gossip"
	"shoal/wire"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Members = func() []gossip.Member { return nil }
		c.Transport = wire.NewMemNetwork(1).Transport("router")
		return c
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("defaults with members and a transport: %v", err)
	}
	tests := []struct {
		field string // the field the error must name
		bad   func(*Config)
	}{
		{"Members", func(c *Config) { c.Members = nil }},
		{"Transport", func(c *Config) { c.Transport = nil }},
		{"Logger", func(c *Config) { c.Logger = nil }},
		{"ChunkSize", func(c *Config) { c.ChunkSize = 0 }},
		{"ChunkSize", func(c *Config) { c.ChunkSize = MaxChunkSize + 1 }},
		{"InlineMax", func(c *Config) { c.InlineMax = -1 }},
		{"InlineMax", func(c *Config) { c.InlineMax = MaxInline + 1 }},
		{"MaxFileSize", func(c *Config) { c.MaxFileSize = -1 }},
		{"RequestTimeout", func(c *Config) { c.RequestTimeout = 0 }},
		{"RPCTimeout", func(c *Config) { c.RPCTimeout = 0 }},
		{"BodyTimeout", func(c *Config) { c.BodyTimeout = 0 }},
		{"BodyMinRate", func(c *Config) { c.BodyMinRate = -1 }},
		{"BodyRateWindow", func(c *Config) { c.BodyRateWindow = 0 }},
		{"SpaceWait", func(c *Config) { c.SpaceWait = -1 }},
		{"AuthTTL", func(c *Config) { c.AuthTTL = -1 }},
		{"UploadMemory", func(c *Config) { c.UploadMemory = c.chunkCost() - 1 }},
		{"CORS origin", func(c *Config) { c.CORSOrigins = []string{"app.example.com"} }},
		{"CORS origin", func(c *Config) { c.CORSOrigins = []string{"https://app.example.com/page"} }},
		{"CORS origin", func(c *Config) { c.CORSOrigins = []string{"*", ""} }},
	}
	for _, tt := range tests {
		c := valid()
		tt.bad(&c)
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.field+" ") {
			t.Errorf("Validate = %v, want ErrBadConfig naming %s", err, tt.field)
		}
	}
}
