package router

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"shoal/clock"
	"shoal/meta"
	"shoal/wire"
)

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

type s3Owner struct {
	ID          string
	DisplayName string `xml:",omitempty"`
}

type listBucketsResult struct {
	XMLName xml.Name `xml:"ListAllMyBucketsResult"`
	NS      string   `xml:"xmlns,attr"`
	Owner   s3Owner
	Buckets []s3Bucket `xml:"Buckets>Bucket"`
}

type s3Bucket struct {
	Name         string
	CreationDate string
}

// owner is the caller as S3 answers name owners.
func s3OwnerOf(ctx context.Context) s3Owner {
	if c := callerOf(ctx); c != nil {
		return s3Owner{ID: strconv.FormatUint(uint64(c.user.Uid), 10), DisplayName: c.user.Name}
	}
	return s3Owner{ID: "0", DisplayName: "root"}
}

// readDir reads every entry of the directory at p (in pages).
func (x *s3Server) readDir(ctx context.Context, p string) ([]meta.DirEntry, error) {
	var out []meta.DirEntry
	after := ""
	for {
		rr, err := x.s.metaRead(ctx, &wire.Read{Kind: wire.ReadReadDir, Path: p, Cred: credOf(ctx), AfterName: after})
		if err != nil {
			return nil, err
		}
		out = append(out, rr.Entries...)
		if !rr.More || len(rr.Entries) == 0 {
			return out, nil
		}
		after = rr.Entries[len(rr.Entries)-1].Name
	}
}

// listBuckets serves ListBuckets: the directories at the root whose names
// are bucket names.
func (x *s3Server) listBuckets(w http.ResponseWriter, r *http.Request) {
	entries, err := x.readDir(r.Context(), "/")
	if err != nil {
		x.fail(w, r, s3Target{}, err)
		return
	}
	out := listBucketsResult{NS: s3NS, Owner: s3OwnerOf(r.Context()), Buckets: []s3Bucket{}}
	for _, e := range entries {
		if e.Inode.Type == meta.TypeDir && validBucket(e.Name) {
			out.Buckets = append(out.Buckets, s3Bucket{Name: e.Name, CreationDate: s3Time(e.Inode.CTime)})
		}
	}
	writeXML(w, http.StatusOK, out)
}

func (x *s3Server) headBucket(w http.ResponseWriter, r *http.Request, t s3Target) {
	in, err := x.lookup(r.Context(), "/"+t.bucket, meta.MayRead)
	if err == nil && in.Type != meta.TypeDir {
		err = meta.ErrNotFound
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	w.Header().Set("X-Amz-Bucket-Region", x.cfg.Region)
	w.WriteHeader(http.StatusOK)
}

type locationResult struct {
	XMLName  xml.Name `xml:"LocationConstraint"`
	NS       string   `xml:"xmlns,attr"`
	Location string   `xml:",chardata"`
}

func (x *s3Server) bucketLocation(w http.ResponseWriter, r *http.Request, t s3Target) {
	if _, err := x.bucketDir(r.Context(), t); err != nil {
		x.fail(w, r, t, err)
		return
	}
	loc := x.cfg.Region
	if loc == "us-east-1" {
		loc = "" // as S3 says it
	}
	writeXML(w, http.StatusOK, locationResult{NS: s3NS, Location: loc})
}

type createBucketConfiguration struct {
	LocationConstraint string
}

// bucketMode is a new bucket's mode: private to its owner, as S3 buckets
// are; the file API's chmod opens it to others.
const bucketMode = 0o700

func (x *s3Server) createBucket(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	public, _, err := cannedBucketACL(r.Header)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	if r.ContentLength != 0 {
		var cfg createBucketConfiguration
		if err := x.readXML(r, &cfg); err != nil {
			x.fail(w, r, t, err)
			return
		}
	}
	x.forget(t.bucket)
	_, err = x.propose(ctx, meta.Op{Kind: meta.OpMkdir, Path: "/" + t.bucket, Mode: bucketMode, Time: clock.Now().UnixNano()})
	if err == nil && public {
		// A second step: should it fail, the bucket stays private.
		err = x.setPublic(ctx, t, true)
	}
	if errors.Is(err, meta.ErrExists) {
		in, lerr := x.lookup(ctx, "/"+t.bucket, 0)
		c := callerOf(ctx)
		switch {
		case lerr == nil && in.Type == meta.TypeDir && (c == nil || c.user.Uid == in.Uid):
			err = s3Err(http.StatusConflict, "BucketAlreadyOwnedByYou", "you already own the bucket %s", t.bucket)
		default:
			err = s3Err(http.StatusConflict, "BucketAlreadyExists", "the name %s is taken: pick another", t.bucket)
		}
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	w.Header().Set("Location", "/"+t.bucket)
	w.WriteHeader(http.StatusOK)
}

func (x *s3Server) deleteBucket(w http.ResponseWriter, r *http.Request, t s3Target) {
	defer x.forget(t.bucket)
	_, err := x.propose(r.Context(), meta.Op{Kind: meta.OpDelete, Path: "/" + t.bucket, OnlyDir: true, Time: clock.Now().UnixNano()})
	if errors.Is(err, meta.ErrNotDir) {
		err = meta.ErrNotFound
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// s3Entry is one result of a listing: an object, or a common prefix.
type s3Entry struct {
	key    string
	in     meta.Inode
	prefix bool
}

// listing is what a ListObjects asks.
type listing struct {
	prefix, delim, after string
	limit                int
}

// walk lists the objects of the bucket in key order: those whose keys
// start with l.prefix and come after l.after, the keys that share a part
// up to l.delim after the prefix folded into one common prefix. It stops
// once it has more than l.limit results (truncated). Keys are paths, so
// it walks the directories the prefix names, each in pages from the first
// name that can matter (see startName) until the page is full, and skips
// every directory whose keys all fall before l.after, outside the prefix,
// or in one common prefix: a page costs about as many entries read as it
// answers, however large the bucket. A directory the caller may not read
// is left out.
//
// A directory reads its entries in name order, and keys sort otherwise:
// the directory a holds keys "a/...", which come after the file "a-b"
// ('-' sorts before '/') though the name a comes before a-b. So a
// directory waits on a stack until the names read pass its key: those
// that come between start with its name followed by a byte below '/',
// and so the stack holds directories each named by a prefix of the
// next, the top one's key the least.
func (x *s3Server) walk(ctx context.Context, t s3Target, l listing) (out []s3Entry, truncated bool, err error) {
	base := ""
	if i := strings.LastIndexByte(l.prefix, '/'); i >= 0 {
		base = l.prefix[:i+1]
	}
	if checkKey(base) != nil {
		return nil, false, nil // no key has such a prefix
	}
	var visit func(dir, kp string, top bool) (bool, error)
	lastPrefix := ""
	// take answers the entry e of key k, in key order: true once the
	// listing holds more than l.limit results.
	take := func(dir, k string, e meta.DirEntry) (bool, error) {
		isDir := e.Inode.Type == meta.TypeDir
		within := strings.HasPrefix(k, l.prefix)
		if !within && !(isDir && strings.HasPrefix(l.prefix, k)) {
			return false, nil
		}
		if isDir && k <= l.after && !strings.HasPrefix(l.after, k) || !isDir && k <= l.after {
			return false, nil
		}
		if within && l.delim != "" {
			if i := strings.Index(k[len(l.prefix):], l.delim); i >= 0 {
				cp := l.prefix + k[len(l.prefix):][:i+len(l.delim)]
				empty := isDir && e.Inode.Usage != nil && e.Inode.Usage.Files == 0
				if cp <= l.after || cp == lastPrefix || empty {
					return false, nil
				}
				lastPrefix = cp
				out = append(out, s3Entry{key: cp, prefix: true})
				return len(out) > l.limit, nil
			}
		}
		if isDir {
			return visit(dir+"/"+e.Name, k, false)
		}
		out = append(out, s3Entry{key: k, in: e.Inode})
		return len(out) > l.limit, nil
	}
	visit = func(dir, kp string, top bool) (bool, error) {
		from, only := startName(kp, l, top)
		after := ""
		if from != "" {
			after = from[:len(from)-1] // the store starts after this name: from is the next one that can be
		}
		var waiting []meta.DirEntry // directories whose keys come later, the least on top
		for first := true; ; first = false {
			rr, err := x.s.metaRead(ctx, &wire.Read{Kind: wire.ReadReadDir, Path: dir, Cred: credOf(ctx), AfterName: after, Limit: s3DirPage})
			switch {
			case err == nil:
			case first && top && errors.Is(err, meta.ErrNotFound) && kp != "":
				return false, nil // no directory at the prefix: no key
			case first && top && errors.Is(err, meta.ErrNotDir):
				return false, nil
			case !top && (errors.Is(err, meta.ErrPermission) || errors.Is(err, meta.ErrNotFound)):
				return false, nil // unreadable, or gone meanwhile
			default:
				return false, err
			}
			past := false
			for _, e := range rr.Entries {
				if only != "" && e.Name > only && !strings.HasPrefix(e.Name, only) {
					past = true // no later name starts with the prefix
					break
				}
				for len(waiting) > 0 && waiting[len(waiting)-1].Name+"/" < e.Name {
					d := waiting[len(waiting)-1]
					waiting = waiting[:len(waiting)-1]
					if stop, err := take(dir, kp+d.Name+"/", d); stop || err != nil {
						return stop, err
					}
				}
				switch e.Inode.Type {
				case meta.TypeDir:
					waiting = append(waiting, e)
				case meta.TypeFile:
					if stop, err := take(dir, kp+e.Name, e); stop || err != nil {
						return stop, err
					}
				} // a symlink is not an object
			}
			if past || !rr.More || len(rr.Entries) == 0 {
				break
			}
			after = rr.Entries[len(rr.Entries)-1].Name
		}
		for len(waiting) > 0 {
			d := waiting[len(waiting)-1]
			waiting = waiting[:len(waiting)-1]
			if stop, err := take(dir, kp+d.Name+"/", d); stop || err != nil {
				return stop, err
			}
		}
		return false, nil
	}
	if l.after > base && !strings.HasPrefix(l.after, base) {
		return nil, false, nil // every key under the prefix is before l.after
	}
	dir := "/" + t.bucket
	if base != "" {
		dir += "/" + strings.TrimSuffix(base, "/")
	}
	stop, err := visit(dir, base, true)
	if err != nil {
		return nil, false, err
	}
	if stop {
		return out[:l.limit], true, nil
	}
	return out, false, nil
}

// s3DirPage is how many entries a listing reads from a directory at a
// time (tests make it small, to cross pages often).
var s3DirPage = wire.MaxDirPage

// startName is the least name in the directory of keys kp+NAME that can
// matter to listing l (every name before it gives keys before l.after, or
// outside the prefix), and in the directory the prefix names (top), the
// part of the prefix its names must start with.
//
// For l.after = kp+s+..., with s up to the next '/': a name below s gives
// a key below l.after, except a directory named by a prefix p of s that
// s continues with a byte below '/' (p/ sorts after p-x); the least such
// p is where to start.
func startName(kp string, l listing, top bool) (from, only string) {
	if top {
		only = l.prefix[len(kp):]
		from = only
	}
	s, ok := strings.CutPrefix(l.after, kp)
	if !ok {
		return from, only // l.after is below every key here: the parent visits no directory above it
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	for j := 0; j < len(s); j++ {
		if s[j] < '/' {
			s = s[:j]
			break
		}
	}
	return max(from, s), only
}

// list answers listing l of t's bucket (NoSuchBucket if there is none).
func (x *s3Server) list(ctx context.Context, t s3Target, l listing) ([]s3Entry, bool, error) {
	if _, err := x.bucketDir(ctx, t); err != nil || l.limit == 0 {
		return nil, false, err
	}
	return x.walk(ctx, t, l)
}

// listParams reads what every listing takes: prefix, delimiter, max-keys
// and encoding-type.
func listParams(q map[string][]string) (listing, string, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	l := listing{prefix: get("prefix"), delim: get("delimiter"), limit: maxListKeys}
	if v := get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return l, "", s3Err(http.StatusBadRequest, "InvalidArgument", "max-keys %q is not a count", v)
		}
		l.limit = min(n, maxListKeys)
	}
	enc := get("encoding-type")
	if enc != "" && enc != "url" {
		return l, "", s3Err(http.StatusBadRequest, "InvalidArgument", "encoding-type %q: use url", enc)
	}
	return l, enc, nil
}

// ownerNames maps the cluster's uids to user names, when a listing names
// owners (want).
func (x *s3Server) ownerNames(ctx context.Context, want bool) map[uint32]string {
	names := map[uint32]string{}
	if want {
		if rr, err := x.s.metaRead(ctx, &wire.Read{Kind: wire.ReadUsers}); err == nil {
			for _, u := range rr.Users {
				names[u.Uid] = u.Name
			}
		}
	}
	return names
}

// encoder is how a listing writes keys for encoding-type enc.
func encoder(enc string) func(string) string {
	if enc == "url" {
		return s3URLEncode
	}
	return func(s string) string { return s }
}

// s3URLEncode is a key as encoding-type=url gives it: every byte but
// letters, digits, "-._~" and "/" as %XX, which clients decode.
func s3URLEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

type s3Object struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *s3Owner `xml:",omitempty"`
}

type s3Prefix struct {
	Prefix string
}

type listObjectsResult struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	NS                    string   `xml:"xmlns,attr"`
	Name                  string
	Prefix                string
	Marker                *string `xml:",omitempty"`
	NextMarker            string  `xml:",omitempty"`
	StartAfter            string  `xml:",omitempty"`
	ContinuationToken     *string `xml:",omitempty"`
	NextContinuationToken string  `xml:",omitempty"`
	KeyCount              *int    `xml:",omitempty"`
	MaxKeys               int
	Delimiter             string `xml:",omitempty"`
	EncodingType          string `xml:",omitempty"`
	IsTruncated           bool
	Contents              []s3Object
	CommonPrefixes        []s3Prefix
}

// listObjects serves ListObjects (v1) and ListObjectsV2 (list-type=2).
func (x *s3Server) listObjects(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	q := r.URL.Query()
	v2 := q.Get("list-type") == "2"
	if lt := q.Get("list-type"); lt != "" && lt != "2" {
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidArgument", "list-type %q: use 2, or none for version 1", lt))
		return
	}
	l, enc, err := listParams(q)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	out := listObjectsResult{NS: s3NS, Name: t.bucket, Prefix: l.prefix, MaxKeys: l.limit, Delimiter: l.delim, EncodingType: enc}
	if v2 {
		l.after = q.Get("start-after")
		out.StartAfter = q.Get("start-after")
		if _, ok := q["continuation-token"]; ok {
			tok := q.Get("continuation-token")
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidArgument", "the continuation token is not one this API gave"))
				return
			}
			out.ContinuationToken = &tok
			l.after = max(l.after, string(b))
		}
	} else {
		l.after = q.Get("marker")
		out.Marker = &l.after
	}
	// Anonymous readers of a public bucket are not told who owns what.
	withOwner := (!v2 || q.Get("fetch-owner") == "true") && !isAnonymous(ctx)
	entries, truncated, err := x.list(ctx, t, l)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	out.IsTruncated = truncated
	names := x.ownerNames(ctx, withOwner)
	encode := encoder(enc)
	out.Contents, out.CommonPrefixes = []s3Object{}, []s3Prefix{}
	for _, e := range entries {
		if e.prefix {
			out.CommonPrefixes = append(out.CommonPrefixes, s3Prefix{Prefix: encode(e.key)})
			continue
		}
		o := s3Object{Key: encode(e.key), LastModified: s3Time(e.in.MTime), ETag: s3ETag(e.in), Size: e.in.Size, StorageClass: "STANDARD"}
		if withOwner {
			o.Owner = &s3Owner{ID: strconv.FormatUint(uint64(e.in.Uid), 10), DisplayName: names[e.in.Uid]}
		}
		out.Contents = append(out.Contents, o)
	}
	if out.IsTruncated && len(entries) > 0 {
		last := entries[len(entries)-1].key
		if v2 {
			out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
		} else if l.delim != "" {
			out.NextMarker = encode(last)
		}
	}
	if v2 {
		n := len(entries)
		out.KeyCount = &n
		out.Prefix, out.StartAfter = encode(out.Prefix), encode(out.StartAfter)
	} else {
		// Version 1 leaves Prefix as it was asked (clients decode the
		// other fields, not that one).
		m := encode(l.after)
		out.Marker = &m
	}
	out.Delimiter = encode(out.Delimiter)
	writeXML(w, http.StatusOK, out)
}

type deleteRequest struct {
	Quiet   bool
	Objects []struct {
		Key       string
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name       `xml:"DeleteResult"`
	NS      string         `xml:"xmlns,attr"`
	Deleted []deletedKey   `xml:"Deleted"`
	Errors  []deleteFailed `xml:"Error"`
}

type deletedKey struct {
	Key string
}

type deleteFailed struct {
	Key     string
	Code    string
	Message string
}

// deleteObjects serves DeleteObjects: up to 1000 keys, each deleted as
// DeleteObject does, each answered on its own.
func (x *s3Server) deleteObjects(w http.ResponseWriter, r *http.Request, t s3Target) {
	var req deleteRequest
	if err := x.readXML(r, &req); err != nil {
		x.fail(w, r, t, err)
		return
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxListKeys {
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "MalformedXML", "a delete names 1 to %d keys, this one %d", maxListKeys, len(req.Objects)))
		return
	}
	if _, err := x.bucketDir(r.Context(), t); err != nil {
		x.fail(w, r, t, err)
		return
	}
	out := deleteResult{NS: s3NS}
	for _, o := range req.Objects {
		ot := s3Target{bucket: t.bucket, key: o.Key}
		err := checkKey(o.Key)
		if err == nil && o.Key == "" {
			err = s3Err(http.StatusBadRequest, "InvalidArgument", "an empty key")
		}
		if err == nil && o.VersionID != "" && o.VersionID != "null" {
			err = s3Err(http.StatusNotImplemented, "NotImplemented", "objects have no versions")
		}
		if err == nil {
			err = x.remove(r, ot)
		}
		if err != nil {
			e := s3ErrorOf(err, ot)
			out.Errors = append(out.Errors, deleteFailed{Key: o.Key, Code: e.code, Message: e.message})
			continue
		}
		if !req.Quiet {
			out.Deleted = append(out.Deleted, deletedKey{Key: o.Key})
		}
	}
	writeXML(w, http.StatusOK, out)
}

type listVersionsResult struct {
	XMLName             xml.Name `xml:"ListVersionsResult"`
	NS                  string   `xml:"xmlns,attr"`
	Name                string
	Prefix              string
	KeyMarker           string
	VersionIdMarker     string
	NextKeyMarker       string `xml:",omitempty"`
	NextVersionIdMarker string `xml:",omitempty"`
	MaxKeys             int
	Delimiter           string `xml:",omitempty"`
	EncodingType        string `xml:",omitempty"`
	IsTruncated         bool
	Versions            []s3Version `xml:"Version"`
	CommonPrefixes      []s3Prefix
}

type s3Version struct {
	Key          string
	VersionId    string
	IsLatest     bool
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *s3Owner `xml:",omitempty"`
}

// listVersions serves ListObjectVersions of a bucket that keeps no
// versions (none does): every object is its one version, "null", as S3
// lists the objects of a bucket that never had versioning on. Tools that
// empty a bucket by its versions work the same.
func (x *s3Server) listVersions(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	q := r.URL.Query()
	l, enc, err := listParams(q)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	l.after = q.Get("key-marker")
	out := listVersionsResult{NS: s3NS, Name: t.bucket, Prefix: l.prefix, KeyMarker: l.after, VersionIdMarker: q.Get("version-id-marker"),
		MaxKeys: l.limit, Delimiter: l.delim, EncodingType: enc, Versions: []s3Version{}, CommonPrefixes: []s3Prefix{}}
	entries, truncated, err := x.list(ctx, t, l)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	out.IsTruncated = truncated
	names := x.ownerNames(ctx, !isAnonymous(ctx))
	encode := encoder(enc)
	for _, e := range entries {
		if e.prefix {
			out.CommonPrefixes = append(out.CommonPrefixes, s3Prefix{Prefix: encode(e.key)})
			continue
		}
		v := s3Version{Key: encode(e.key), VersionId: "null", IsLatest: true, LastModified: s3Time(e.in.MTime), ETag: s3ETag(e.in),
			Size: e.in.Size, StorageClass: "STANDARD"}
		if !isAnonymous(ctx) {
			v.Owner = &s3Owner{ID: strconv.FormatUint(uint64(e.in.Uid), 10), DisplayName: names[e.in.Uid]}
		}
		out.Versions = append(out.Versions, v)
	}
	if out.IsTruncated && len(entries) > 0 {
		out.NextKeyMarker, out.NextVersionIdMarker = encode(entries[len(entries)-1].key), "null"
	}
	out.Prefix, out.KeyMarker, out.Delimiter = encode(out.Prefix), encode(out.KeyMarker), encode(out.Delimiter)
	writeXML(w, http.StatusOK, out)
}

type versioningConfiguration struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	NS      string   `xml:"xmlns,attr"`
}

// bucketVersioning serves GetBucketVersioning: versioning was never on.
func (x *s3Server) bucketVersioning(w http.ResponseWriter, r *http.Request, t s3Target) {
	if _, err := x.bucketDir(r.Context(), t); err != nil {
		x.fail(w, r, t, err)
		return
	}
	writeXML(w, http.StatusOK, versioningConfiguration{NS: s3NS})
}
