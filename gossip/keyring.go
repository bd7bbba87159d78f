package gossip

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// keyring builds the memberlist keyring: the keys kept in KeyringFile
// (the cluster's keys as of the last change this node saw) first, then any
// configured key they lack. A node restarted after a rotation thus keeps
// speaking the new key, while the configured one still opens old traffic.
func (n *Node) keyring() (*memberlist.Keyring, error) {
	keys, err := readKeyringFile(n.cfg.KeyringFile)
	if err != nil {
		return nil, err
	}
	for _, k := range n.cfg.Keys {
		if !slices.ContainsFunc(keys, func(h []byte) bool { return bytes.Equal(h, k) }) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: gossip keyring: %v", ErrBadConfig, err)
	}
	return kr, nil
}

// readKeyringFile reads serf's keyring file: a JSON list of base64 keys,
// the primary first. A missing file is an empty keyring.
func readKeyringFile(path string) ([][]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: read keyring %s: %w", path, err)
	}
	var enc []string
	if err := json.Unmarshal(b, &enc); err != nil {
		return nil, fmt.Errorf("gossip: keyring %s is not a JSON list of keys: %w (remove it to start from --gossip-key)", path, err)
	}
	keys := make([][]byte, 0, len(enc))
	for _, e := range enc {
		k, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// KeyringOp is a change to the cluster's gossip keys.
type KeyringOp string

// The keyring operations, as serf names them.
const (
	KeyList    KeyringOp = "list"
	KeyInstall KeyringOp = "install" // add a key everywhere (not used to send yet)
	KeyUse     KeyringOp = "use"     // make an installed key the one every node sends with
	KeyRemove  KeyringOp = "remove"  // drop a key that is no longer in use
)

// KeyringResult is what the members answered to a keyring operation.
type KeyringResult struct {
	Nodes, Responses, Errors int
	// Keys maps each base64 key to the number of nodes holding it;
	// Primary the same for the key each node sends with.
	Keys, Primary map[string]int
	// Messages holds each failing node's reason, by node name.
	Messages map[string]string
}

// Keyring runs a keyring operation on every member of the cluster through
// serf's key manager and reports their answers. key is base64 (ignored for
// KeyList). The operation fails when gossip is not encrypted.
func (n *Node) Keyring(op KeyringOp, key string) (KeyringResult, error) {
	s := n.serf.Load()
	if s == nil {
		return KeyringResult{}, fmt.Errorf("gossip: keyring: %w", ErrClosed)
	}
	if !s.EncryptionEnabled() {
		return KeyringResult{}, errors.New("gossip is not encrypted (the cluster runs with --insecure): there is no keyring")
	}
	km := s.KeyManager()
	var resp *serf.KeyResponse
	var err error
	switch op {
	case KeyList:
		resp, err = km.ListKeys()
	case KeyInstall:
		resp, err = km.InstallKey(key)
	case KeyUse:
		resp, err = km.UseKey(key)
	case KeyRemove:
		resp, err = km.RemoveKey(key)
	default:
		return KeyringResult{}, fmt.Errorf("gossip: unknown keyring operation %q: use list, install, use or remove", op)
	}
	if resp == nil {
		return KeyringResult{}, err
	}
	return KeyringResult{
		Nodes: resp.NumNodes, Responses: resp.NumResp, Errors: resp.NumErr,
		Keys: resp.Keys, Primary: resp.PrimaryKeys, Messages: resp.Messages,
	}, err
}
