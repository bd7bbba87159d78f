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

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r Read) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 4 // g, k, p, and tk: reflection never counts an array as empty
	for _, set := range [...]bool{r.Dir != 0, len(r.Hashes) > 0, len(r.Groups) > 0, r.Cred != nil, r.Want != 0,
		r.Name != "", r.Uid != 0, r.After != 0, r.Limit != 0, r.AfterName != ""} {
		if set {
			n++
		}
	}
	err := e.EncodeMapLen(n)
	key := func(k string) bool {
		if err == nil {
			err = e.EncodeString(k)
		}
		return err == nil
	}
	if key("g") {
		err = e.EncodeString(r.Group)
	}
	if key("k") {
		err = e.EncodeUint8(uint8(r.Kind))
	}
	if key("p") {
		err = e.EncodeString(r.Path)
	}
	if r.Dir != 0 && key("d") {
		err = e.EncodeUint64(r.Dir)
	}
	if len(r.Hashes) > 0 && key("h") {
		err = e.Encode(r.Hashes)
	}
	if len(r.Groups) > 0 && key("rg") {
		err = e.Encode(r.Groups)
	}
	if r.Cred != nil && key("cr") {
		err = r.Cred.EncodeMsgpack(e)
	}
	if r.Want != 0 && key("w") {
		err = e.EncodeUint32(r.Want)
	}
	if key("tk") {
		err = e.EncodeBytes(r.Token[:])
	}
	if r.Name != "" && key("n") {
		err = e.EncodeString(r.Name)
	}
	if r.Uid != 0 && key("u") {
		err = e.EncodeUint32(r.Uid)
	}
	if r.After != 0 && key("af") {
		err = e.EncodeUint64(r.After)
	}
	if r.Limit != 0 && key("li") {
		err = e.EncodeInt(int64(r.Limit)) // reflection writes an int as its smallest form
	}
	if r.AfterName != "" && key("an") {
		err = e.EncodeString(r.AfterName)
	}
	return err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (b ReadBatch) EncodeMsgpack(e *msgpack.Encoder) error {
	err := e.EncodeMapLen(2)
	if err == nil {
		err = e.EncodeString("g")
	}
	if err == nil {
		err = e.EncodeString(b.Group)
	}
	if err == nil {
		err = e.EncodeString("r")
	}
	if err != nil {
		return err
	}
	if b.Reads == nil {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(len(b.Reads)); err != nil {
		return err
	}
	for i := range b.Reads {
		if err := b.Reads[i].EncodeMsgpack(e); err != nil {
			return err
		}
	}
	return nil
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (r ReadResp) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 1 // i is always written
	for _, set := range [...]bool{r.Code != "", len(r.Entries) > 0, len(r.Referenced) > 0, len(r.Located) > 0,
		r.User != nil, len(r.Users) > 0, len(r.Owned) > 0, r.Next != 0, r.More, r.Lock != nil} {
		if set {
			n++
		}
	}
	err := e.EncodeMapLen(n)
	key := func(k string) bool {
		if err == nil {
			err = e.EncodeString(k)
		}
		return err == nil
	}
	if r.Code != "" && key("c") {
		err = e.EncodeString(string(r.Code))
	}
	if key("i") {
		err = r.Inode.EncodeMsgpack(e)
	}
	if len(r.Entries) > 0 && key("e") {
		err = e.EncodeArrayLen(len(r.Entries))
		for i := range r.Entries {
			if err == nil {
				err = r.Entries[i].EncodeMsgpack(e)
			}
		}
	}
	if len(r.Referenced) > 0 && key("r") {
		err = e.Encode(r.Referenced)
	}
	if len(r.Located) > 0 && key("lg") {
		err = e.Encode(r.Located)
	}
	if r.User != nil && key("us") {
		err = e.Encode(r.User)
	}
	if len(r.Users) > 0 && key("uss") {
		err = e.Encode(r.Users)
	}
	if len(r.Owned) > 0 && key("ow") {
		err = e.Encode(r.Owned)
	}
	if r.Next != 0 && key("nx") {
		err = e.EncodeUint64(r.Next)
	}
	if r.More && key("mo") {
		err = e.EncodeBool(true)
	}
	if r.Lock != nil && key("lk") {
		err = e.Encode(r.Lock)
	}
	return err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (b ReadBatchResp) EncodeMsgpack(e *msgpack.Encoder) error {
	n := 1
	if len(b.Errs) > 0 {
		n++
	}
	err := e.EncodeMapLen(n)
	if err == nil {
		err = e.EncodeString("r")
	}
	if err != nil {
		return err
	}
	if b.Resps == nil {
		err = e.EncodeNil()
	} else if err = e.EncodeArrayLen(len(b.Resps)); err == nil {
		for i := range b.Resps {
			if err = b.Resps[i].EncodeMsgpack(e); err != nil {
				return err
			}
		}
	}
	if err == nil && len(b.Errs) > 0 {
		if err = e.EncodeString("e"); err == nil {
			err = e.Encode(b.Errs)
		}
	}
	return err
}
