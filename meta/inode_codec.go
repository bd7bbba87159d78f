package meta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

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
// inodes. An inode of scalars alone is appended to a buffer and written
// at once, and read straight from the bytes of a reader that lends them
// (a wire frame's: decodeLent) or of a record (UnmarshalInode). Decoding
// takes what reflection takes: fields in any order, unknown fields
// skipped, integers of any width, and an array-encoded Inode through
// reflection itself (a DirEntry only as a map, which is all that was
// ever written). Both hold for encoders and decoders with
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
	if len(in.Chunks) == 0 && in.Usage == nil && in.Object == nil {
		// All scalars, as most answers' inodes and every listing's
		// entries are: appended here and written at once, where each
		// key and value through the encoder was a call of its own.
		buf := encodeBufs.Get().(*[]byte)
		*buf = in.appendScalars((*buf)[:0], name)
		_, err := e.Writer().Write(*buf)
		if cap(*buf) <= maxPooledEncode {
			encodeBufs.Put(buf)
		}
		return err
	}
	n := in.scalarFields(name)
	for _, set := range [...]bool{len(in.Chunks) > 0, in.Usage != nil, in.Object != nil} {
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

// encodeBufs holds the buffers an inode of scalars is appended into; one
// grown past maxPooledEncode (a large inline file) is left to the
// collector.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

const maxPooledEncode = 4 << 10

// appendScalars appends the bytes encode writes for in when it has no
// chunks, usage or object: the same map, field for field, each value
// in the encoding the encoder's method for its type writes.
func (in *Inode) appendScalars(b []byte, name *string) []byte {
	n := in.scalarFields(name)
	if n < 16 {
		b = append(b, msgpcode.FixedMapLow|byte(n))
	} else {
		b = append(b, msgpcode.Map16, 0, byte(n))
	}
	if name != nil {
		b = appendMsgpackString(append(b, msgpcode.FixedStrLow|1, 'n'), *name)
	}
	b = binary.BigEndian.AppendUint64(append(b, msgpcode.FixedStrLow|1, 'i', msgpcode.Uint64), in.Ino)
	b = append(b, msgpcode.FixedStrLow|1, 'y', msgpcode.Uint8, byte(in.Type))
	b = binary.BigEndian.AppendUint64(append(b, msgpcode.FixedStrLow|1, 's', msgpcode.Int64), uint64(in.Size))
	b = binary.BigEndian.AppendUint32(append(b, msgpcode.FixedStrLow|1, 'm', msgpcode.Uint32), in.Mode)
	b = binary.BigEndian.AppendUint64(append(b, msgpcode.FixedStrLow|1, 't', msgpcode.Int64), uint64(in.MTime))
	b = binary.BigEndian.AppendUint32(append(b, msgpcode.FixedStrLow|1, 'l', msgpcode.Uint32), in.Nlink)
	if in.Uid != 0 {
		b = binary.BigEndian.AppendUint32(append(b, msgpcode.FixedStrLow|1, 'u', msgpcode.Uint32), in.Uid)
	}
	if in.Gid != 0 {
		b = binary.BigEndian.AppendUint32(append(b, msgpcode.FixedStrLow|2, 'g', 'i', msgpcode.Uint32), in.Gid)
	}
	if in.ATime != 0 {
		b = binary.BigEndian.AppendUint64(append(b, msgpcode.FixedStrLow|2, 'a', 't', msgpcode.Int64), uint64(in.ATime))
	}
	if in.CTime != 0 {
		b = binary.BigEndian.AppendUint64(append(b, msgpcode.FixedStrLow|2, 'c', 't', msgpcode.Int64), uint64(in.CTime))
	}
	if in.Gen != 0 {
		b = binary.BigEndian.AppendUint64(append(b, msgpcode.FixedStrLow|2, 'g', 'n', msgpcode.Uint64), in.Gen)
	}
	if in.Target != "" {
		b = appendMsgpackString(append(b, msgpcode.FixedStrLow|2, 't', 'g'), in.Target)
	}
	if in.Rdev != 0 {
		b = binary.BigEndian.AppendUint64(append(b, msgpcode.FixedStrLow|2, 'r', 'd', msgpcode.Uint64), in.Rdev)
	}
	if in.Parent != 0 {
		b = binary.BigEndian.AppendUint64(append(b, msgpcode.FixedStrLow|2, 'p', 'a', msgpcode.Uint64), in.Parent)
	}
	if in.Hash != "" {
		b = appendMsgpackString(append(b, msgpcode.FixedStrLow|1, 'h'), in.Hash)
	}
	if len(in.Data) > 0 {
		b = appendSized(append(b, msgpcode.FixedStrLow|1, 'd'), len(in.Data), msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32)
		b = append(b, in.Data...)
	}
	if in.DataKey != 0 {
		b = binary.BigEndian.AppendUint32(append(b, msgpcode.FixedStrLow|2, 'd', 'k', msgpcode.Uint32), in.DataKey)
	}
	if in.ContentType != "" {
		b = appendMsgpackString(append(b, msgpcode.FixedStrLow|2, 'm', 't'), in.ContentType)
	}
	return b
}

// scalarFields counts the fields of in that encode writes and are not
// chunks, usage or an object: i, y, s, m, t and l always, the name when
// given, the others when set.
func (in *Inode) scalarFields(name *string) int {
	n := 6
	if name != nil {
		n++
	}
	for _, set := range [...]bool{in.Uid != 0, in.Gid != 0, in.ATime != 0, in.CTime != 0, in.Gen != 0,
		in.Target != "", in.Rdev != 0, in.Parent != 0, in.Hash != "", len(in.Data) > 0,
		in.DataKey != 0, in.ContentType != ""} {
		if set {
			n++
		}
	}
	return n
}

// appendMsgpackString appends s as the encoder's EncodeString writes it.
func appendMsgpackString(b []byte, s string) []byte {
	if len(s) < 32 {
		b = append(b, msgpcode.FixedStrLow|byte(len(s)))
	} else {
		b = appendSized(b, len(s), msgpcode.Str8, msgpcode.Str16, msgpcode.Str32)
	}
	return append(b, s...)
}

// appendSized appends the header of a string or bin of l bytes in its
// narrowest sized form: code8, code16 or code32 and the length.
func appendSized(b []byte, l int, code8, code16, code32 byte) []byte {
	switch {
	case l < 256:
		return append(b, code8, byte(l))
	case l <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, code16), uint16(l))
	}
	return binary.BigEndian.AppendUint32(append(b, code32), uint32(l))
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
	if decodeLent(d, in, nil) {
		return nil
	}
	return decodeStruct(d, in, (*inodeFields)(in))
}

// DecodeMsgpack implements msgpack.CustomDecoder: a map of the Name and
// the Inode's fields, as DirEntry.EncodeMsgpack writes.
func (de *DirEntry) DecodeMsgpack(d *msgpack.Decoder) error {
	if decodeLent(d, &de.Inode, &de.Name) {
		return nil
	}
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

// lentBytes is a reader that lends a decoder the bytes it has not read
// yet, as a frame of the wire protocol being decoded does.
type lentBytes interface {
	Unread() []byte
	Discard(n int)
}

// decodeLent reads the record ahead of d into *in (and its name into
// *name, for a DirEntry) straight from the bytes of d's reader, when the
// reader lends them (lentBytes) and the record is a map of scalars, as
// an answer's inode and a listing's entries are; it reports whether it
// did, and leaves *in, *name and d as they were when not. Read through
// the decoder, such a record cost a call per key and per value, each
// through the reader: most of a router's CPU serving a listing.
func decodeLent(d *msgpack.Decoder, in *Inode, name *string) bool {
	r, ok := d.Buffered().(lentBytes)
	if !ok {
		return false
	}
	v := *in
	var nm string
	if name != nil {
		nm = *name
	}
	n, ok := v.scanScalars(r.Unread(), name != nil, &nm)
	if !ok {
		return false
	}
	*in = v
	if name != nil {
		*name = nm
	}
	r.Discard(n)
	return true
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
	n, ok := in.scanScalars(b, false, nil)
	return ok && n == len(b)
}

// scanScalars decodes the map of scalars at the start of b into in, and
// a DirEntry's name (the key "n") into *name when named is set. It
// returns how many bytes the map took, or false when b does not start
// with one it reads, with in and *name partly written.
func (in *Inode) scanScalars(b []byte, named bool, name *string) (int, bool) {
	r := byteReader{b: b}
	c, ok := r.byte()
	n := uint64(c & msgpcode.FixedMapMask)
	switch {
	case !ok:
		return 0, false
	case c == msgpcode.Map16:
		n, ok = r.be(2)
	case !msgpcode.IsFixedMap(c):
		return 0, false
	}
	if !ok {
		return 0, false
	}
	for range n {
		kc, ok := r.byte()
		if !ok || !msgpcode.IsFixedString(kc) {
			return 0, false
		}
		k, ok := r.take(int(kc & msgpcode.FixedStrMask))
		if !ok {
			return 0, false
		}
		switch string(k) {
		case "n":
			if !named {
				return 0, false
			}
			*name, ok = r.str()
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
			return 0, false
		}
		if !ok {
			return 0, false
		}
	}
	return len(b) - len(r.b), true
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
