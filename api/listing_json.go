package api

import (
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"
)

// listingFields is Listing without its UnmarshalJSON.
type listingFields Listing

// UnmarshalJSON reads a listing as encoding/json reads it without this
// method, into a fresh Entries, only faster: a listing of a large
// directory holds tens of thousands of entries, and encoding/json's
// reflection, with its three calls per entry to time.Time's own
// UnmarshalJSON, was most of the CPU a client spent listing one. It reads
// a listing in any layout and field order; one it does not read itself
// (a field it does not know, a null, an escape in a string, a number
// with a fraction or out of its field's range) it leaves to
// encoding/json, whose errors are the answer then.
func (l *Listing) UnmarshalJSON(b []byte) error {
	fast := *l
	fast.Entries = nil
	if p := (listingParser{b: b}); p.listing(&fast) {
		*l = fast
		return nil
	}
	l.Entries = nil
	return json.Unmarshal(b, (*listingFields)(l))
}

// listingParser reads JSON of a listing's shape from b; each method
// reports false on anything it does not read, for encoding/json to.
type listingParser struct {
	b []byte
	i int
}

func (p *listingParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether c comes next, taking it.
func (p *listingParser) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads the members of an object whose '{' is next, calling
// member with each key after its ':'.
func (p *listingParser) object(member func(key string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		k, ok := p.str()
		if !ok || !p.next(':') || !member(k) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

func (p *listingParser) listing(l *Listing) bool {
	ok := p.object(func(k string) bool {
		switch k {
		case "path":
			var ok bool
			l.Path, ok = p.str()
			return ok
		case "next":
			var ok bool
			l.Next, ok = p.str()
			return ok
		case "entries":
			if l.Entries != nil {
				// A second list: encoding/json decodes it into the
				// entries of the first, which only it does.
				return false
			}
			l.Entries = []DirEntry{} // "[]" is an empty list, not none
			if !p.next('[') {
				return false
			}
			if p.next(']') {
				return true
			}
			for {
				l.Entries = append(l.Entries, DirEntry{})
				if !p.entry(&l.Entries[len(l.Entries)-1]) {
					return false
				}
				if p.next(']') {
					return true
				}
				if !p.next(',') {
					return false
				}
			}
		}
		return false
	})
	p.ws()
	return ok && p.i == len(p.b)
}

func (p *listingParser) entry(e *DirEntry) bool {
	return p.object(func(k string) bool {
		var ok bool
		switch k {
		case "name":
			e.Name, ok = p.str()
		case "ino":
			e.Ino, ok = p.uint(math.MaxUint64)
		case "type":
			e.Type, ok = p.str()
		case "size":
			e.Size, ok = p.int()
		case "mode":
			e.Mode, ok = p.uint32()
		case "mode_octal":
			e.ModeOctal, ok = p.str()
		case "nlink":
			e.Nlink, ok = p.uint32()
		case "uid":
			e.Uid, ok = p.uint32()
		case "gid":
			e.Gid, ok = p.uint32()
		case "atime":
			ok = p.time(&e.ATime)
		case "mtime":
			ok = p.time(&e.MTime)
		case "ctime":
			ok = p.time(&e.CTime)
		case "gen":
			e.Gen, ok = p.uint(math.MaxUint64)
		case "target":
			e.Target, ok = p.str()
		case "rdev":
			e.Rdev, ok = p.uint(math.MaxUint64)
		case "usage":
			if e.Usage == nil { // a second "usage" adds to the first, as encoding/json does
				e.Usage = &Usage{}
			}
			u := e.Usage
			ok = p.object(func(k string) bool {
				var ok bool
				switch k {
				case "bytes":
					u.Bytes, ok = p.int()
				case "files":
					u.Files, ok = p.int()
				case "dirs":
					u.Dirs, ok = p.int()
				}
				return ok
			})
		}
		return ok
	})
}

// str reads a string without escapes or control characters, whose bytes
// are valid UTF-8 (encoding/json changes invalid bytes).
func (p *listingParser) str() (string, bool) {
	if !p.next('"') {
		return "", false
	}
	start, ascii := p.i, true
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// uint reads a JSON integer from 0 to limit.
func (p *listingParser) uint(limit uint64) (uint64, bool) {
	p.ws()
	start := p.i
	var v uint64
	for ; p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9'; p.i++ {
		d := uint64(p.b[p.i] - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	n := p.i - start
	if n == 0 || n > 1 && p.b[start] == '0' {
		return 0, false // no digits, or a leading zero: not JSON
	}
	if p.i < len(p.b) {
		if c := p.b[p.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return v, true
}

func (p *listingParser) uint32() (uint32, bool) {
	v, ok := p.uint(math.MaxUint32)
	return uint32(v), ok
}

// int reads a JSON integer that fits an int64.
func (p *listingParser) int() (int64, bool) {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] < '0' || p.b[p.i] > '9') {
			return 0, false // "- 1" is not JSON
		}
		v, ok := p.uint(1 << 63)
		return -int64(v), ok
	}
	v, ok := p.uint(math.MaxInt64)
	return int64(v), ok
}

// time reads a time as time.Time's UnmarshalJSON does: RFC 3339 in a
// string, parsed by its UnmarshalText.
func (p *listingParser) time(t *time.Time) bool {
	s, ok := p.str()
	return ok && t.UnmarshalText([]byte(s)) == nil
}
