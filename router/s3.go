package router

// The S3 API (--s3): the namespace seen as buckets and objects. A bucket
// is a directory at the root, an object a file below it: the key a/b/c
// of bucket photos is the file /photos/a/b/c, so a file written through
// the mount or the file API is an object, and the other way round.
// Requests are signed with AWS Signature V4 by access keys of the
// cluster's users (shoal user key add) and act as those users: the same
// permission checks as the file API apply. docs/s3.md says what maps and
// what is refused.

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"shoal/meta"
	"shoal/secure"
	"shoal/wire"
)

// S3Config configures the S3 API of a router.
type S3Config struct {
	// Region is the region the API says it is in (GetBucketLocation);
	// signatures for any region are accepted (default us-east-1).
	Region string
	// Domain, when set, enables virtual-host-style requests: a request
	// to BUCKET.Domain names BUCKET (path-style requests work always).
	Domain string
}

// S3 returns the handler of the S3 API, served on its own address.
func (s *Server) S3(cfg S3Config) http.Handler {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return &s3Server{s: s, cfg: cfg, buckets: map[bucketKey]cachedBucket{}}
}

type s3Server struct {
	s   *Server
	cfg S3Config

	// buckets remembers the buckets callers found, for AuthTTL: nearly
	// every request names one, and a PUT of a small object would
	// otherwise cost a namespace read besides its commit. An entry is
	// one caller's identity's lookup, so it stands for the permission
	// check that lookup made; the ops that follow check their own.
	mu      sync.Mutex
	buckets map[bucketKey]cachedBucket
}

type bucketKey struct {
	name string
	cred string // the identity the lookup was made for
}

type cachedBucket struct {
	in meta.Inode
	at time.Time
}

// maxCachedBuckets bounds the bucket cache; past it, it starts over.
const maxCachedBuckets = 4096

// s3Target is what an S3 request names.
type s3Target struct {
	bucket string
	key    string // "" for the bucket itself
}

// path is the target's path in the namespace; a key ending in "/" (a
// directory marker) names the directory.
func (t s3Target) path() string {
	p := "/" + t.bucket
	if k := strings.TrimSuffix(t.key, "/"); k != "" {
		p += "/" + k
	}
	return p
}

// resource is the target as S3 errors name it.
func (t s3Target) resource() string {
	if t.bucket == "" {
		return "/"
	}
	if t.key == "" {
		return "/" + t.bucket
	}
	return "/" + t.bucket + "/" + t.key
}

const (
	// maxKey is S3's limit on a key's length in bytes.
	maxKey = 1024
	// maxUserMeta is S3's limit on an object's user metadata: names and
	// values of its x-amz-meta-* headers together.
	maxUserMeta = 2 << 10
	// maxS3XML bounds the XML bodies the API reads (DeleteObjects,
	// CreateBucket's configuration, CompleteMultipartUpload).
	maxS3XML = 2 << 20
	// maxListKeys is the most keys one listing answers, as in S3.
	maxListKeys = 1000
	// maxSegment is the longest part of a key between slashes: a name in
	// a directory (NAME_MAX).
	maxSegment = 255
)

func (x *s3Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := x.s
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		// net/http sends "100 Continue" when a handler first reads the
		// body, so never for an empty one, and answers with the final
		// status straight away. Some clients (the AWS CLI) then read
		// the next answer on that connection wrongly and wait for it
		// until they time out: say it, as S3 does.
		w.WriteHeader(http.StatusContinue)
	}
	start := time.Now()
	sr := &statusRecorder{ResponseWriter: w}
	w = sr
	defer func() {
		s.cfg.Logger.Debug("s3 request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", sr.status, "took", time.Since(start), "remote", r.RemoteAddr)
	}()
	if r.ContentLength != 0 {
		defer s.guardBody(w, r)()
	}
	var id [8]byte
	crand.Read(id[:])
	reqID := strings.ToUpper(hex.EncodeToString(id[:]))
	w.Header().Set("x-amz-request-id", reqID)
	w.Header().Set("Server", "Shoal")
	t, err := x.target(r)
	if err == nil {
		r, err = x.authenticate(r, t)
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	q := r.URL.Query()
	if t.bucket != "" {
		if err := x.checkHeaders(r); err != nil {
			x.fail(w, r, t, err)
			return
		}
		if r.Header.Get("X-Amz-Server-Side-Encryption") != "" {
			w.Header().Set("X-Amz-Server-Side-Encryption", "AES256") // what checkHeaders let through
		}
		r = x.readsAsPublic(r, t)
	}
	switch {
	case t.bucket == "":
		switch r.Method {
		case http.MethodGet:
			x.listBuckets(w, r)
		default:
			x.fail(w, r, t, s3Err(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s is not allowed on the service", r.Method))
		}
	case t.key == "":
		x.serveBucket(w, r, t, q)
	default:
		x.serveObject(w, r, t, q)
	}
}

// s3Unsupported are the subresources the API does not implement: asked
// for, they answer NotImplemented rather than acting on the bucket or
// object itself.
var s3Unsupported = []string{"policy", "cors", "lifecycle", "versioning", "versions", "tagging", "website",
	"logging", "notification", "replication", "encryption", "object-lock", "retention", "legal-hold", "torrent",
	"requestPayment", "accelerate", "analytics", "inventory", "metrics", "intelligent-tiering", "ownershipControls",
	"publicAccessBlock", "restore", "select", "attributes", "partNumber", "uploads", "uploadId"}

func unsupported(q map[string][]string) string {
	for _, k := range s3Unsupported {
		if _, ok := q[k]; ok {
			return k
		}
	}
	return ""
}

func (x *s3Server) serveBucket(w http.ResponseWriter, r *http.Request, t s3Target, q map[string][]string) {
	_, location := q["location"]
	_, del := q["delete"]
	_, uploads := q["uploads"]
	_, acl := q["acl"]
	_, versions := q["versions"]
	_, versioning := q["versioning"]
	switch {
	case r.Method == http.MethodGet && acl:
		x.getACL(w, r, t)
	case r.Method == http.MethodPut && acl:
		x.putBucketACL(w, r, t)
	case r.Method == http.MethodGet && versions:
		x.listVersions(w, r, t)
	case r.Method == http.MethodGet && versioning:
		x.bucketVersioning(w, r, t)
	case r.Method == http.MethodGet && uploads:
		x.listUploads(w, r, t)
	case r.Method == http.MethodGet && location:
		x.bucketLocation(w, r, t)
	case r.Method == http.MethodPost && del:
		x.deleteObjects(w, r, t)
	case unsupported(q) != "":
		x.fail(w, r, t, s3Err(http.StatusNotImplemented, "NotImplemented", "the %s subresource is not implemented", unsupported(q)))
	case r.Method == http.MethodGet:
		x.listObjects(w, r, t)
	case r.Method == http.MethodHead:
		x.headBucket(w, r, t)
	case r.Method == http.MethodPut:
		x.createBucket(w, r, t)
	case r.Method == http.MethodDelete:
		x.deleteBucket(w, r, t)
	default:
		x.fail(w, r, t, s3Err(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s is not allowed on a bucket", r.Method))
	}
}

func (x *s3Server) serveObject(w http.ResponseWriter, r *http.Request, t s3Target, q map[string][]string) {
	_, uploads := q["uploads"]
	_, upload := q["uploadId"]
	_, acl := q["acl"]
	if v, ok := q["versionId"]; ok && (len(v) != 1 || v[0] != "null") {
		// The one version of an object of a bucket without versioning
		// is "null".
		x.fail(w, r, t, s3Err(http.StatusBadRequest, "InvalidArgument", "no version %q: buckets keep no versions, an object's one version is \"null\"", v))
		return
	}
	if (r.Method == http.MethodPut && !acl || r.Method == http.MethodPost && uploads) && checkObjectACL(r.Header) != nil {
		x.fail(w, r, t, checkObjectACL(r.Header))
		return
	}
	switch {
	case r.Method == http.MethodGet && acl:
		x.getACL(w, r, t)
	case r.Method == http.MethodPut && acl:
		x.putObjectACL(w, r, t)
	case r.Method == http.MethodPost && uploads:
		x.createUpload(w, r, t)
	case r.Method == http.MethodPut && upload:
		x.uploadPart(w, r, t)
	case r.Method == http.MethodGet && upload:
		x.listParts(w, r, t)
	case r.Method == http.MethodPost && upload:
		x.completeUpload(w, r, t)
	case r.Method == http.MethodDelete && upload:
		x.abortUpload(w, r, t)
	case unsupported(q) != "":
		x.fail(w, r, t, s3Err(http.StatusNotImplemented, "NotImplemented", "the %s subresource is not implemented", unsupported(q)))
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		x.getObject(w, r, t)
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		x.copyObject(w, r, t)
	case r.Method == http.MethodPut:
		x.putObject(w, r, t)
	case r.Method == http.MethodDelete:
		x.deleteObject(w, r, t)
	default:
		x.fail(w, r, t, s3Err(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s is not allowed on an object", r.Method))
	}
}

// target reads the bucket and key of r, path-style (/BUCKET/KEY) or
// virtual-host-style (BUCKET.DOMAIN/KEY), and checks that they map to a
// path.
func (x *s3Server) target(r *http.Request) (s3Target, error) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		return s3Target{}, s3Err(http.StatusBadRequest, "InvalidURI", "the path %q does not start with /", p)
	}
	var t s3Target
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if d := x.cfg.Domain; d != "" && strings.HasSuffix(strings.ToLower(host), "."+strings.ToLower(d)) {
		t.bucket, t.key = host[:len(host)-len(d)-1], p[1:]
	} else {
		t.bucket, t.key, _ = strings.Cut(p[1:], "/")
	}
	if t.bucket == "" {
		if t.key != "" {
			return t, s3Err(http.StatusBadRequest, "InvalidBucketName", "no bucket name before the key %q", t.key)
		}
		return t, nil
	}
	if !validBucket(t.bucket) {
		return t, s3Err(http.StatusBadRequest, "InvalidBucketName",
			"bucket name %q: use 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit, a dot next to neither a dot nor a hyphen", t.bucket)
	}
	return t, checkKey(t.key)
}

// validBucket reports whether name follows S3's rules for bucket names,
// which also make it a safe directory name.
func validBucket(name string) bool {
	if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return false
	}
	for i, c := range []byte(name) {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(name)-1 || c != '.' && c != '-') {
			return false
		}
	}
	return net.ParseIP(name) == nil
}

// checkKey refuses a key that does not map to a path: too long, not
// UTF-8, a NUL, or an empty, "." or ".." segment (a//b, a/./b, ../x).
// A key ending in "/" names a directory (a "folder" marker).
func checkKey(key string) error {
	switch {
	case key == "":
		return nil
	case len(key) > maxKey:
		return s3Err(http.StatusBadRequest, "KeyTooLongError", "the key is %d bytes, over the limit of %d", len(key), maxKey)
	case !utf8.ValidString(key) || strings.ContainsRune(key, 0):
		return s3Err(http.StatusBadRequest, "InvalidArgument", "the key is not UTF-8 text without NUL")
	}
	for _, seg := range strings.Split(strings.TrimSuffix(key, "/"), "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return s3Err(http.StatusBadRequest, "InvalidArgument",
				"key %q has an empty, \".\" or \"..\" segment: keys map to paths (bucket/a/b), and such a key has none", key)
		case len(seg) > maxSegment:
			return s3Err(http.StatusBadRequest, "KeyTooLongError", "a segment of the key is %d bytes, over the limit of %d between slashes", len(seg), maxSegment)
		}
	}
	return nil
}

// authenticate finds the user whose access key signed r, and checks the
// signature; an unsigned request may only read a public-read bucket (see
// anonymous). With --insecure every request acts as the cluster's root
// and signatures are not checked (there are no users to check them for).
func (x *s3Server) authenticate(r *http.Request, t s3Target) (*http.Request, error) {
	s := x.s
	v, err := secure.ParseSigV4(r)
	if s.auth == nil {
		if err == nil {
			r = r.WithContext(context.WithValue(r.Context(), sigKey{}, &signed{v: v}))
		}
		return r, nil
	}
	switch {
	case errors.Is(err, secure.ErrSigMissing):
		return x.anonymous(r, t)
	case errors.Is(err, secure.ErrSigUnsupported):
		return r, s3Err(http.StatusBadRequest, "InvalidRequest", "%v", err)
	case err != nil:
		return r, s3Err(http.StatusBadRequest, "AuthorizationHeaderMalformed", "%v", err)
	case !meta.ValidAccessKeyID(v.AccessKey):
		return r, s3Err(http.StatusForbidden, "InvalidAccessKeyId", "the access key ID %q does not exist", v.AccessKey)
	}
	u, err := s.auth.byHash(r, meta.AccessKeyHash(v.AccessKey))
	if errors.Is(err, ErrUnauthenticated) {
		return r, s3Err(http.StatusForbidden, "InvalidAccessKeyId", "the access key ID %q does not exist, or was removed", v.AccessKey)
	}
	if err != nil {
		return r, err
	}
	var secret []byte
	for _, k := range u.Keys {
		if k.ID != v.AccessKey {
			continue
		}
		secret = k.Secret
		if k.SealKey != 0 {
			if s.cfg.Sealer == nil {
				return r, fmt.Errorf("%w: access keys are sealed and this router has no data key", ErrSealed)
			}
			if secret, err = s.cfg.Sealer.OpenInline(k.Secret, k.SealKey); err != nil {
				return r, fmt.Errorf("%w: open the secret of access key %s: %v", ErrSealed, k.ID, err)
			}
		}
	}
	if secret == nil {
		return r, s3Err(http.StatusForbidden, "InvalidAccessKeyId", "the access key ID %q does not exist, or was removed", v.AccessKey)
	}
	key := v.SigningKey(string(secret))
	if err := v.Verify(r, key, time.Now()); err != nil {
		s.auth.failed(sourceOf(r), time.Now(), err)
		switch {
		case errors.Is(err, secure.ErrSigExpired) && v.Presigned:
			return r, s3Err(http.StatusForbidden, "AccessDenied", "Request has expired: %v", err)
		case errors.Is(err, secure.ErrSigExpired):
			return r, s3Err(http.StatusForbidden, "RequestTimeTooSkewed", "%v", err)
		}
		return r, s3Err(http.StatusForbidden, "SignatureDoesNotMatch",
			"the request signature does not match the one computed with the access key's secret: check the secret key and the signing method")
	}
	c := &caller{user: u, cred: credFor(u)}
	ctx := context.WithValue(r.Context(), callerKey{}, c)
	ctx = context.WithValue(ctx, sigKey{}, &signed{v: v, key: key})
	return r.WithContext(ctx), nil
}

// signed is a request's checked signature, which its body is read with.
type signed struct {
	v   *secure.SigV4
	key []byte // nil with --insecure: chunk signatures are not checked
}

type sigKey struct{}

// body returns r's content as its signature declares it (decoded from
// aws-chunked, checked against its hashes), and its length (-1 unknown).
func (x *s3Server) body(r *http.Request) (io.Reader, int64, error) {
	var (
		body io.Reader
		size int64
		err  error
	)
	if sg, _ := r.Context().Value(sigKey{}).(*signed); sg != nil {
		body, size, err = sg.v.Body(r, sg.key)
	} else {
		body, size, err = secure.UnsignedBody(r)
	}
	if err != nil {
		return nil, 0, s3Err(http.StatusBadRequest, "InvalidRequest", "%v", err)
	}
	return body, size, nil
}

// s3Error is an error as S3 states it: a status and a code clients know.
type s3Error struct {
	status  int
	code    string
	message string
}

func (e *s3Error) Error() string { return e.code + ": " + e.message }

func s3Err(status int, code, format string, args ...any) *s3Error {
	return &s3Error{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// s3ErrorOf is err as S3 states it, for a request about t.
func s3ErrorOf(err error, t s3Target) *s3Error {
	var e *s3Error
	if errors.As(err, &e) {
		return e
	}
	msg := err.Error()
	switch {
	case errors.Is(err, secure.ErrBadBody) && strings.Contains(msg, "signature"):
		return s3Err(http.StatusForbidden, "SignatureDoesNotMatch", "%s", msg)
	case errors.Is(err, secure.ErrBadBody) && strings.Contains(msg, "x-amz-content-sha256"):
		return s3Err(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "%s", msg)
	case errors.Is(err, secure.ErrBadBody) && strings.Contains(msg, "checksum"):
		return s3Err(http.StatusBadRequest, "BadDigest", "%s", msg)
	case errors.Is(err, secure.ErrBadBody):
		return s3Err(http.StatusBadRequest, "IncompleteBody", "%s", msg)
	case errors.Is(err, ErrBodyTimeout):
		return s3Err(http.StatusBadRequest, "RequestTimeout", "%s", msg)
	case errors.Is(err, ErrTooLarge):
		return s3Err(http.StatusBadRequest, "EntityTooLarge", "%s", msg)
	case errors.Is(err, ErrBadRequest) && strings.Contains(msg, "body has"):
		return s3Err(http.StatusBadRequest, "IncompleteBody", "%s", msg)
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrBadPath), errors.Is(err, meta.ErrInvalid):
		return s3Err(http.StatusBadRequest, "InvalidArgument", "%s", msg)
	case errors.Is(err, meta.ErrNotFound) && t.key == "":
		return s3Err(http.StatusNotFound, "NoSuchBucket", "the bucket %s does not exist", t.bucket)
	case errors.Is(err, meta.ErrNotFound):
		return s3Err(http.StatusNotFound, "NoSuchKey", "the key %s does not exist", t.key)
	case errors.Is(err, meta.ErrNotDir):
		return s3Err(http.StatusConflict, "ParentIsObject", "a prefix of key %s is an object, which cannot hold other keys: %s", t.key, msg)
	case errors.Is(err, meta.ErrIsDir), errors.Is(err, meta.ErrNotEmpty) && t.key != "":
		return s3Err(http.StatusConflict, "ObjectExistsAsDirectory", "key %s is a prefix of other keys (a directory): %s", t.key, msg)
	case errors.Is(err, meta.ErrNotEmpty):
		return s3Err(http.StatusConflict, "BucketNotEmpty", "the bucket %s is not empty", t.bucket)
	case errors.Is(err, meta.ErrPrecondition):
		return s3Err(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	case errors.Is(err, meta.ErrPermission), errors.Is(err, meta.ErrNotPermitted), errors.Is(err, ErrDenied):
		return s3Err(http.StatusForbidden, "AccessDenied", "%s", msg)
	case errors.Is(err, ErrTooManyRequests):
		return s3Err(http.StatusServiceUnavailable, "SlowDown", "%s", msg)
	case errors.Is(err, meta.ErrNoSpace):
		return s3Err(http.StatusInsufficientStorage, "StorageFull", "%s", msg)
	case errors.Is(err, meta.ErrExists):
		return s3Err(http.StatusConflict, "OperationAborted", "%s", msg)
	}
	if status, _ := statusOf(err); status == http.StatusServiceUnavailable {
		return s3Err(http.StatusServiceUnavailable, "ServiceUnavailable", "%s; retry", msg)
	}
	return s3Err(http.StatusInternalServerError, "InternalError", "%s", msg)
}

type s3ErrorBody struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string
	Message    string
	Resource   string
	BucketName string `xml:",omitempty"`
	Key        string `xml:",omitempty"`
	RequestID  string `xml:"RequestId"`
}

// fail answers r with err as an S3 error.
func (x *s3Server) fail(w http.ResponseWriter, r *http.Request, t s3Target, err error) {
	e := s3ErrorOf(err, t)
	if e.status == http.StatusNotFound && t.bucket != "" {
		// What is missing may be the bucket, gone through another
		// router while this one still had it in its cache.
		x.forget(t.bucket)
	}
	if e.status >= 500 {
		x.s.cfg.Logger.Warn("s3 request failed", "method", r.Method, "resource", t.resource(), "code", e.code, "err", err)
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	writeXML(w, e.status, s3ErrorBody{Code: e.code, Message: e.message, Resource: t.resource(),
		BucketName: t.bucket, Key: t.key, RequestID: w.Header().Get("x-amz-request-id")})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "encode the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(xml.Header)+len(b)))
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	w.Write(b)
}

// readXML decodes r's XML body (at most maxS3XML bytes) into v.
func (x *s3Server) readXML(r *http.Request, v any) error {
	body, _, err := x.body(r)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(body, maxS3XML+1))
	if err != nil {
		return fmt.Errorf("%w: read the body: %w", ErrBadRequest, err)
	}
	if len(b) > maxS3XML {
		return s3Err(http.StatusBadRequest, "MalformedXML", "the XML body is over %d bytes", maxS3XML)
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return s3Err(http.StatusBadRequest, "MalformedXML", "the XML body cannot be read: %v", err)
	}
	return nil
}

// lookup reads the inode at p for the caller, who needs the access want.
func (x *s3Server) lookup(ctx context.Context, p string, want uint32) (meta.Inode, error) {
	rr, err := x.s.read(ctx, wire.ReadLookup, target{path: p}, want)
	if err != nil {
		return meta.Inode{}, err
	}
	return rr.Inode, nil
}

// bucketDir returns the inode of t's bucket: NoSuchBucket if there is no
// directory of that name. A bucket the caller's identity found within
// the last AuthTTL is taken from the cache: a bucket removed meanwhile
// through another router fails the op that names it by inode instead
// (NoSuchBucket or NoSuchKey), and drops the entry (see forget).
func (x *s3Server) bucketDir(ctx context.Context, t s3Target) (meta.Inode, error) {
	key := bucketKey{name: t.bucket, cred: credKey(credOf(ctx))}
	now := time.Now()
	x.mu.Lock()
	c, ok := x.buckets[key]
	x.mu.Unlock()
	if ok && now.Sub(c.at) < x.s.cfg.AuthTTL {
		return c.in, nil
	}
	in, err := x.lookup(ctx, "/"+t.bucket, 0)
	if err == nil && in.Type != meta.TypeDir {
		err = meta.ErrNotFound
	}
	if errors.Is(err, meta.ErrNotFound) {
		x.forget(t.bucket)
		return in, s3Err(http.StatusNotFound, "NoSuchBucket", "the bucket %s does not exist", t.bucket)
	}
	if err == nil {
		x.mu.Lock()
		if len(x.buckets) >= maxCachedBuckets {
			clear(x.buckets)
		}
		x.buckets[key] = cachedBucket{in: in, at: now}
		x.mu.Unlock()
	}
	return in, err
}

// forget drops what the cache holds of bucket, which changed or is gone.
func (x *s3Server) forget(bucket string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k := range x.buckets {
		if k.name == bucket {
			delete(x.buckets, k)
		}
	}
}

// credKey names an identity for the bucket cache.
func credKey(c *meta.Cred) string {
	if c == nil {
		return "insecure"
	}
	return fmt.Sprintf("%d/%d/%v/%t/%t", c.Uid, c.Gid, c.Groups, c.Root, c.Host)
}

// propose commits op with an ID of its own: a request of this API may
// make several changes (an upload's directory and its description; an
// object's removal and its emptied parents), and each is applied once
// however often the router retries it.
func (x *s3Server) propose(ctx context.Context, op meta.Op) (meta.Result, error) {
	op.ReqID = orderedID("s3:")
	return x.s.propose(ctx, op)
}

// proposeIn commits op, which names its path from t's bucket (op.Dir),
// found through the bucket cache. When the op finds nothing there, the
// bucket may be one the cache still held after it was removed (and
// perhaps made again) through another router or the file API: it is
// looked up afresh, and the op is sent again to the bucket of that name
// now, if that is another directory (op.Dir then names it).
func (x *s3Server) proposeIn(ctx context.Context, t s3Target, op *meta.Op) (meta.Result, error) {
	res, err := x.propose(ctx, *op)
	if !errors.Is(err, meta.ErrNotFound) {
		return res, err
	}
	x.forget(t.bucket)
	bucket, berr := x.bucketDir(ctx, t)
	if berr != nil {
		return res, berr
	}
	if bucket.Ino == op.Dir {
		return res, err
	}
	op.Dir = bucket.Ino
	return x.propose(ctx, *op)
}

// s3Time is a time as S3's XML writes it.
func s3Time(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000Z") }
