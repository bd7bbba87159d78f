package router

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"shoal/clock"
	"shoal/meta"
)

// emptyMD5 is the ETag of no content: a directory marker's.
const emptyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

// s3ETag is the ETag S3 clients get for a file: the MD5 the S3 API
// computed when it stored the content, while the content is still that
// one; else the content's hash, which is no MD5 (64 hex digits, or
// "chunks:..."), so that no client checks downloaded bytes against it as
// one.
func s3ETag(in meta.Inode) string {
	if o := in.Object; o != nil && o.ETag != "" && o.For == in.Hash {
		return `"` + o.ETag + `"`
	}
	return `"` + in.Hash + `"`
}

// s3Conditions evaluates a read's If-Match, If-Unmodified-Since,
// If-None-Match and If-Modified-Since (RFC 9110's order) against the
// object: 0 to serve it, else 412 or 304.
func s3Conditions(h http.Header, etag string, mtime time.Time, prefix string) int {
	mtime = mtime.Truncate(time.Second)
	match := func(v string) bool {
		for _, t := range entityTags(v) {
			// S3 clients often send the ETag without its quotes.
			if t = strings.TrimPrefix(t, "W/"); t == "*" || t == etag || `"`+t+`"` == etag {
				return true
			}
		}
		return false
	}
	if v := h.Get(prefix + "If-Match"); v != "" {
		if !match(v) {
			return http.StatusPreconditionFailed
		}
	} else if v := h.Get(prefix + "If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && mtime.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if v := h.Get(prefix + "If-None-Match"); v != "" {
		if match(v) {
			return http.StatusNotModified
		}
	} else if v := h.Get(prefix + "If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !mtime.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// setObjectHeaders describes an object in an answer's headers.
func setObjectHeaders(w http.ResponseWriter, in meta.Inode, etag string) {
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Last-Modified", time.Unix(0, in.MTime).UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", cmpOr(in.ContentType, "binary/octet-stream"))
	h.Set("X-Content-Type-Options", "nosniff")
	if in.Object != nil {
		for k, v := range in.Object.Meta {
			h["X-Amz-Meta-"+k] = []string{v}
		}
		for k, v := range in.Object.Headers {
			h.Set(k, v)
		}
	}
}

// responseOverrides are the query parameters a (presigned) GET may set
// answer headers with.
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

// getObject serves GetObject and HeadObject.
func (x *s3Server) getObject(w http.ResponseWriter, r *http.Request, t s3Target) {
	s := x.s
	ctx := r.Context()
	in, err := x.lookup(ctx, t.path(), meta.MayRead)
	marker := strings.HasSuffix(t.key, "/")
	switch {
	case errors.Is(err, meta.ErrNotFound):
		if _, berr := x.bucketDir(ctx, t); berr != nil {
			err = berr
		}
	case err == nil && marker && in.Type == meta.TypeDir:
		// A directory marker: an empty object.
		in.Size, in.ContentType, in.Object = 0, "application/x-directory", &meta.Object{ETag: emptyMD5, For: in.Hash}
	case err == nil && (marker || in.Type != meta.TypeFile):
		err = meta.ErrNotFound
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	etag := s3ETag(in)
	switch s3Conditions(r.Header, etag, utc(in.MTime), "") {
	case http.StatusPreconditionFailed:
		x.fail(w, r, t, meta.ErrPrecondition)
		return
	case http.StatusNotModified:
		setObjectHeaders(w, in, etag)
		w.Header().Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	start, end, partial, err := parseRange(r.Header.Get("Range"), in.Size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", in.Size))
		x.fail(w, r, t, s3Err(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable: %v", err))
		return
	}
	if in.Type == meta.TypeFile {
		if err := s.checkKeys(in); err != nil {
			x.fail(w, r, t, err)
			return
		}
	}
	q := r.URL.Query()
	setHeaders := func() {
		setObjectHeaders(w, in, etag)
		for p, h := range responseOverrides {
			if v := q.Get(p); v != "" {
				w.Header().Set(h, v)
			}
		}
	}
	s.sendRange(w, r, in, start, end, partial, setHeaders, func(err error) { x.fail(w, r, t, err) })
}

// keptHeaders are the standard headers an object keeps from its PUT and
// is served with (see meta.Object.Headers).
var keptHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// objectAttrs is what a request says an object is besides its content.
type objectAttrs struct {
	contentType string
	meta        map[string]string // x-amz-meta-*
	headers     map[string]string // keptHeaders
}

// attrsOf reads the media type, user metadata and kept headers of a
// request that makes an object. "aws-chunked" in Content-Encoding is how
// the body was sent, not what the object is: it is not kept.
func attrsOf(h http.Header) (objectAttrs, error) {
	var a objectAttrs
	var err error
	if a.meta, err = userMeta(h); err != nil {
		return a, err
	}
	if a.contentType, err = mediaType(h.Get("Content-Type")); err != nil {
		return a, err
	}
	total := 0
	for _, k := range keptHeaders {
		v := h.Get(k)
		if k == "Content-Encoding" {
			var codings []string
			for _, c := range strings.Split(v, ",") {
				if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "aws-chunked") {
					codings = append(codings, c)
				}
			}
			v = strings.Join(codings, ", ")
		}
		if v == "" {
			continue
		}
		if a.headers == nil {
			a.headers = map[string]string{}
		}
		a.headers[k] = v
		total += len(k) + len(v)
	}
	if total > maxUserMeta {
		return a, s3Err(http.StatusBadRequest, "MetadataTooLarge", "the headers kept with the object hold %d bytes, over the limit of %d", total, maxUserMeta)
	}
	return a, nil
}

// userMeta reads the x-amz-meta-* headers of a request.
func userMeta(h http.Header) (map[string]string, error) {
	var m map[string]string
	total := 0
	for k, v := range h {
		name, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-meta-")
		if !ok {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		val := strings.Join(v, ",")
		m[name] = val
		total += len(name) + len(val)
	}
	if total > maxUserMeta {
		return nil, s3Err(http.StatusBadRequest, "MetadataTooLarge", "the x-amz-meta-* headers hold %d bytes, over the limit of %d", total, maxUserMeta)
	}
	return m, nil
}

// writeConditions puts a PUT's If-None-Match: * and If-Match in op. An
// If-Match names an S3 ETag, which the namespace does not check: it is
// compared here, and op then applies only if the content is still the
// one compared.
func (x *s3Server) writeConditions(r *http.Request, t s3Target, op *meta.Op) error {
	if v := r.Header.Get("If-None-Match"); v != "" {
		if strings.TrimSpace(v) != "*" {
			return s3Err(http.StatusNotImplemented, "NotImplemented", "If-None-Match on a write takes only *")
		}
		op.IfAbsent = true
	}
	v := r.Header.Get("If-Match")
	if v == "" {
		return nil
	}
	in, err := x.lookup(r.Context(), t.path(), 0)
	if errors.Is(err, meta.ErrNotFound) || err == nil && in.Type != meta.TypeFile {
		return meta.ErrPrecondition
	}
	if err != nil {
		return err
	}
	if s3Conditions(http.Header{"If-Match": {v}}, s3ETag(in), utc(in.MTime), "") != 0 {
		return meta.ErrPrecondition
	}
	op.IfMatch = in.Hash
	return nil
}

// putObject serves PutObject: the body is stored as an upload is, its
// MD5 computed on the way (the ETag, and the check of Content-MD5), and
// the file committed at the key's path, making the directories the key
// names.
func (x *s3Server) putObject(w http.ResponseWriter, r *http.Request, t s3Target) {
	s := x.s
	ctx := r.Context()
	body, size, err := x.sizedBody(r, s.cfg.MaxFileSize, "object")
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	attrs, err := attrsOf(r.Header)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	bucket, err := x.bucketDir(ctx, t)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	rel := strings.TrimPrefix(t.path(), "/"+t.bucket)
	if strings.HasSuffix(t.key, "/") {
		x.putMarker(w, r, t, bucket, rel, body)
		return
	}
	op := meta.Op{Kind: meta.OpPut, Dir: bucket.Ino, Path: rel}
	if err := x.writeConditions(r, t, &op); err != nil {
		x.fail(w, r, t, err)
		return
	}
	if size > int64(s.cfg.InlineMax) {
		// Refuse before storing anything what would fail at commit.
		var c conditions
		c.ifAbsent = op.IfAbsent
		if err := s.checkPut(ctx, target{at: bucket.Ino, path: rel}, c); err != nil {
			x.fail(w, r, t, err)
			return
		}
	}
	file, etag, err := x.store(r, body, size, true)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	file.ContentType, file.Object = attrs.contentType, &meta.Object{ETag: etag, For: file.Hash, Meta: attrs.meta, Headers: attrs.headers}
	op.File, op.Time = file, clock.Now().UnixNano()
	if _, err := x.proposeIn(ctx, t, &op); err != nil {
		x.fail(w, r, t, err)
		return
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

// sizedBody returns r's content (see body), refusing before anything is
// stored a body of unknown length, one over limit bytes, and a
// Content-MD5 that is no MD5.
func (x *s3Server) sizedBody(r *http.Request, limit int64, what string) (io.Reader, int64, error) {
	if v := r.Header.Get("Content-MD5"); v != "" {
		if b, err := base64.StdEncoding.DecodeString(v); err != nil || len(b) != md5.Size {
			return nil, 0, s3Err(http.StatusBadRequest, "InvalidDigest", "Content-MD5 %q is not the base64 of 16 bytes", v)
		}
	}
	body, size, err := x.body(r)
	switch {
	case err != nil:
		return nil, 0, err
	case size < 0:
		return nil, 0, s3Err(http.StatusLengthRequired, "MissingContentLength", "send the %s's length in Content-Length (or x-amz-decoded-content-length)", what)
	case size > limit:
		return nil, 0, s3Err(http.StatusBadRequest, "EntityTooLarge", "%s of %d bytes is over the limit of %d", what, size, limit)
	}
	return body, size, nil
}

// store writes body (size bytes) as the content of a file to commit
// (inline when small and wholeFile allows), computing its MD5 on the way,
// and checks it against Content-MD5: the file and its ETag. Nothing
// names the file yet; its chunks are touched, so that collection leaves
// them until the commit.
func (x *s3Server) store(r *http.Request, body io.Reader, size int64, wholeFile bool) (*meta.Inode, string, error) {
	ctx := r.Context()
	sum := md5.New()
	file, err := x.s.upload(ctx, io.TeeReader(body, sum), size, wholeFile)
	if err == nil && len(file.Chunks) > 0 {
		err = x.s.touchChunks(ctx, file.Chunks)
	}
	if err != nil {
		return nil, "", err
	}
	got := sum.Sum(nil)
	if err := checkContentMD5(r, got); err != nil {
		return nil, "", err
	}
	return file, hex.EncodeToString(got), nil
}

// putMarker makes the directory a key ending in "/" names (the "folder"
// objects consoles make): it carries no content.
func (x *s3Server) putMarker(w http.ResponseWriter, r *http.Request, t s3Target, bucket meta.Inode, rel string, body io.Reader) {
	if n, _ := io.Copy(io.Discard, io.LimitReader(body, 1)); n > 0 {
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidArgument", "key %q ends in / and names a directory, which holds no content", t.key))
		return
	}
	_, err := x.proposeIn(r.Context(), t, &meta.Op{Kind: meta.OpMkdir, Dir: bucket.Ino, Path: rel, Parents: true, Time: clock.Now().UnixNano()})
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	w.Header().Set("ETag", `"`+emptyMD5+`"`)
	w.WriteHeader(http.StatusOK)
}

// deleteObject serves DeleteObject: the file goes, then the directories
// above it that it leaves empty (S3 has no directories: a prefix with no
// key left is gone). Deleting a key that is not there succeeds, as in S3.
func (x *s3Server) deleteObject(w http.ResponseWriter, r *http.Request, t s3Target) {
	if err := x.remove(r, t); err != nil {
		x.fail(w, r, t, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// remove deletes t's object (or empty directory marker) and the
// directories it leaves empty; a key that is not there is no error.
func (x *s3Server) remove(r *http.Request, t s3Target) error {
	ctx := r.Context()
	bucket, err := x.bucketDir(ctx, t)
	if err != nil {
		return err
	}
	rel := strings.TrimPrefix(t.path(), "/"+t.bucket)
	op := meta.Op{Kind: meta.OpDelete, Dir: bucket.Ino, Path: rel, NotDir: true, Time: clock.Now().UnixNano()}
	if strings.HasSuffix(t.key, "/") {
		op.NotDir, op.OnlyDir = false, true
	}
	_, err = x.proposeIn(ctx, t, &op)
	switch {
	case errors.Is(err, meta.ErrNotFound), errors.Is(err, meta.ErrNotDir) && strings.Contains(err.Error(), rel):
		return nil
	case op.OnlyDir && errors.Is(err, meta.ErrNotEmpty):
		return nil // the marker of a prefix that still has keys
	case errors.Is(err, meta.ErrIsDir):
		return nil // a prefix, not an object
	case err != nil:
		return err
	}
	for dir := path.Dir(rel); dir != "/" && dir != "."; dir = path.Dir(dir) {
		if _, err := x.propose(ctx, meta.Op{Kind: meta.OpDelete, Dir: op.Dir, Path: dir, OnlyDir: true, Time: clock.Now().UnixNano()}); err != nil {
			break
		}
	}
	return nil
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	LastModified string
	ETag         string
}

// copyObject serves CopyObject: the destination gets the source's content
// by metadata (its chunks are shared, no byte is copied), and its media
// type and user metadata (x-amz-metadata-directive COPY) or the request's
// (REPLACE).
func (x *s3Server) copyObject(w http.ResponseWriter, r *http.Request, t s3Target) {
	s := x.s
	ctx := r.Context()
	src, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	directive := strings.ToUpper(cmpOr(r.Header.Get("X-Amz-Metadata-Directive"), "COPY"))
	if directive != "COPY" && directive != "REPLACE" {
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidArgument", "x-amz-metadata-directive %q: use COPY or REPLACE", directive))
		return
	}
	if src == t && directive == "COPY" {
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidRequest",
			"This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."))
		return
	}
	in, err := x.lookup(ctx, src.path(), meta.MayRead)
	if err == nil && in.Type != meta.TypeFile {
		err = meta.ErrNotFound
	}
	if err != nil {
		x.fail(w, r, src, err)
		return
	}
	etag := s3ETag(in)
	if c := s3Conditions(r.Header, etag, utc(in.MTime), "X-Amz-Copy-Source-"); c != 0 {
		x.fail(w, r, t, meta.ErrPrecondition)
		return
	}
	file := &meta.Inode{Type: meta.TypeFile, Size: in.Size, Hash: in.Hash, Chunks: in.Chunks, Data: in.Data, DataKey: in.DataKey,
		ContentType: in.ContentType, Object: &meta.Object{For: in.Hash}}
	if in.Object != nil && in.Object.For == in.Hash {
		file.Object.ETag = in.Object.ETag
	}
	if in.Object != nil && directive == "COPY" {
		file.Object.Meta, file.Object.Headers = in.Object.Meta, in.Object.Headers
	}
	if directive == "REPLACE" {
		attrs, err := attrsOf(r.Header)
		if err != nil {
			x.fail(w, r, t, err)
			return
		}
		file.ContentType, file.Object.Meta, file.Object.Headers = attrs.contentType, attrs.meta, attrs.headers
	}
	bucket, err := x.bucketDir(ctx, t)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	if err := s.touchChunks(ctx, file.Chunks); err != nil {
		x.fail(w, r, t, err)
		return
	}
	op := meta.Op{Kind: meta.OpPut, Dir: bucket.Ino, Path: strings.TrimPrefix(t.path(), "/"+t.bucket), File: file, Time: clock.Now().UnixNano()}
	if err := x.writeConditions(r, t, &op); err != nil {
		x.fail(w, r, t, err)
		return
	}
	res, err := x.proposeIn(ctx, t, &op)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	mtime := op.Time
	if res.Inode != nil {
		mtime = res.Inode.MTime
	}
	writeXML(w, http.StatusOK, copyObjectResult{LastModified: s3Time(mtime), ETag: s3ETag(*file)})
}

// copySource reads x-amz-copy-source: BUCKET/KEY, URL-encoded, with an
// optional leading slash (a versionId is refused: there are no versions).
func copySource(v string) (s3Target, error) {
	p, query, _ := strings.Cut(v, "?")
	if query != "" {
		return s3Target{}, s3Err(http.StatusNotImplemented, "NotImplemented", "x-amz-copy-source with ?%s: objects have no versions", query)
	}
	p, err := url.PathUnescape(p)
	if err != nil {
		return s3Target{}, s3Err(http.StatusBadRequest, "InvalidArgument", "x-amz-copy-source %q is not URL-encoded", v)
	}
	var t s3Target
	t.bucket, t.key, _ = strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !validBucket(t.bucket) || t.key == "" || strings.HasSuffix(t.key, "/") {
		return t, s3Err(http.StatusBadRequest, "InvalidArgument", "x-amz-copy-source %q: want BUCKET/KEY of an object", v)
	}
	return t, checkKey(t.key)
}
