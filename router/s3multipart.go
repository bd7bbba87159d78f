package router

// Multipart uploads. An upload is a directory of the namespace,
// /.s3-uploads/ID (ID random: 128 bits), owned by the user who began it
// and private to them (0700); it holds the upload's description (info)
// and one file per part (00001 ...), each stored in whole chunks with the
// MD5 of its bytes as its ETag. Completing the upload commits the target
// file as the parts' chunk lists end to end: no byte is copied, and the
// file appears whole or not at all. The parts directory then goes. An
// abandoned upload stays until it is aborted (as in S3, where a lifecycle
// rule would collect it).

import (
	"bytes"
	"context"
	"crypto/md5"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"shoal/clock"
	"shoal/meta"
)

const (
	// uploadsDir holds the multipart uploads in progress. Its name is no
	// bucket name, so no listing of buckets shows it.
	uploadsDir = "/.s3-uploads"
	// maxParts and the part sizes are S3's limits.
	maxParts    = 10000
	minPartSize = 5 << 20
	maxPartSize = 5 << 30
	// partInfo names the file that describes an upload.
	partInfo = "info"
)

// uploadInfo is what an upload's info file holds: what the completed
// object will be.
type uploadInfo struct {
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	ContentType string            `json:"content_type,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Initiated   int64             `json:"initiated"`
}

func partName(n int) string { return fmt.Sprintf("%05d", n) }

// asCluster returns ctx acting as the cluster itself, for the staging
// directory's own upkeep (checked for the caller before).
func asCluster(ctx context.Context) context.Context {
	return context.WithValue(ctx, callerKey{}, (*caller)(nil))
}

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Bucket   string
	Key      string
	UploadID string `xml:"UploadId"`
}

// createUpload serves CreateMultipartUpload.
func (x *s3Server) createUpload(w http.ResponseWriter, r *http.Request, t s3Target) {
	s := x.s
	ctx := r.Context()
	if strings.HasSuffix(t.key, "/") {
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidArgument", "key %q ends in / and names a directory, which holds no content", t.key))
		return
	}
	attrs, err := attrsOf(r.Header)
	var bucket meta.Inode
	if err == nil {
		bucket, err = x.bucketDir(ctx, t)
	}
	if err == nil {
		// The caller must be able to write the object at the end.
		err = s.checkPut(ctx, target{at: bucket.Ino, path: strings.TrimPrefix(t.path(), "/"+t.bucket)}, conditions{})
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	var b [16]byte
	crand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := clock.Now().UnixNano()
	uid, gid := uint32(0), uint32(0)
	if c := callerOf(ctx); c != nil {
		uid, gid = c.user.Uid, c.user.Gid
	}
	cctx := asCluster(ctx)
	// The staging directory lets anyone search it but list it no one: an
	// upload is reached by its ID alone.
	if _, err := x.propose(cctx, meta.Op{Kind: meta.OpMkdir, Path: uploadsDir, Mode: 0o711, Time: now}); err != nil && !errors.Is(err, meta.ErrExists) {
		x.fail(w, r, t, err)
		return
	}
	if _, err := x.propose(cctx, meta.Op{Kind: meta.OpMkdir, Path: uploadsDir + "/" + id, Mode: 0o700, Uid: uid, Gid: gid, Owner: true, Time: now}); err != nil {
		x.fail(w, r, t, err)
		return
	}
	info, _ := json.Marshal(uploadInfo{Bucket: t.bucket, Key: t.key, ContentType: attrs.contentType, Meta: attrs.meta, Headers: attrs.headers, Initiated: now})
	op := meta.Op{Kind: meta.OpPut, Path: uploadsDir + "/" + id + "/" + partInfo, File: s.newInline(info), Mode: 0o600, Time: now}
	if _, err := x.propose(ctx, op); err != nil {
		x.fail(w, r, t, err)
		return
	}
	writeXML(w, http.StatusOK, initiateResult{NS: s3NS, Bucket: t.bucket, Key: t.key, UploadID: id})
}

// upload finds the upload id of t for the caller: NoSuchUpload unless it
// exists, is for t and is the caller's.
func (x *s3Server) upload(ctx context.Context, t s3Target, id string) (uploadInfo, error) {
	var info uploadInfo
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return info, s3Err(http.StatusNotFound, "NoSuchUpload", "upload %q does not exist", id)
	}
	in, err := x.lookup(ctx, uploadsDir+"/"+id+"/"+partInfo, meta.MayRead)
	if err == nil {
		err = x.s.openInline(&in)
	}
	if err == nil {
		err = json.Unmarshal(in.Data, &info)
	}
	if errors.Is(err, meta.ErrNotFound) || errors.Is(err, meta.ErrPermission) || err == nil && (info.Bucket != t.bucket || info.Key != t.key) {
		return info, s3Err(http.StatusNotFound, "NoSuchUpload", "upload %s does not exist for %s, or was completed or aborted", id, t.resource())
	}
	return info, err
}

// partNumber reads partNumber=N.
func partNumber(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxParts {
		return 0, s3Err(http.StatusBadRequest, "InvalidArgument", "partNumber %q: want 1 to %d", v, maxParts)
	}
	return n, nil
}

// uploadPart serves UploadPart: the part is stored in whole chunks (never
// inline: it becomes a piece of a larger file) and its MD5 is its ETag.
func (x *s3Server) uploadPart(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	q := r.URL.Query()
	id := q.Get("uploadId")
	n, err := partNumber(q.Get("partNumber"))
	if err == nil {
		_, err = x.upload(ctx, t, id)
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		x.copyPart(w, r, t, id, n)
		return
	}
	body, size, err := x.sizedBody(r, maxPartSize, "part")
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	file, etag, err := x.store(r, body, size, false)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	x.commitPart(w, r, t, id, n, file, etag)
}

// commitPart puts a part's file in its upload.
func (x *s3Server) commitPart(w http.ResponseWriter, r *http.Request, t s3Target, id string, n int, file *meta.Inode, etag string) {
	file.Hash = meta.ChunkListHash(file.Chunks, file.Data)
	file.Object = &meta.Object{ETag: etag, For: file.Hash}
	op := meta.Op{Kind: meta.OpPut, Path: uploadsDir + "/" + id + "/" + partName(n), File: file, Mode: 0o600, Time: clock.Now().UnixNano()}
	if _, err := x.propose(r.Context(), op); err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			err = s3Err(http.StatusNotFound, "NoSuchUpload", "upload %s was completed or aborted meanwhile", id)
		}
		x.fail(w, r, t, err)
		return
	}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		writeXML(w, http.StatusOK, copyPartResult{LastModified: s3Time(op.Time), ETag: `"` + etag + `"`})
		return
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	LastModified string
	ETag         string
}

// copyPart serves UploadPartCopy: the part is the source object, or a
// range of it (x-amz-copy-source-range: bytes=A-B), its whole chunks
// shared and only the chunks the range cuts through stored again.
func (x *s3Server) copyPart(w http.ResponseWriter, r *http.Request, t s3Target, id string, n int) {
	s := x.s
	ctx := r.Context()
	src, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		x.fail(w, r, t, err)
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
	if c := s3Conditions(r.Header, s3ETag(in), utc(in.MTime), "X-Amz-Copy-Source-"); c != 0 {
		x.fail(w, r, t, meta.ErrPrecondition)
		return
	}
	start, end := int64(0), in.Size
	if v := r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		a, b, ok := strings.Cut(strings.TrimPrefix(v, "bytes="), "-")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || !strings.HasPrefix(v, "bytes=") || err1 != nil || err2 != nil || first < 0 || last < first || last >= in.Size {
			x.fail(w, r, t, s3Err(http.StatusRequestedRangeNotSatisfiable, "InvalidRange",
				"x-amz-copy-source-range %q: want bytes=FIRST-LAST within the %d bytes of the source", v, in.Size))
			return
		}
		start, end = first, last+1
	}
	if end-start > maxPartSize {
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "EntityTooLarge", "a part of %d bytes is over the limit of %d", end-start, int64(maxPartSize)))
		return
	}
	file, sum, err := s.rangeOf(ctx, in, start, end, knownMD5(in, start, end))
	if err == nil && len(file.Chunks) > 0 {
		err = s.touchChunks(ctx, file.Chunks)
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	x.commitPart(w, r, t, id, n, file, hex.EncodeToString(sum))
}

// knownMD5 is the MD5 of bytes [start, end) of in when its S3 ETag says
// it without reading them: the whole of an object put in one piece.
func knownMD5(in meta.Inode, start, end int64) []byte {
	if start != 0 || end != in.Size || in.Object == nil || in.Object.For != in.Hash {
		return nil
	}
	b, err := hex.DecodeString(in.Object.ETag)
	if err != nil || len(b) != md5.Size {
		return nil // a multipart ETag (MD5-N), or none
	}
	return b
}

// rangeOf returns bytes [start, end) of in as a file of chunks (whole
// chunks of in inside the range kept by reference, the ones it cuts
// through stored again) and the MD5 of those bytes: sum when it is known
// already, else computed by reading them.
func (s *Server) rangeOf(ctx context.Context, in meta.Inode, start, end int64, sum []byte) (*meta.Inode, []byte, error) {
	if sum == nil {
		h := md5.New()
		if err := s.streamRange(ctx, h, in, start, end, nil); err != nil && end > start {
			return nil, nil, err
		}
		sum = h.Sum(nil)
	}
	if err := s.openInline(&in); err != nil {
		return nil, nil, err
	}
	src := &oldContent{s: s, in: in}
	if err := src.check(); err != nil {
		return nil, nil, err
	}
	b := &builder{s: s, ctx: ctx, refused: &refusals{full: map[string]int64{}}, first: map[meta.Hash]int{}, groups: map[int]string{}}
	defer b.abort()
	if err := src.copyTo(b, start, end); err != nil {
		return nil, nil, err
	}
	file, err := b.finish()
	if err != nil {
		return nil, nil, err
	}
	return file, sum, nil
}

type completeRequest struct {
	Parts []struct {
		PartNumber int
		ETag       string
	} `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Location string
	Bucket   string
	Key      string
	ETag     string
}

// completeUpload serves CompleteMultipartUpload: the parts named, in
// order, become the object, by their chunk lists.
func (x *s3Server) completeUpload(w http.ResponseWriter, r *http.Request, t s3Target) {
	s := x.s
	ctx := r.Context()
	id := r.URL.Query().Get("uploadId")
	info, err := x.upload(ctx, t, id)
	var req completeRequest
	if err == nil {
		err = x.readXML(r, &req)
	}
	if err == nil && len(req.Parts) == 0 {
		err = s3Err(http.StatusBadRequest, "MalformedXML", "a complete names at least one part")
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	parts, err := x.readDir(ctx, uploadsDir+"/"+id)
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	byName := map[string]meta.Inode{}
	for _, p := range parts {
		byName[p.Name] = p.Inode
	}
	file := &meta.Inode{Type: meta.TypeFile}
	var md5s []byte
	prev := 0
	for i, p := range req.Parts {
		if p.PartNumber <= prev {
			x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidPartOrder", "the parts must be listed in ascending order of part number, each once"))
			return
		}
		prev = p.PartNumber
		in, ok := byName[partName(p.PartNumber)]
		etag := strings.Trim(p.ETag, `"`)
		if p.PartNumber > maxParts || !ok || in.Object == nil || in.Object.ETag != etag {
			x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidPart",
				"part %d was not uploaded, or its ETag is not %s", p.PartNumber, p.ETag))
			return
		}
		if in.Size < minPartSize && i < len(req.Parts)-1 {
			x.fail(w, r, t, s3Err(http.StatusBadRequest, "EntityTooSmall", "part %d is %d bytes: every part but the last must be at least 5 MiB", p.PartNumber, in.Size))
			return
		}
		whole, err := x.lookup(ctx, uploadsDir+"/"+id+"/"+partName(p.PartNumber), meta.MayRead)
		if err != nil {
			x.fail(w, r, t, err)
			return
		}
		file.Chunks = append(file.Chunks, whole.Chunks...)
		file.Size += whole.Size
		sum, _ := hex.DecodeString(etag)
		md5s = append(md5s, sum...)
	}
	if file.Size > s.cfg.MaxFileSize {
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "EntityTooLarge", "%d bytes is over the limit of %d", file.Size, s.cfg.MaxFileSize))
		return
	}
	whole := md5.Sum(md5s)
	etag := hex.EncodeToString(whole[:]) + "-" + strconv.Itoa(len(req.Parts))
	file.Hash = meta.ChunkListHash(file.Chunks, nil)
	file.ContentType = info.ContentType
	file.Object = &meta.Object{ETag: etag, For: file.Hash, Meta: info.Meta, Headers: info.Headers}
	bucket, err := x.bucketDir(ctx, t)
	if err == nil {
		err = s.touchChunks(ctx, file.Chunks)
	}
	op := meta.Op{Kind: meta.OpPut, Dir: bucket.Ino, Path: strings.TrimPrefix(t.path(), "/"+t.bucket), File: file, Time: clock.Now().UnixNano()}
	if err == nil {
		err = x.writeConditions(r, t, &op)
	}
	if err == nil {
		_, err = x.proposeIn(ctx, t, &op)
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	// The object holds the parts' chunks now: the parts can go.
	if _, err := x.propose(asCluster(ctx), meta.Op{Kind: meta.OpDelete, Path: uploadsDir + "/" + id, Recursive: true, Time: clock.Now().UnixNano()}); err != nil {
		s.cfg.Logger.Warn("s3: remove a completed upload's parts", "upload", id, "err", err)
	}
	writeXML(w, http.StatusOK, completeResult{NS: s3NS, Location: t.resource(), Bucket: t.bucket, Key: t.key, ETag: `"` + etag + `"`})
}

// abortUpload serves AbortMultipartUpload: the parts go.
func (x *s3Server) abortUpload(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	id := r.URL.Query().Get("uploadId")
	if _, err := x.upload(ctx, t, id); err != nil {
		x.fail(w, r, t, err)
		return
	}
	if _, err := x.propose(asCluster(ctx), meta.Op{Kind: meta.OpDelete, Path: uploadsDir + "/" + id, Recursive: true, Time: clock.Now().UnixNano()}); err != nil && !errors.Is(err, meta.ErrNotFound) {
		x.fail(w, r, t, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type listPartsResult struct {
	XMLName              xml.Name `xml:"ListPartsResult"`
	NS                   string   `xml:"xmlns,attr"`
	Bucket               string
	Key                  string
	UploadID             string `xml:"UploadId"`
	Initiator            s3Owner
	Owner                s3Owner
	StorageClass         string
	PartNumberMarker     int
	NextPartNumberMarker int
	MaxParts             int
	IsTruncated          bool
	Parts                []s3Part `xml:"Part"`
}

type s3Part struct {
	PartNumber   int
	LastModified string
	ETag         string
	Size         int64
}

// listParts serves ListParts.
func (x *s3Server) listParts(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	q := r.URL.Query()
	id := q.Get("uploadId")
	limit, marker := 1000, 0
	var err error
	if v := q.Get("max-parts"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			err = s3Err(http.StatusBadRequest, "InvalidArgument", "max-parts %q is not a count", v)
		}
		limit = min(limit, 1000)
	}
	if v := q.Get("part-number-marker"); v != "" && err == nil {
		if marker, err = strconv.Atoi(v); err != nil || marker < 0 {
			err = s3Err(http.StatusBadRequest, "InvalidArgument", "part-number-marker %q is not a part number", v)
		}
	}
	if err == nil {
		_, err = x.upload(ctx, t, id)
	}
	var entries []meta.DirEntry
	if err == nil {
		entries, err = x.readDir(ctx, uploadsDir+"/"+id)
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	me := s3OwnerOf(ctx)
	out := listPartsResult{NS: s3NS, Bucket: t.bucket, Key: t.key, UploadID: id, Initiator: me, Owner: me, StorageClass: "STANDARD",
		PartNumberMarker: marker, MaxParts: limit, Parts: []s3Part{}}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name)
		if err != nil || n <= marker || e.Inode.Object == nil {
			continue
		}
		if len(out.Parts) == limit {
			out.IsTruncated = true
			break
		}
		out.Parts = append(out.Parts, s3Part{PartNumber: n, LastModified: s3Time(e.Inode.MTime), ETag: `"` + e.Inode.Object.ETag + `"`, Size: e.Inode.Size})
		out.NextPartNumberMarker = n
	}
	writeXML(w, http.StatusOK, out)
}

type listUploadsResult struct {
	XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
	NS                 string   `xml:"xmlns,attr"`
	Bucket             string
	KeyMarker          string
	UploadIDMarker     string `xml:"UploadIdMarker"`
	NextKeyMarker      string
	NextUploadIDMarker string `xml:"NextUploadIdMarker"`
	Prefix             string
	MaxUploads         int
	IsTruncated        bool
	Uploads            []s3Upload `xml:"Upload"`
}

type s3Upload struct {
	Key          string
	UploadID     string `xml:"UploadId"`
	Initiator    s3Owner
	Owner        s3Owner
	StorageClass string
	Initiated    string
}

// listUploads serves ListMultipartUploads: the caller's uploads into the
// bucket (an admin's: everyone's), in key order.
func (x *s3Server) listUploads(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	q := r.URL.Query()
	if _, err := x.bucketDir(ctx, t); err != nil {
		x.fail(w, r, t, err)
		return
	}
	limit := 1000
	if v := q.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidArgument", "max-uploads %q is not a count", v))
			return
		}
		limit = min(n, 1000)
	}
	prefix, keyMarker, idMarker := q.Get("prefix"), q.Get("key-marker"), q.Get("upload-id-marker")
	c := callerOf(ctx)
	entries, err := x.readDir(asCluster(ctx), uploadsDir)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		x.fail(w, r, t, err)
		return
	}
	var ups []s3Upload
	me := s3OwnerOf(ctx)
	for _, e := range entries {
		if c != nil && !c.user.Admin && e.Inode.Uid != c.user.Uid {
			continue
		}
		in, err := x.lookup(asCluster(ctx), uploadsDir+"/"+e.Name+"/"+partInfo, 0)
		if err == nil {
			err = x.s.openInline(&in)
		}
		var info uploadInfo
		if err != nil || json.Unmarshal(in.Data, &info) != nil || info.Bucket != t.bucket || !strings.HasPrefix(info.Key, prefix) {
			continue
		}
		if info.Key < keyMarker || info.Key == keyMarker && e.Name <= idMarker {
			continue
		}
		ups = append(ups, s3Upload{Key: info.Key, UploadID: e.Name, Initiator: me, Owner: me, StorageClass: "STANDARD", Initiated: s3Time(info.Initiated)})
	}
	slices.SortFunc(ups, func(a, b s3Upload) int {
		return cmpOrder(strings.Compare(a.Key, b.Key), strings.Compare(a.UploadID, b.UploadID))
	})
	out := listUploadsResult{NS: s3NS, Bucket: t.bucket, KeyMarker: keyMarker, UploadIDMarker: idMarker, Prefix: prefix, MaxUploads: limit, Uploads: []s3Upload{}}
	if len(ups) > limit {
		ups, out.IsTruncated = ups[:limit], true
	}
	out.Uploads = append(out.Uploads, ups...)
	if out.IsTruncated && len(ups) > 0 {
		out.NextKeyMarker, out.NextUploadIDMarker = ups[len(ups)-1].Key, ups[len(ups)-1].UploadID
	}
	writeXML(w, http.StatusOK, out)
}

func cmpOrder(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// checkContentMD5 compares a body's MD5 with its Content-MD5 header.
func checkContentMD5(r *http.Request, got []byte) error {
	v := r.Header.Get("Content-MD5")
	if v == "" {
		return nil
	}
	want, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(want) != md5.Size {
		return s3Err(http.StatusBadRequest, "InvalidDigest", "Content-MD5 %q is not the base64 of 16 bytes", v)
	}
	if !bytes.Equal(got, want) {
		return s3Err(http.StatusBadRequest, "BadDigest", "the Content-MD5 you specified did not match what was received")
	}
	return nil
}
