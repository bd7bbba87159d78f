package meta

import (
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// An Op is encoded and decoded by hand, as an Inode is (see
// inode_codec.go): every log entry carries one, and each is encoded for
// the primary's log, for each replica it is sent to and for each
// replica's log, and decoded where it arrives; reflection spent most of
// that time checking which of the Op's many fields to omit. The bytes
// are exactly those the reflection encoder writes from the struct tags,
// in declaration order, and op_codec_test.go checks it on random ops;
// decoding takes what reflection takes, as the Inode's codec does. The
// rarely set fields that are structs of their own (SetAttr, User, LockOp,
// Members) still go through reflection. A Cred, which every client's op
// and read carries, has a codec of its own.

// opFields is Op without its codec: reflection encodes and decodes it
// from the same tags.
type opFields Op

// EncodeMsgpack implements msgpack.CustomEncoder.
func (op Op) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 1 // k is always written
	for _, set := range [...]bool{op.Path != "", op.To != "", op.Recursive, op.Parents, op.Time != 0, op.Mode != 0,
		op.ModeGiven, op.File != nil, len(op.Members) > 0, op.Forming, op.ReqID != "", len(op.ReqSum) > 0,
		op.Clock != 0, op.Dir != 0, op.ToDir != 0, op.Uid != 0, op.Gid != 0, op.Excl, op.NoReplace, op.NotDir,
		op.OnlyDir, op.Orphan, op.WantDirs, op.Target != "", op.TTL != 0, op.Node != 0, op.Rdev != 0, op.Gen != 0,
		op.Attr != nil, op.Cred != nil, op.Owner, op.User != nil, op.Bootstrap, op.IfMatch != "", op.IfAbsent,
		op.Lock != nil, op.Fence != 0} {
		if set {
			n++
		}
	}
	w := fieldWriter{e: e, err: e.EncodeMapLen(n)}
	if w.key("k") {
		w.err = e.EncodeUint8(uint8(op.Kind))
	}
	w.stringSet("p", op.Path)
	w.stringSet("o", op.To)
	w.boolSet("r", op.Recursive)
	w.boolSet("a", op.Parents)
	w.int64Set("t", op.Time)
	w.uint32Set("m", op.Mode)
	w.boolSet("mg", op.ModeGiven)
	if op.File != nil && w.key("f") {
		w.err = op.File.encode(e, nil)
	}
	if len(op.Members) > 0 && w.key("v") {
		w.err = e.Encode(op.Members)
	}
	w.boolSet("fm", op.Forming)
	w.stringSet("q", op.ReqID)
	if len(op.ReqSum) > 0 && w.key("qs") {
		w.err = e.EncodeBytes(op.ReqSum)
	}
	w.int64Set("ck", op.Clock)
	w.uint64Set("dr", op.Dir)
	w.uint64Set("td", op.ToDir)
	w.uint32Set("u", op.Uid)
	w.uint32Set("gi", op.Gid)
	w.boolSet("x", op.Excl)
	w.boolSet("nr", op.NoReplace)
	w.boolSet("nd", op.NotDir)
	w.boolSet("od", op.OnlyDir)
	w.boolSet("or", op.Orphan)
	w.boolSet("wd", op.WantDirs)
	w.stringSet("tg", op.Target)
	w.int64Set("tl", op.TTL)
	if op.Node != 0 && w.key("nk") {
		w.err = e.EncodeUint8(uint8(op.Node))
	}
	w.uint64Set("rd", op.Rdev)
	w.uint64Set("gn", op.Gen)
	if op.Attr != nil && w.key("sa") {
		w.err = e.Encode(op.Attr)
	}
	if op.Cred != nil && w.key("cr") {
		w.err = op.Cred.EncodeMsgpack(e)
	}
	w.boolSet("ow", op.Owner)
	if op.User != nil && w.key("us") {
		w.err = e.Encode(op.User)
	}
	w.boolSet("bs", op.Bootstrap)
	w.stringSet("im", op.IfMatch)
	w.boolSet("ia", op.IfAbsent)
	if op.Lock != nil && w.key("lk") {
		w.err = e.Encode(op.Lock)
	}
	w.uint64Set("fn", op.Fence)
	return w.err
}

// The ...Set methods write a field tagged omitempty: nothing when its
// value is the zero value, as reflection omits it.

func (w *fieldWriter) stringSet(k, v string) {
	if v != "" {
		w.string(k, v)
	}
}

func (w *fieldWriter) boolSet(k string, v bool) {
	if v && w.key(k) {
		w.err = w.e.EncodeBool(true)
	}
}

func (w *fieldWriter) int64Set(k string, v int64) {
	if v != 0 {
		w.int64(k, v)
	}
}

func (w *fieldWriter) uint64Set(k string, v uint64) {
	if v != 0 {
		w.uint64(k, v)
	}
}

func (w *fieldWriter) uint32Set(k string, v uint32) {
	if v != 0 {
		w.uint32(k, v)
	}
}

// DecodeMsgpack implements msgpack.CustomDecoder. Like reflection, it
// leaves fields the record does not name as they were.
func (op *Op) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeStruct(d, op, (*opFields)(op))
}

func (op *Op) decodeField(d *msgpack.Decoder, k []byte) error {
	var err error
	switch string(k) {
	case "k":
		var v uint64
		v, err = d.DecodeUint64()
		op.Kind = OpKind(v)
	case "p":
		op.Path, err = d.DecodeString()
	case "o":
		op.To, err = d.DecodeString()
	case "r":
		op.Recursive, err = d.DecodeBool()
	case "a":
		op.Parents, err = d.DecodeBool()
	case "t":
		op.Time, err = d.DecodeInt64()
	case "m":
		op.Mode, err = decodeUint32(d)
	case "mg":
		op.ModeGiven, err = d.DecodeBool()
	case "f":
		err = decodePtr(d, &op.File)
	case "v":
		err = d.Decode(&op.Members)
	case "fm":
		op.Forming, err = d.DecodeBool()
	case "q":
		op.ReqID, err = d.DecodeString()
	case "qs":
		op.ReqSum, err = d.DecodeBytes()
	case "ck":
		op.Clock, err = d.DecodeInt64()
	case "dr":
		op.Dir, err = d.DecodeUint64()
	case "td":
		op.ToDir, err = d.DecodeUint64()
	case "u":
		op.Uid, err = decodeUint32(d)
	case "gi":
		op.Gid, err = decodeUint32(d)
	case "x":
		op.Excl, err = d.DecodeBool()
	case "nr":
		op.NoReplace, err = d.DecodeBool()
	case "nd":
		op.NotDir, err = d.DecodeBool()
	case "od":
		op.OnlyDir, err = d.DecodeBool()
	case "or":
		op.Orphan, err = d.DecodeBool()
	case "wd":
		op.WantDirs, err = d.DecodeBool()
	case "tg":
		op.Target, err = d.DecodeString()
	case "tl":
		op.TTL, err = d.DecodeInt64()
	case "nk":
		var v uint64
		v, err = d.DecodeUint64()
		op.Node = FileType(v)
	case "rd":
		op.Rdev, err = d.DecodeUint64()
	case "gn":
		op.Gen, err = d.DecodeUint64()
	case "sa":
		err = d.Decode(&op.Attr)
	case "cr":
		err = decodePtr(d, &op.Cred)
	case "ow":
		op.Owner, err = d.DecodeBool()
	case "us":
		err = d.Decode(&op.User)
	case "bs":
		op.Bootstrap, err = d.DecodeBool()
	case "im":
		op.IfMatch, err = d.DecodeString()
	case "ia":
		op.IfAbsent, err = d.DecodeBool()
	case "lk":
		err = d.Decode(&op.Lock)
	case "fn":
		op.Fence, err = d.DecodeUint64()
	default:
		err = d.Skip()
	}
	return err
}

// decodePtr decodes into the struct *p points to: nil makes *p nil,
// anything else is decoded into *p, allocated if nil. (Reflection, given
// nil for a pointer to a type with a decoder of its own, either sets the
// pointer nil or zeroes what it points to, depending on which types its
// cache met first; no encoder here writes such a nil.)
func decodePtr[T any, P interface {
	*T
	msgpack.CustomDecoder
}](d *msgpack.Decoder, p *P) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if c == msgpcode.Nil {
		*p = nil
		return d.DecodeNil()
	}
	if *p == nil {
		*p = new(T)
	}
	return (*p).DecodeMsgpack(d)
}

// credFields is Cred without its codec.
type credFields Cred

// EncodeMsgpack implements msgpack.CustomEncoder, writing the bytes
// reflection writes from the tags.
func (c Cred) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 2 // u and g are always written
	for _, set := range [...]bool{len(c.Groups) > 0, c.Root, c.Host} {
		if set {
			n++
		}
	}
	w := fieldWriter{e: e, err: e.EncodeMapLen(n)}
	w.uint32("u", c.Uid)
	w.uint32("g", c.Gid)
	if len(c.Groups) > 0 && w.key("gs") {
		w.err = e.EncodeArrayLen(len(c.Groups))
		for _, g := range c.Groups {
			if w.err == nil {
				w.err = e.EncodeUint32(g)
			}
		}
	}
	w.boolSet("r", c.Root)
	w.boolSet("h", c.Host)
	return w.err
}

// DecodeMsgpack implements msgpack.CustomDecoder, taking what reflection
// takes.
func (c *Cred) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeStruct(d, c, (*credFields)(c))
}

func (c *Cred) decodeField(d *msgpack.Decoder, k []byte) error {
	var err error
	switch string(k) {
	case "u":
		c.Uid, err = decodeUint32(d)
	case "g":
		c.Gid, err = decodeUint32(d)
	case "gs":
		err = d.Decode(&c.Groups)
	case "r":
		c.Root, err = d.DecodeBool()
	case "h":
		c.Host, err = d.DecodeBool()
	default:
		err = d.Skip()
	}
	return err
}
