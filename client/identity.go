package client

import (
	"context"
	"strconv"
	"strings"
)

// ActAsHeader carries the identity a mount host acts for in one request:
// "UID:GID" or "UID:GID:G1,G2,..." with the supplementary groups. A router
// honours it only for a token with the mount capability presented with a
// mount host's certificate (or an admin's token), and refuses it
// otherwise.
const ActAsHeader = "X-Shoal-Act-As"

// Identity is a local user a mount acts for.
type Identity struct {
	Uid, Gid uint32
	Groups   []uint32
}

// String is the ActAsHeader form of id.
func (id Identity) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(id.Uid), 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(id.Gid), 10))
	for i, g := range id.Groups {
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(g), 10))
	}
	return b.String()
}

type actAsKey struct{}

// ActAs returns a context whose requests act for id (see ActAsHeader).
func ActAs(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, actAsKey{}, id)
}

// ActingAs returns the identity ctx acts as (see ActAs), if any.
func ActingAs(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(actAsKey{}).(Identity)
	return id, ok
}
