package wire

import "github.com/vmihailenco/msgpack/v5"

// A Read, the ReadBatch that carries up to MaxReadBatch of them, and
// their answers are encoded by hand: a router sends a read for nearly
// every request it serves (a stat, an exists, a small file's lookup),
// and reflection spent most of its time deciding which of the many
// optional fields to omit and finding the encoder of each element's
// type. The bytes are exactly those msgpack's reflection writes from the
// struct tags, in declaration order, with its default settings (the
// only ones this project uses); read_codec_test.go checks it on random
// values. Decoding is left to reflection, which reads them as it always
// has.

// fieldMap writes a struct as reflection does: a map of the fields
// always written and of the optional ones set, each key before its
// value. err is the first error, after which nothing more is written.
type fieldMap struct {
	e   *msgpack.Encoder
	err error
}

// newFieldMap starts the map of always fields plus those of set that
// hold.
func newFieldMap(e *msgpack.Encoder, always int, set ...bool) fieldMap {
	for _, s := range set {
		if s {
			always++
		}
	}
	return fieldMap{e: e, err: e.EncodeMapLen(always)}
}

// key writes k and reports whether its value may follow.
func (m *fieldMap) key(k string) bool {
	if m.err == nil {
		m.err = m.e.EncodeString(k)
	}
	return m.err == nil
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r Read) EncodeMsgpack(e *msgpack.Encoder) error {
	// g, k, p and tk are always written: reflection never counts an
	// array as empty.
	m := newFieldMap(e, 4, r.Dir != 0, len(r.Hashes) > 0, len(r.Groups) > 0, r.Cred != nil, r.Want != 0,
		r.Name != "", r.Uid != 0, r.After != 0, r.Limit != 0, r.AfterName != "")
	if m.key("g") {
		m.err = e.EncodeString(r.Group)
	}
	if m.key("k") {
		m.err = e.EncodeUint8(uint8(r.Kind))
	}
	if m.key("p") {
		m.err = e.EncodeString(r.Path)
	}
	if r.Dir != 0 && m.key("d") {
		m.err = e.EncodeUint64(r.Dir)
	}
	if len(r.Hashes) > 0 && m.key("h") {
		m.err = e.Encode(r.Hashes)
	}
	if len(r.Groups) > 0 && m.key("rg") {
		m.err = e.Encode(r.Groups)
	}
	if r.Cred != nil && m.key("cr") {
		m.err = r.Cred.EncodeMsgpack(e)
	}
	if r.Want != 0 && m.key("w") {
		m.err = e.EncodeUint32(r.Want)
	}
	if m.key("tk") {
		m.err = e.EncodeBytes(r.Token[:])
	}
	if r.Name != "" && m.key("n") {
		m.err = e.EncodeString(r.Name)
	}
	if r.Uid != 0 && m.key("u") {
		m.err = e.EncodeUint32(r.Uid)
	}
	if r.After != 0 && m.key("af") {
		m.err = e.EncodeUint64(r.After)
	}
	if r.Limit != 0 && m.key("li") {
		m.err = e.EncodeInt(int64(r.Limit)) // reflection writes an int as its smallest form
	}
	if r.AfterName != "" && m.key("an") {
		m.err = e.EncodeString(r.AfterName)
	}
	return m.err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (b ReadBatch) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newFieldMap(e, 2)
	if m.key("g") {
		m.err = e.EncodeString(b.Group)
	}
	if m.key("r") {
		m.err = encodeSlice(e, b.Reads)
	}
	return m.err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r ReadResp) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newFieldMap(e, 1, r.Code != "", len(r.Entries) > 0, len(r.Referenced) > 0, len(r.Located) > 0, // and i
		r.User != nil, len(r.Users) > 0, len(r.Owned) > 0, r.Next != 0, r.More, r.Lock != nil)
	if r.Code != "" && m.key("c") {
		m.err = e.EncodeString(string(r.Code))
	}
	if m.key("i") {
		m.err = r.Inode.EncodeMsgpack(e)
	}
	if len(r.Entries) > 0 && m.key("e") {
		m.err = encodeSlice(e, r.Entries)
	}
	if len(r.Referenced) > 0 && m.key("r") {
		m.err = e.Encode(r.Referenced)
	}
	if len(r.Located) > 0 && m.key("lg") {
		m.err = e.Encode(r.Located)
	}
	if r.User != nil && m.key("us") {
		m.err = e.Encode(r.User)
	}
	if len(r.Users) > 0 && m.key("uss") {
		m.err = e.Encode(r.Users)
	}
	if len(r.Owned) > 0 && m.key("ow") {
		m.err = e.Encode(r.Owned)
	}
	if r.Next != 0 && m.key("nx") {
		m.err = e.EncodeUint64(r.Next)
	}
	if r.More && m.key("mo") {
		m.err = e.EncodeBool(true)
	}
	if r.Lock != nil && m.key("lk") {
		m.err = e.Encode(r.Lock)
	}
	return m.err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (b ReadBatchResp) EncodeMsgpack(e *msgpack.Encoder) error {
	m := newFieldMap(e, 1, len(b.Errs) > 0)
	if m.key("r") {
		m.err = encodeSlice(e, b.Resps)
	}
	if len(b.Errs) > 0 && m.key("e") {
		m.err = e.Encode(b.Errs)
	}
	return m.err
}

// encodeSlice writes s as reflection writes a slice: nil as nil, else an
// array of its elements, each by its own encoder.
func encodeSlice[T msgpack.CustomEncoder](e *msgpack.Encoder, s []T) error {
	if s == nil {
		return e.EncodeNil()
	}
	err := e.EncodeArrayLen(len(s))
	for i := 0; err == nil && i < len(s); i++ {
		err = s[i].EncodeMsgpack(e)
	}
	return err
}
