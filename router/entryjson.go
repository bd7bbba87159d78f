package router

import (
	"encoding/json"
	"strconv"
	"time"

	"shoal/meta"
)

// appendEntryJSON appends the JSON of one listing entry, byte for byte
// what json.Marshal(api.DirEntry{Name: name, Attr: attrOf(*in)}) makes,
// without reflection. A listing encodes one per entry, and encoding/json
// spent most of a router's CPU on them: its walk of the struct's fields,
// and the check of what time.Time's own MarshalJSON returns.
func appendEntryJSON(b []byte, name string, in *meta.Inode) []byte {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, name)
	b = appendAttrJSON(append(b, ','), in)
	return append(b, '}')
}

// appendStatJSON appends the compact JSON of statOf(p, *in), as
// json.Marshal makes it: what a stat and every write answer with.
func appendStatJSON(b []byte, p string, in *meta.Inode) []byte {
	b = append(b, `{"path":`...)
	b = appendJSONString(b, p)
	b = appendAttrJSON(append(b, ','), in)
	b = append(b, `,"hash":`...)
	b = appendJSONString(b, in.Hash)
	if in.ContentType != "" {
		b = append(b, `,"content_type":`...)
		b = appendJSONString(b, in.ContentType)
	}
	return append(b, '}')
}

// appendAttrJSON appends the fields of attrOf(*in), in order, without the
// braces around them.
func appendAttrJSON(b []byte, in *meta.Inode) []byte {
	b = append(b, `"ino":`...)
	b = strconv.AppendUint(b, in.Ino, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, in.Type.String())
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, in.Size, 10)
	b = append(b, `,"mode":`...)
	b = strconv.AppendUint(b, uint64(in.Mode), 10)
	b = append(b, `,"mode_octal":"`...)
	b = appendOctal4(b, in.Mode)
	b = append(b, `","nlink":`...)
	b = strconv.AppendUint(b, uint64(in.Nlink), 10)
	b = append(b, `,"uid":`...)
	b = strconv.AppendUint(b, uint64(in.Uid), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendUint(b, uint64(in.Gid), 10)
	b = append(b, `,"atime":`...)
	b = appendJSONTime(b, in.ATime)
	b = append(b, `,"mtime":`...)
	b = appendJSONTime(b, in.MTime)
	b = append(b, `,"ctime":`...)
	b = appendJSONTime(b, in.CTime)
	b = append(b, `,"gen":`...)
	b = strconv.AppendUint(b, in.Gen, 10)
	if in.Target != "" {
		b = append(b, `,"target":`...)
		b = appendJSONString(b, in.Target)
	}
	if in.Rdev != 0 {
		b = append(b, `,"rdev":`...)
		b = strconv.AppendUint(b, in.Rdev, 10)
	}
	if u := in.Usage; u != nil {
		b = append(b, `,"usage":{"bytes":`...)
		b = strconv.AppendInt(b, u.Bytes, 10)
		b = append(b, `,"files":`...)
		b = strconv.AppendInt(b, u.Files, 10)
		b = append(b, `,"dirs":`...)
		b = strconv.AppendInt(b, u.Dirs, 10)
		b = append(b, '}')
	}
	return b
}

// appendJSONString appends s as json.Marshal quotes it. Printable ASCII
// with nothing to escape, what names mostly are, is copied as it is;
// anything else (control bytes, quotes, the HTML characters json.Marshal
// escapes, UTF-8 it checks) is left to json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends the time ns nanoseconds after the epoch as
// json.Marshal writes utc(ns): RFC 3339 with nanoseconds, quoted. Every
// int64 of nanoseconds is a year time.Time's MarshalJSON accepts.
func appendJSONTime(b []byte, ns int64) []byte {
	b = append(b, '"')
	b = utc(ns).AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendOctal4 appends mode in octal, at least four digits, as
// fmt.Sprintf("%04o", mode) writes it.
func appendOctal4(b []byte, mode uint32) []byte {
	for limit := uint32(0o1000); limit >= 0o10 && mode < limit; limit >>= 3 {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, uint64(mode), 8)
}
