package secure

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Content at rest is sealed with AES-256-GCM under keys derived from the
// cluster's data key, by the router, before it leaves for any storage node:
// chunk files, inline content in the metadata and the log all hold sealed
// bytes only, and a storage node never needs the key.
//
// A chunk is sealed convergently, so identical content still gives one
// chunk and deduplication keeps working:
//
//	siv   = HMAC-SHA256(sivKey, plaintext)           32 bytes
//	key   = HMAC-SHA256(chunkKey, siv)               the chunk's own AES key
//	chunk = siv || AES-256-GCM(key, nonce 0, plaintext)
//
// Each key seals one plaintext only, so the fixed nonce is never reused
// with two messages. Because siv is keyed, someone holding a disk but not
// the data key cannot test whether a chunk holds content they guess; what
// they can see is which chunks are equal and how large they are. The
// chunk's name (its SHA-256, of the sealed bytes) lets every node verify
// and repair chunks without the key.
//
// Inline content (small files kept in the metadata) is sealed with a
// random nonce instead: it is not deduplicated.
//
//	inline = nonce (12 bytes) || AES-256-GCM(inlineKey, nonce, plaintext)
//
// Sealed content is tagged (in the metadata) with the ID of the data key
// that sealed it, so a key file may list old keys for reading while the
// first one seals new content.

// ChunkOverhead is what sealing adds to a chunk: the siv and the GCM tag.
const ChunkOverhead = sha256.Size + 16

// InlineOverhead is what sealing adds to inline content: nonce and tag.
const InlineOverhead = 12 + 16

// Sealer seals and opens content at rest. It is safe for concurrent use.
type Sealer struct {
	keys []*sealKey // keys[0] seals
	byID map[uint32]*sealKey
}

type sealKey struct {
	id       uint32
	siv      []byte
	chunk    []byte
	tag      []byte
	inline   cipher.AEAD
	zeroNonc [12]byte
}

// NewSealer returns a Sealer for the data keys in a key file (see
// LoadKeys): the first seals, every one opens.
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no data key", ErrBadKey)
	}
	s := &Sealer{byID: map[uint32]*sealKey{}}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("%w: data key %d has %d bytes, want %d (make one with 'shoal keygen')", ErrBadKey, i+1, len(k), KeySize)
		}
		sk := &sealKey{id: KeyID(k), siv: derive(k, "shoal chunk siv"), chunk: derive(k, "shoal chunk key"), tag: derive(k, "shoal chunk tag")}
		block, err := aes.NewCipher(derive(k, "shoal inline key"))
		if err != nil {
			return nil, err
		}
		if sk.inline, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
		if _, dup := s.byID[sk.id]; dup {
			return nil, fmt.Errorf("%w: data key %d is listed twice", ErrBadKey, i+1)
		}
		s.keys = append(s.keys, sk)
		s.byID[sk.id] = sk
	}
	return s, nil
}

// KeyID names a data key in the metadata without revealing it: 32 bits of
// a hash of the key, never 0 (which marks content that is not sealed).
func KeyID(key []byte) uint32 {
	id := binary.BigEndian.Uint32(derive(key, "shoal key id"))
	if id == 0 {
		id = 1
	}
	return id
}

// derive makes an independent subkey of key for one purpose.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// KeyID is the ID of the key that seals.
func (s *Sealer) KeyID() uint32 { return s.keys[0].id }

// Has reports whether content sealed with key id can be opened.
func (s *Sealer) Has(id uint32) bool {
	_, ok := s.byID[id]
	return ok
}

// SealChunk appends the sealed form of plain to dst (which must not
// overlap plain) and returns it with the sealing key's ID. The same
// plaintext always gives the same bytes.
func (s *Sealer) SealChunk(dst, plain []byte) ([]byte, uint32) {
	k := s.keys[0]
	m := hmac.New(sha256.New, k.siv)
	m.Write(plain)
	siv := m.Sum(nil)
	dst = append(dst, siv...)
	return k.chunkAEAD(siv).Seal(dst, k.zeroNonc[:], plain, nil), k.id
}

// TagSize is the length of a chunk tag.
const TagSize = 16

// ChunkTag names a chunk's plaintext, given its SHA-256, under data key
// id, so that a client holding a copy can learn whether a sealed chunk
// holds the same bytes (it sends the SHA-256 of its copy, the router
// compares tags) while the metadata holds no plaintext hash: without the
// data key, a tag tests no guess. ok is false for a key the sealer does
// not hold.
//
//	tag = HMAC-SHA256(tagKey, SHA-256(plaintext))[:16]
func (s *Sealer) ChunkTag(id uint32, sum [sha256.Size]byte) (tag string, ok bool) {
	k, ok := s.byID[id]
	if !ok {
		return "", false
	}
	m := hmac.New(sha256.New, k.tag)
	m.Write(sum[:])
	return string(m.Sum(nil)[:TagSize]), true
}

// OpenChunk appends the plaintext of a sealed chunk to dst.
func (s *Sealer) OpenChunk(dst, sealed []byte, id uint32) ([]byte, error) {
	k, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: chunk sealed with data key %08x, which this router's --data-key-file does not hold", ErrSealed, id)
	}
	if len(sealed) < ChunkOverhead {
		return nil, fmt.Errorf("%w: sealed chunk of %d bytes is too short", ErrSealed, len(sealed))
	}
	siv := sealed[:sha256.Size]
	out, err := k.chunkAEAD(siv).Open(dst, k.zeroNonc[:], sealed[sha256.Size:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: chunk does not authenticate under data key %08x", ErrSealed, id)
	}
	return out, nil
}

// chunkAEAD is the cipher of the chunk whose siv is given.
func (k *sealKey) chunkAEAD(siv []byte) cipher.AEAD {
	m := hmac.New(sha256.New, k.chunk)
	m.Write(siv)
	block, _ := aes.NewCipher(m.Sum(nil)) // a 32-byte key never fails
	aead, _ := cipher.NewGCM(block)
	return aead
}

// SealInline returns the sealed form of small content kept in metadata,
// with the sealing key's ID.
func (s *Sealer) SealInline(plain []byte) ([]byte, uint32) {
	k := s.keys[0]
	out := make([]byte, 12, 12+len(plain)+16)
	rand.Read(out)
	return k.inline.Seal(out, out[:12], plain, nil), k.id
}

// OpenInline returns the plaintext of sealed inline content.
func (s *Sealer) OpenInline(sealed []byte, id uint32) ([]byte, error) {
	k, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: content sealed with data key %08x, which this router's --data-key-file does not hold", ErrSealed, id)
	}
	if len(sealed) < InlineOverhead {
		return nil, fmt.Errorf("%w: sealed content of %d bytes is too short", ErrSealed, len(sealed))
	}
	out, err := k.inline.Open(nil, sealed[:12], sealed[12:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: content does not authenticate under data key %08x", ErrSealed, id)
	}
	return out, nil
}
