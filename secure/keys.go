package secure

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of the keys this package makes: AES-256.
const KeySize = 32

// NewKey returns a fresh random key in base64, the form of a gossip key
// and of a data key: 32 bytes, as memberlist and AES-256 take them.
func NewKey() string {
	var b [KeySize]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	return base64.StdEncoding.EncodeToString(b[:])
}

// ParseKey decodes one base64 key of 16, 24 or 32 bytes (gossip keys may
// be any of those, as memberlist accepts them).
func ParseKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %v (make one with 'shoal keygen')", ErrBadKey, err)
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("%w: %d bytes, want 16, 24 or 32 (make one with 'shoal keygen')", ErrBadKey, len(b))
}

// ParseKeys reads a key file's content: one base64 key per line, the first
// being the one in use; blank lines and lines starting with # are skipped.
func ParseKeys(content string) ([][]byte, error) {
	var keys [][]byte
	for i, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key in the file (make one with 'shoal keygen')", ErrBadKey)
	}
	return keys, nil
}

// LoadKeys reads the key file at path (see ParseKeys).
func LoadKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// tokenPrefix starts every token, so a token pasted somewhere it should not
// be is recognisable (by people and by secret scanners).
const tokenPrefix = "shoal_"

// tokenBytes is the randomness in a token: guessing one is hopeless, so
// its hash needs no salt.
const tokenBytes = 32

// NewToken returns a fresh random token.
func NewToken() string {
	var b [tokenBytes]byte
	rand.Read(b[:])
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// WellFormedToken reports whether s has the shape of a token; anything else
// is refused before any lookup.
func WellFormedToken(s string) bool {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

// HashToken is what the cluster keeps of a token: its SHA-256. A token has
// 256 random bits, so the hash cannot be reversed or guessed.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// LoadToken reads a token from the file at path (one line).
func LoadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if !WellFormedToken(tok) {
		return "", fmt.Errorf("%s does not hold a token (want %s followed by %d base64url characters)", path, tokenPrefix, base64.RawURLEncoding.EncodedLen(tokenBytes))
	}
	return tok, nil
}

// NewAccessKey returns a fresh S3 access key: a 20-character ID of
// A-Z and 2-7 (public, like AWS's) and a 40-character secret.
func NewAccessKey() (id, secret string) {
	var b [12]byte
	rand.Read(b[:])
	id = "SH" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:18]
	var s [30]byte
	rand.Read(s[:])
	return id, base64.StdEncoding.EncodeToString(s[:])
}
