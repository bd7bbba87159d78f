// Package client talks to a Shoal cluster through a router's HTTP API: a Go library and the shoal command-line subcommands built on it.
package client
