package mount

import (
	"errors"
	"strings"
	"testing"

	"shoal/client"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Client = &client.Client{}
		return c
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("defaults with a client: %v", err)
	}
	tests := []struct {
		field string // the field the error must name
		bad   func(*Config)
	}{
		{"Client", func(c *Config) { c.Client = nil }},
		{"Logger", func(c *Config) { c.Logger = nil }},
		{"AttrTimeout", func(c *Config) { c.AttrTimeout = -1 }},
		{"EntryTimeout", func(c *Config) { c.EntryTimeout = -1 }},
		{"NegativeTimeout", func(c *Config) { c.NegativeTimeout = -1 }},
		{"WriteBuffer", func(c *Config) { c.WriteBuffer = -1 }},
		{"ReadCache", func(c *Config) { c.ReadCache = 1 }},
	}
	for _, tt := range tests {
		c := valid()
		tt.bad(&c)
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.field+" ") {
			t.Errorf("Validate = %v, want ErrBadConfig naming %s", err, tt.field)
		}
	}
}
