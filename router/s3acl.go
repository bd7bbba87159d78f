package router

// Access control of the S3 API beyond signed requests: buckets made
// public-read, which anyone may list and read without signing. S3's
// ACLs are richer than that (grants to named accounts, write grants,
// per-object ACLs); the namespace's permission bits already say who of
// the cluster's users may do what, so the API keeps one thing only, the
// bucket's public flag (meta.Object.Public), and answers the ACL calls
// from it and from the owner. docs/s3.md says what is accepted.

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"shoal/clock"
	"shoal/meta"
	"shoal/wire"
)

const allUsers = "http://acs.amazonaws.com/groups/global/AllUsers"

// anonymous admits an unsigned request only to read a public-read
// bucket: list it, stat and read its objects. It acts as the bucket's
// owner without root's powers or supplementary groups, so it reads what
// the owner's own uid and group could, and it cannot change anything.
// Any other unsigned request is refused the same way whether or not the
// bucket exists, so the refusal tells nothing about the namespace.
func (x *s3Server) anonymous(r *http.Request, t s3Target) (*http.Request, error) {
	denied := s3Err(http.StatusForbidden, "AccessDenied",
		"anonymous requests are not allowed here: sign requests with an access key ('shoal user key add NAME' makes one); "+
			"unsigned requests may only read the objects of a public-read bucket")
	if !publicRead(r, t) {
		return r, denied
	}
	// The router's own lookup: the caller is nobody yet.
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	in, err := x.lookup(ctx, "/"+t.bucket, 0)
	cancel()
	if err != nil || in.Type != meta.TypeDir || in.Object == nil || !in.Object.Public {
		return r, denied
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, publicCaller(in))), nil
}

// publicRead reports whether r only reads what a public-read bucket
// shows everyone: its listing, its objects and their metadata.
func publicRead(r *http.Request, t s3Target) bool {
	q := r.URL.Query()
	if t.bucket == "" || r.Method != http.MethodGet && r.Method != http.MethodHead || unsupported(q) != "" {
		return false
	}
	for _, k := range []string{"acl", "uploads", "uploadId", "location"} {
		if _, ok := q[k]; ok {
			return false
		}
	}
	return true
}

// publicCaller is who reads the public-read bucket b for everyone: its
// owner's uid and group, without an admin's powers or other groups.
func publicCaller(b meta.Inode) *caller {
	return &caller{user: meta.User{Name: "anonymous", Uid: b.Uid, Gid: b.Gid}, cred: &meta.Cred{Uid: b.Uid, Gid: b.Gid}, anonymous: true}
}

// readsAsPublic lets a signed user read a public-read bucket that their
// own permissions keep them out of, as anyone may: r then acts as the
// public reader. A user who may read the bucket reads as themselves.
func (x *s3Server) readsAsPublic(r *http.Request, t s3Target) *http.Request {
	ctx := r.Context()
	c := callerOf(ctx)
	if c == nil || c.anonymous || c.user.Admin || !publicRead(r, t) {
		return r
	}
	b, err := x.bucketDir(ctx, t)
	if err != nil || b.Object == nil || !b.Object.Public || b.Uid == c.user.Uid {
		return r
	}
	if _, err := x.lookup(ctx, "/"+t.bucket, meta.MayRead|meta.MayExec); !errors.Is(err, meta.ErrPermission) {
		return r
	}
	return r.WithContext(context.WithValue(ctx, callerKey{}, publicCaller(b)))
}

// isAnonymous reports whether ctx's caller is an unsigned request.
func isAnonymous(ctx context.Context) bool {
	c := callerOf(ctx)
	return c != nil && c.anonymous
}

// cannedBucketACL reads a bucket's canned ACL (x-amz-acl) as its public
// flag; ok is false when the header is absent.
func cannedBucketACL(h http.Header) (public, ok bool, err error) {
	if grantHeaders(h) {
		return false, false, s3Err(http.StatusNotImplemented, "NotImplemented",
			"x-amz-grant-* headers are not supported: the cluster's permissions say who may do what; a bucket may be made public-read")
	}
	switch v := h.Get("X-Amz-Acl"); v {
	case "":
		return false, false, nil
	case "private":
		return false, true, nil
	case "public-read":
		return true, true, nil
	case "public-read-write", "authenticated-read", "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write":
		return false, false, s3Err(http.StatusNotImplemented, "NotImplemented",
			"the canned ACL %q is not supported: buckets are private or public-read", v)
	default:
		return false, false, s3Err(http.StatusBadRequest, "InvalidArgument", "x-amz-acl %q is no canned ACL", v)
	}
}

// checkObjectACL refuses an object write that asks for an ACL other than
// the default: objects have no ACLs of their own (their bucket's applies).
func checkObjectACL(h http.Header) error {
	if grantHeaders(h) {
		return s3Err(http.StatusNotImplemented, "NotImplemented",
			"x-amz-grant-* headers are not supported: objects take their bucket's access (private or public-read)")
	}
	switch v := h.Get("X-Amz-Acl"); v {
	case "", "private", "bucket-owner-full-control":
		return nil
	default:
		return s3Err(http.StatusNotImplemented, "NotImplemented",
			"objects have no ACLs of their own (canned ACL %q): make the bucket public-read instead", v)
	}
}

func grantHeaders(h http.Header) bool {
	for _, k := range []string{"X-Amz-Grant-Read", "X-Amz-Grant-Write", "X-Amz-Grant-Read-Acp", "X-Amz-Grant-Write-Acp", "X-Amz-Grant-Full-Control"} {
		if h.Get(k) != "" {
			return true
		}
	}
	return false
}

type s3Grantee struct {
	XMLNS       string `xml:"xmlns:xsi,attr,omitempty"`
	Type        string `xml:"xsi:type,attr,omitempty"`
	ID          string `xml:",omitempty"`
	DisplayName string `xml:",omitempty"`
	URI         string `xml:",omitempty"`
}

type s3Grant struct {
	Grantee    s3Grantee
	Permission string
}

type accessControlPolicy struct {
	XMLName xml.Name  `xml:"AccessControlPolicy"`
	NS      string    `xml:"xmlns,attr,omitempty"`
	Owner   s3Owner   `xml:"Owner"`
	Grants  []s3Grant `xml:"AccessControlList>Grant"`
}

// aclOf is the ACL S3 clients read for an inode owned by uid, in a
// bucket that is public or not.
func (x *s3Server) aclOf(ctx context.Context, uid uint32, public bool) accessControlPolicy {
	owner := s3Owner{ID: strconv.FormatUint(uint64(uid), 10)}
	if rr, err := x.s.metaRead(ctx, &wire.Read{Kind: wire.ReadUsers}); err == nil {
		for _, u := range rr.Users {
			if u.Uid == uid {
				owner.DisplayName = u.Name
			}
		}
	}
	const xsi = "http://www.w3.org/2001/XMLSchema-instance"
	acl := accessControlPolicy{NS: s3NS, Owner: owner, Grants: []s3Grant{{
		Grantee:    s3Grantee{XMLNS: xsi, Type: "CanonicalUser", ID: owner.ID, DisplayName: owner.DisplayName},
		Permission: "FULL_CONTROL",
	}}}
	if public {
		acl.Grants = append(acl.Grants, s3Grant{Grantee: s3Grantee{XMLNS: xsi, Type: "Group", URI: allUsers}, Permission: "READ"})
	}
	return acl
}

// getACL answers GetBucketAcl and GetObjectAcl: to a caller who may read
// the bucket (and stat the object).
func (x *s3Server) getACL(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	bucket, err := x.bucketDir(ctx, t)
	if err == nil {
		_, err = x.lookup(ctx, "/"+t.bucket, meta.MayRead)
	}
	in := bucket
	if err == nil && t.key != "" {
		in, err = x.lookup(ctx, t.path(), 0)
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	public := bucket.Object != nil && bucket.Object.Public
	writeXML(w, http.StatusOK, x.aclOf(ctx, in.Uid, public))
}

// putBucketACL answers PutBucketAcl: a canned ACL (x-amz-acl) or an
// AccessControlPolicy body that grants no more than READ to everyone.
// Only the bucket's owner (or an admin) may change it.
func (x *s3Server) putBucketACL(w http.ResponseWriter, r *http.Request, t s3Target) {
	ctx := r.Context()
	public, ok, err := cannedBucketACL(r.Header)
	if err == nil && !ok {
		public, err = x.readACLBody(r)
	}
	if err == nil {
		_, err = x.bucketDir(ctx, t)
	}
	if err == nil {
		err = x.setPublic(ctx, t, public)
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// readACLBody reads an AccessControlPolicy: grants to the owner are
// what it has anyway, READ to AllUsers makes the bucket public, and any
// other grant is not supported.
func (x *s3Server) readACLBody(r *http.Request) (public bool, err error) {
	if r.ContentLength == 0 {
		return false, s3Err(http.StatusBadRequest, "MissingSecurityHeader", "send x-amz-acl or an AccessControlPolicy body")
	}
	var p accessControlPolicy
	if err := x.readXML(r, &p); err != nil {
		return false, err
	}
	for _, g := range p.Grants {
		switch {
		case g.Grantee.URI == allUsers && g.Permission == "READ":
			public = true
		case g.Grantee.URI == "" && (g.Grantee.ID == p.Owner.ID || p.Owner.ID == "") && g.Permission == "FULL_CONTROL":
		default:
			return false, s3Err(http.StatusNotImplemented, "NotImplemented",
				"the grant of %s to %s%s is not supported: buckets are private or public-read", g.Permission, g.Grantee.URI, g.Grantee.ID)
		}
	}
	return public, nil
}

// setPublic makes t's bucket public-read or private.
func (x *s3Server) setPublic(ctx context.Context, t s3Target, public bool) error {
	defer x.forget(t.bucket)
	_, err := x.propose(ctx, meta.Op{Kind: meta.OpUpdate, Path: "/" + t.bucket,
		Attr: &meta.SetAttr{Valid: meta.SetPublic, Public: public}, Time: clock.Now().UnixNano()})
	return err
}

// putObjectACL answers PutObjectAcl: objects take their bucket's access,
// so only the default ACL is accepted, and it changes nothing.
func (x *s3Server) putObjectACL(w http.ResponseWriter, r *http.Request, t s3Target) {
	err := checkObjectACL(r.Header)
	if err == nil && r.Header.Get("X-Amz-Acl") == "" {
		err = s3Err(http.StatusNotImplemented, "NotImplemented", "objects have no ACLs of their own: make the bucket public-read instead")
	}
	if err == nil {
		_, err = x.lookup(r.Context(), t.path(), 0)
	}
	if err != nil {
		x.fail(w, r, t, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// checkHeaders refuses a request that asks for what the API does not do,
// rather than doing the rest and leaving the client to believe it was
// done: encryption with keys the client or a KMS holds, object lock,
// tags, storage classes, website redirects. Server-side encryption with
// the cluster's own keys (AES256) is what a router with a data key does
// to all content anyway, so it is accepted there.
func (x *s3Server) checkHeaders(r *http.Request) error {
	h := r.Header
	write := r.Method == http.MethodPut || r.Method == http.MethodPost
	for _, k := range []string{"X-Amz-Server-Side-Encryption-Customer-Algorithm", "X-Amz-Server-Side-Encryption-Customer-Key",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm", "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key"} {
		if h.Get(k) != "" {
			return s3Err(http.StatusNotImplemented, "NotImplemented",
				"encryption with a key the client holds (SSE-C, %s) is not supported: content is sealed at rest with the cluster's data key", k)
		}
	}
	if !write {
		return nil
	}
	switch v := h.Get("X-Amz-Server-Side-Encryption"); {
	case v == "":
	case v == "AES256" && x.s.cfg.Sealer != nil:
	case v == "AES256":
		return s3Err(http.StatusNotImplemented, "NotImplemented",
			"x-amz-server-side-encryption AES256: this cluster does not seal content at rest (its routers have no data key)")
	default:
		return s3Err(http.StatusNotImplemented, "NotImplemented", "x-amz-server-side-encryption %q is not supported: only AES256, with the cluster's data key", v)
	}
	for _, k := range []string{"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "X-Amz-Server-Side-Encryption-Context",
		"X-Amz-Server-Side-Encryption-Bucket-Key-Enabled", "X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date",
		"X-Amz-Object-Lock-Legal-Hold", "X-Amz-Tagging", "X-Amz-Website-Redirect-Location", "X-Amz-Bucket-Object-Lock-Enabled"} {
		if v := h.Get(k); v != "" && !(k == "X-Amz-Bucket-Object-Lock-Enabled" && strings.EqualFold(v, "false")) {
			return s3Err(http.StatusNotImplemented, "NotImplemented", "%s is not supported", strings.ToLower(k))
		}
	}
	if v := h.Get("X-Amz-Storage-Class"); v != "" && v != "STANDARD" {
		return s3Err(http.StatusNotImplemented, "NotImplemented", "storage class %q is not supported: every object is STANDARD", v)
	}
	return nil
}
