package meta

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// An Inode is encoded and decoded by hand: every lookup of a path decodes
// the inode of each directory on it and every change encodes one, and
// msgpack's reflection spent most of that time checking which fields to
// omit. The bytes are exactly those the reflection encoder writes from
// the struct tags (a map of the fields that are set, in declaration
// order, integers at the width of their type), so records written before
// and after compare equal; inode_codec_test.go checks it on random
// inodes. Decoding takes what reflection takes: fields in any order,
// unknown fields skipped, integers of any width, and an array-encoded
// Inode through reflection itself (a DirEntry only as a map, which is all
// that was ever written). Both hold for encoders and decoders with
// msgpack's default settings, the only ones this project uses: the codec
// ignores UseCompactInts, UseArrayEncodedStructs, SetOmitEmpty and
// DisallowUnknownFields.

// inodeFields is Inode without its codec: reflection encodes and decodes
// it from the same tags.
type inodeFields Inode

// EncodeMsgpack implements msgpack.CustomEncoder.
func (in Inode) EncodeMsgpack(e *msgpack.Encoder) error { return in.encode(e, nil) }

// EncodeMsgpack implements msgpack.CustomEncoder. A DirEntry is its Name
// then its Inode's fields, in one map: reflection inlined the embedded
// Inode before it had a codec, and the Inode's codec, promoted, would
// drop the Name.
func (d DirEntry) EncodeMsgpack(e *msgpack.Encoder) error { return d.Inode.encode(e, &d.Name) }

// encode writes in as a map, after the field n holding name when name is
// not nil.
func (in *Inode) encode(e *msgpack.Encoder, name *string) error {
	n := 6 // i, y, s, m, t and l are always written
	if name != nil {
		n++
	}
	for _, set := range [...]bool{in.Uid != 0, in.Gid != 0, in.ATime != 0, in.CTime != 0, in.Gen != 0,
		in.Target != "", in.Rdev != 0, in.Parent != 0, in.Hash != "", len(in.Chunks) > 0, len(in.Data) > 0,
		in.DataKey != 0, in.ContentType != "", in.Usage != nil, in.Object != nil} {
		if set {
			n++
		}
	}
	w := fieldWriter{e: e, err: e.EncodeMapLen(n)}
	if name != nil {
		w.string("n", *name)
	}
	w.uint64("i", in.Ino)
	if w.key("y") {
		w.err = e.EncodeUint8(uint8(in.Type))
	}
	w.int64("s", in.Size)
	w.uint32("m", in.Mode)
	w.int64("t", in.MTime)
	w.uint32("l", in.Nlink)
	if in.Uid != 0 {
		w.uint32("u", in.Uid)
	}
	if in.Gid != 0 {
		w.uint32("gi", in.Gid)
	}
	if in.ATime != 0 {
		w.int64("at", in.ATime)
	}
	if in.CTime != 0 {
		w.int64("ct", in.CTime)
	}
	if in.Gen != 0 {
		w.uint64("gn", in.Gen)
	}
	if in.Target != "" {
		w.string("tg", in.Target)
	}
	if in.Rdev != 0 {
		w.uint64("rd", in.Rdev)
	}
	if in.Parent != 0 {
		w.uint64("pa", in.Parent)
	}
	if in.Hash != "" {
		w.string("h", in.Hash)
	}
	if len(in.Chunks) > 0 && w.key("c") {
		w.err = e.Encode(in.Chunks)
	}
	if len(in.Data) > 0 && w.key("d") {
		w.err = e.EncodeBytes(in.Data)
	}
	if in.DataKey != 0 {
		w.uint32("dk", in.DataKey)
	}
	if in.ContentType != "" {
		w.string("mt", in.ContentType)
	}
	if in.Usage != nil && w.key("us") {
		w.err = e.Encode(in.Usage)
	}
	if in.Object != nil && w.key("ob") {
		w.err = e.Encode(in.Object)
	}
	return w.err
}

// fieldWriter writes a struct's fields, each a key and its value, and
// keeps the first error.
type fieldWriter struct {
	e   *msgpack.Encoder
	err error
}

// key writes k and reports whether the value may follow.
func (w *fieldWriter) key(k string) bool {
	if w.err == nil {
		w.err = w.e.EncodeString(k)
	}
	return w.err == nil
}

func (w *fieldWriter) uint64(k string, v uint64) {
	if w.key(k) {
		w.err = w.e.EncodeUint64(v)
	}
}

func (w *fieldWriter) uint32(k string, v uint32) {
	if w.key(k) {
		w.err = w.e.EncodeUint32(v)
	}
}

func (w *fieldWriter) int64(k string, v int64) {
	if w.key(k) {
		w.err = w.e.EncodeInt64(v)
	}
}

func (w *fieldWriter) string(k, v string) {
	if w.key(k) {
		w.err = w.e.EncodeString(v)
	}
}

// DecodeMsgpack implements msgpack.CustomDecoder. Like reflection, it
// leaves fields the record does not name as they were.
func (in *Inode) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeStruct(d, in, (*inodeFields)(in))
}

// DecodeMsgpack implements msgpack.CustomDecoder: a map of the Name and
// the Inode's fields, as DirEntry.EncodeMsgpack writes.
func (de *DirEntry) DecodeMsgpack(d *msgpack.Decoder) error {
	isMap, err := mapAhead(d)
	if err != nil {
		return err
	}
	if !isMap {
		c, _ := d.PeekCode()
		return fmt.Errorf("msgpack: a directory entry is a map, not code %#x", c)
	}
	isNil, err := decodeFields(d, de)
	if isNil {
		*de = DirEntry{}
	}
	return err
}

func (de *DirEntry) decodeField(d *msgpack.Decoder, k []byte) error {
	if string(k) == "n" {
		var err error
		de.Name, err = d.DecodeString()
		return err
	}
	return de.Inode.decodeField(d, k)
}

// mapAhead reports whether the next value is a map or nil, which the
// codecs here read themselves; anything else (an array-encoded struct)
// they leave to reflection.
func mapAhead(d *msgpack.Decoder) (bool, error) {
	c, err := d.PeekCode()
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32 || c == msgpcode.Nil, err
}

// decodeStruct decodes the map or nil ahead into *v, field by field, and
// anything else through reflection on fields (v without its codec).
func decodeStruct[T any, P interface {
	*T
	fieldDecoder
}](d *msgpack.Decoder, v P, fields any) error {
	isMap, err := mapAhead(d)
	if err != nil {
		return err
	}
	if !isMap {
		return d.Decode(fields)
	}
	isNil, err := decodeFields(d, v)
	if isNil {
		var zero T
		*v = zero
	}
	return err
}

// fieldDecoder reads the value of the field k of a struct.
type fieldDecoder interface {
	decodeField(d *msgpack.Decoder, k []byte) error
}

// decodeFields reads a map of a struct's fields into f, each key and then
// its value, or nil, which it reports for the caller to zero the struct.
func decodeFields(d *msgpack.Decoder, f fieldDecoder) (isNil bool, err error) {
	n, err := d.DecodeMapLen()
	if err != nil || n == -1 {
		return n == -1, err
	}
	var buf [32]byte
	for range n {
		k, err := decodeKey(d, &buf)
		if err != nil {
			return false, err
		}
		if err := f.decodeField(d, k); err != nil {
			return false, err
		}
	}
	return false, nil
}

// decodeKey reads a map key, into buf when it is a short string (every key
// an Inode has), so that reading it allocates nothing.
func decodeKey(d *msgpack.Decoder, buf *[32]byte) ([]byte, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if !msgpcode.IsFixedString(c) {
		s, err := d.DecodeString()
		return []byte(s), err
	}
	if err := d.ReadFull(buf[:1]); err != nil {
		return nil, err
	}
	k := buf[:c&msgpcode.FixedStrMask]
	return k, d.ReadFull(k)
}

func (in *Inode) decodeField(d *msgpack.Decoder, k []byte) error {
	var err error
	switch string(k) {
	case "i":
		in.Ino, err = d.DecodeUint64()
	case "y":
		var v uint64
		v, err = d.DecodeUint64()
		in.Type = FileType(v)
	case "s":
		in.Size, err = d.DecodeInt64()
	case "m":
		in.Mode, err = decodeUint32(d)
	case "t":
		in.MTime, err = d.DecodeInt64()
	case "l":
		in.Nlink, err = decodeUint32(d)
	case "u":
		in.Uid, err = decodeUint32(d)
	case "gi":
		in.Gid, err = decodeUint32(d)
	case "at":
		in.ATime, err = d.DecodeInt64()
	case "ct":
		in.CTime, err = d.DecodeInt64()
	case "gn":
		in.Gen, err = d.DecodeUint64()
	case "tg":
		in.Target, err = d.DecodeString()
	case "rd":
		in.Rdev, err = d.DecodeUint64()
	case "pa":
		in.Parent, err = d.DecodeUint64()
	case "h":
		in.Hash, err = d.DecodeString()
	case "c":
		err = d.Decode(&in.Chunks)
	case "d":
		in.Data, err = d.DecodeBytes()
	case "dk":
		in.DataKey, err = decodeUint32(d)
	case "mt":
		in.ContentType, err = d.DecodeString()
	case "us":
		err = d.Decode(&in.Usage)
	case "ob":
		err = d.Decode(&in.Object)
	default:
		err = d.Skip()
	}
	return err
}

// decodeUint32 reads an unsigned integer of any width into 32 bits, as
// reflection does (it keeps the low bits).
func decodeUint32(d *msgpack.Decoder) (uint32, error) {
	v, err := d.DecodeUint64()
	return uint32(v), err
}

// UnmarshalInode decodes a record of an Inode as msgpack.Unmarshal would,
// reading the bytes directly where it can: a map whose keys are short
// strings and whose values are scalars, as a directory's or a small
// file's record is. Anything else (chunks, usage, an object, an unknown
// field, an unusual encoding) goes through msgpack.Unmarshal.
func UnmarshalInode(b []byte) (Inode, error) {
	var in Inode
	if !in.unmarshalScalars(b) {
		in = Inode{}
		if err := msgpack.Unmarshal(b, &in); err != nil {
			return Inode{}, err
		}
	}
	return in, nil
}

// unmarshalScalars decodes b into in and reports whether it could: false
// means b holds something it does not read, and in is partly written.
func (in *Inode) unmarshalScalars(b []byte) bool {
	r := byteReader{b: b}
	c, ok := r.byte()
	n := uint64(c & msgpcode.FixedMapMask)
	switch {
	case !ok:
		return false
	case c == msgpcode.Map16:
		n, ok = r.be(2)
	case !msgpcode.IsFixedMap(c):
		return false
	}
	if !ok {
		return false
	}
	for range n {
		kc, ok := r.byte()
		if !ok || !msgpcode.IsFixedString(kc) {
			return false
		}
		k, ok := r.take(int(kc & msgpcode.FixedStrMask))
		if !ok {
			return false
		}
		switch string(k) {
		case "i":
			in.Ino, ok = r.uint()
		case "y":
			var v uint64
			v, ok = r.uint()
			in.Type = FileType(v)
		case "s":
			in.Size, ok = r.int()
		case "m":
			in.Mode, ok = r.uint32()
		case "t":
			in.MTime, ok = r.int()
		case "l":
			in.Nlink, ok = r.uint32()
		case "u":
			in.Uid, ok = r.uint32()
		case "gi":
			in.Gid, ok = r.uint32()
		case "at":
			in.ATime, ok = r.int()
		case "ct":
			in.CTime, ok = r.int()
		case "gn":
			in.Gen, ok = r.uint()
		case "tg":
			in.Target, ok = r.str()
		case "rd":
			in.Rdev, ok = r.uint()
		case "pa":
			in.Parent, ok = r.uint()
		case "h":
			in.Hash, ok = r.str()
		case "d":
			in.Data, ok = r.bin()
		case "dk":
			in.DataKey, ok = r.uint32()
		case "mt":
			in.ContentType, ok = r.str()
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return len(r.b) == 0
}

// byteReader reads the msgpack encodings the reflection encoder writes
// for an Inode's scalars; each method reports false on any other.
type byteReader struct{ b []byte }

func (r *byteReader) byte() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *byteReader) take(n int) ([]byte, bool) {
	if n < 0 || len(r.b) < n {
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}

// be reads an n-byte big-endian number.
func (r *byteReader) be(n int) (uint64, bool) {
	v, ok := r.take(n)
	var x uint64
	for _, c := range v {
		x = x<<8 | uint64(c)
	}
	return x, ok
}

// uint reads an unsigned integer: positive fixnums and uint8 to uint64.
func (r *byteReader) uint() (uint64, bool) {
	c, ok := r.byte()
	switch {
	case !ok:
		return 0, false
	case c <= msgpcode.PosFixedNumHigh:
		return uint64(c), true
	case c == msgpcode.Uint8:
		return r.be(1)
	case c == msgpcode.Uint16:
		return r.be(2)
	case c == msgpcode.Uint32:
		return r.be(4)
	case c == msgpcode.Uint64:
		return r.be(8)
	}
	return 0, false
}

func (r *byteReader) uint32() (uint32, bool) {
	v, ok := r.uint()
	return uint32(v), ok
}

// int reads a signed integer: int64 (what the encoder writes for one) or
// any unsigned form.
func (r *byteReader) int() (int64, bool) {
	if len(r.b) > 0 && r.b[0] == msgpcode.Int64 {
		r.b = r.b[1:]
		v, ok := r.be(8)
		return int64(v), ok
	}
	v, ok := r.uint()
	return int64(v), ok && int64(v) >= 0
}

// str reads a string of any length.
func (r *byteReader) str() (string, bool) {
	c, ok := r.byte()
	var n uint64
	switch {
	case !ok:
		return "", false
	case msgpcode.IsFixedString(c):
		n = uint64(c & msgpcode.FixedStrMask)
	case c == msgpcode.Str8:
		n, ok = r.be(1)
	case c == msgpcode.Str16:
		n, ok = r.be(2)
	case c == msgpcode.Str32:
		n, ok = r.be(4)
	default:
		return "", false
	}
	v, ok2 := r.take(int(n))
	return string(v), ok && ok2
}

// bin reads a byte string, copied.
func (r *byteReader) bin() ([]byte, bool) {
	c, ok := r.byte()
	var n uint64
	switch {
	case !ok:
		return nil, false
	case c == msgpcode.Bin8:
		n, ok = r.be(1)
	case c == msgpcode.Bin16:
		n, ok = r.be(2)
	case c == msgpcode.Bin32:
		n, ok = r.be(4)
	default:
		return nil, false
	}
	v, ok2 := r.take(int(n))
	return bytes.Clone(v), ok && ok2
}
