package gossip

import (
	"fmt"
	"strconv"

	"shoal/meta"
)

// Role is what a node acts as right now. It changes only by failover
// (replica to primary and back) or allocation (standby to replica).
type Role string

// The roles a node can publish.
const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
	RoleStandby Role = "standby"
	RoleRouter  Role = "router"
)

// valid reports whether r is one of the known roles.
func (r Role) valid() bool {
	switch r {
	case RolePrimary, RoleReplica, RoleStandby, RoleRouter:
		return true
	}
	return false
}

// inGroup reports whether a node with this role belongs to a group.
func (r Role) inGroup() bool { return r == RolePrimary || r == RoleReplica }

// Tags is what a node tells every other node about itself through gossip.
// It travels as serf tags (see Encode), so every field must stay small.
type Tags struct {
	// ID is the node's cluster-unique ID; Elect breaks ties by it.
	ID uint64
	// Role is what the node acts as now: a demoted primary publishes
	// RoleReplica.
	Role Role
	// Group is the group the node serves; "" for routers and standbys.
	Group string
	// Term is the highest term the node has seen or promised; for a
	// primary, the term it leads.
	Term uint64
	// Addr is the node-to-node RPC listen address host:port; "" for routers.
	Addr string
	// HTTP is a router's HTTP address; "" for other roles.
	HTTP string
	// InSync marks a voting member of its group whose log is caught up:
	// only such a member may take over from a dead primary.
	InSync bool
	// Voter marks a node that is a voting member in its own copy of the
	// group's configuration: when every member restarted and none is
	// known caught up, only a voter may take over (a member that never
	// joined the configuration holds none of the group's log).
	Voter bool
	// Boot marks a node started with the primary role: it may bootstrap a
	// group that never had a primary.
	Boot bool
	// Used and Cap are the bytes of data (chunks and metadata) the node
	// stores and may store, Cap no more than its disk holds above the
	// reserve kept for metadata: routers place chunks by a group's free
	// space, and the meta group's primary forms a new group when every
	// group is nearly full.
	Used, Cap uint64
}

// Free is the room left on the node, 0 when full or unknown.
func (t Tags) Free() uint64 {
	if t.Cap <= t.Used {
		return 0
	}
	return t.Cap - t.Used
}

// Tag keys. They are one letter because every byte counts against the
// 512-byte metadata limit, and they must never change: nodes of different
// versions read each other's tags.
const (
	keyID     = "id"
	keyRole   = "r"
	keyGroup  = "g"
	keyTerm   = "t"
	keyAddr   = "a"
	keyHTTP   = "h"
	keyInSync = "s"
	keyBoot   = "b"
	keyVoter  = "v"
	keyUsed   = "u"
	keyCap    = "c"
)

// maxTagBytes is memberlist.MetaMaxSize, the limit serf enforces on the
// encoded tag map; repeated here so the check needs no serf internals.
const maxTagBytes = 512

// Encode returns t as a serf tag map. Zero, empty and false fields are left
// out, so an old node reading a new field's absence sees its zero value.
// It fails with ErrBadTags for an unknown role and with ErrTagsTooLarge
// when serf would reject the map.
func (t Tags) Encode() (map[string]string, error) {
	if t.Role != "" && !t.Role.valid() {
		return nil, fmt.Errorf("%w: unknown role %q: use primary, replica, standby or router", ErrBadTags, t.Role)
	}
	if t.Term > meta.MaxTerm {
		return nil, fmt.Errorf("%w: term %d is beyond the limit %d", ErrBadTags, t.Term, uint64(meta.MaxTerm))
	}
	m := make(map[string]string, 8)
	if t.ID != 0 {
		m[keyID] = strconv.FormatUint(t.ID, 10)
	}
	if t.Role != "" {
		m[keyRole] = string(t.Role)
	}
	if t.Group != "" {
		m[keyGroup] = t.Group
	}
	if t.Term != 0 {
		m[keyTerm] = strconv.FormatUint(t.Term, 10)
	}
	if t.Addr != "" {
		m[keyAddr] = t.Addr
	}
	if t.HTTP != "" {
		m[keyHTTP] = t.HTTP
	}
	if t.InSync {
		m[keyInSync] = "1"
	}
	if t.Boot {
		m[keyBoot] = "1"
	}
	if t.Voter {
		m[keyVoter] = "1"
	}
	if t.Used != 0 {
		m[keyUsed] = strconv.FormatUint(t.Used, 10)
	}
	if t.Cap != 0 {
		m[keyCap] = strconv.FormatUint(t.Cap, 10)
	}
	if n := encodedSize(m); n > maxTagBytes {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d: shorten the group name or addresses", ErrTagsTooLarge, n, maxTagBytes)
	}
	return m, nil
}

// DecodeTags parses a tag map written by Encode. Missing keys decode to zero
// values and unknown keys are ignored, so nodes of neighbouring versions
// can read each other. Malformed values fail with ErrBadTags.
func DecodeTags(m map[string]string) (Tags, error) {
	var t Tags
	var err error
	if v, ok := m[keyID]; ok {
		if t.ID, err = strconv.ParseUint(v, 10, 64); err != nil {
			return Tags{}, fmt.Errorf("%w: node ID %q is not an unsigned integer", ErrBadTags, v)
		}
	}
	if v, ok := m[keyRole]; ok {
		t.Role = Role(v)
		if !t.Role.valid() {
			return Tags{}, fmt.Errorf("%w: unknown role %q: the peer may run a newer version", ErrBadTags, v)
		}
	}
	t.Group = m[keyGroup]
	if v, ok := m[keyTerm]; ok {
		if t.Term, err = strconv.ParseUint(v, 10, 64); err != nil {
			return Tags{}, fmt.Errorf("%w: term %q is not an unsigned integer", ErrBadTags, v)
		}
		if t.Term > meta.MaxTerm {
			// Counting it would leave no higher term to promote with.
			return Tags{}, fmt.Errorf("%w: term %d is beyond the limit %d", ErrBadTags, t.Term, uint64(meta.MaxTerm))
		}
	}
	t.Addr = m[keyAddr]
	t.HTTP = m[keyHTTP]
	if t.InSync, err = decodeFlag(m, keyInSync); err != nil {
		return Tags{}, err
	}
	if t.Boot, err = decodeFlag(m, keyBoot); err != nil {
		return Tags{}, err
	}
	if t.Voter, err = decodeFlag(m, keyVoter); err != nil {
		return Tags{}, err
	}
	if t.Used, err = decodeUint(m, keyUsed, "used bytes"); err != nil {
		return Tags{}, err
	}
	if t.Cap, err = decodeUint(m, keyCap, "capacity"); err != nil {
		return Tags{}, err
	}
	return t, nil
}

// decodeFlag reads a boolean tag: absent is false, "1" is true, anything
// else is malformed (Encode writes nothing else).
func decodeFlag(m map[string]string, key string) (bool, error) {
	v, ok := m[key]
	if !ok {
		return false, nil
	}
	if v != "1" {
		return false, fmt.Errorf("%w: flag %q has value %q, want \"1\" or absent", ErrBadTags, key, v)
	}
	return true, nil
}

// decodeUint reads an optional unsigned decimal tag.
func decodeUint(m map[string]string, key, what string) (uint64, error) {
	v, ok := m[key]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not an unsigned integer", ErrBadTags, what, v)
	}
	return n, nil
}

// Validate checks the rules a node's own tags must satisfy before they are
// published: a known role, a node ID, and a group for group members.
// Peers' tags are not validated beyond DecodeTags: Elect simply ignores a
// member that does not qualify.
func (t Tags) Validate() error {
	if !t.Role.valid() {
		return fmt.Errorf("%w: role %q: use primary, replica, standby or router", ErrBadTags, t.Role)
	}
	if t.ID == 0 {
		return fmt.Errorf("%w: node ID is 0: give every node a unique non-zero ID", ErrBadTags)
	}
	if t.Role.inGroup() && t.Group == "" {
		return fmt.Errorf("%w: a %s needs a group name", ErrBadTags, t.Role)
	}
	_, err := t.Encode()
	return err
}

// encodedSize is the length of serf's encoding of m: one magic byte, then
// the map in msgpack as go-msgpack writes it by default (legacy raw
// strings: a 1-byte header below 32 bytes, 3 bytes below 64 KiB, else 5;
// map header 1 byte below 16 entries, else 3).
func encodedSize(m map[string]string) int {
	n := 1 + msgpackHeader(len(m), 16)
	for k, v := range m {
		n += msgpackHeader(len(k), 32) + len(k)
		n += msgpackHeader(len(v), 32) + len(v)
	}
	return n
}

// msgpackHeader is the size of a legacy msgpack length header whose "fix"
// form holds lengths below fixCutoff.
func msgpackHeader(l, fixCutoff int) int {
	switch {
	case l < fixCutoff:
		return 1
	case l < 1<<16:
		return 3
	default:
		return 5
	}
}
