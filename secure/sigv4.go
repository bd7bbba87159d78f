package secure

// AWS Signature Version 4, as S3 clients sign requests: in the
// Authorization header, in the query string of a presigned URL, and chunk
// by chunk in the aws-chunked bodies the SDKs stream
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). The signature is an HMAC under a
// key derived from the secret, the day, the region and the service, over
// a canonical form of the request; see
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors of signature checks. Each is wrapped with what was wrong.
var (
	// ErrSigMissing: the request carries no signature (anonymous).
	ErrSigMissing = errors.New("request is not signed")
	// ErrSigMalformed: the signature's fields cannot be read.
	ErrSigMalformed = errors.New("malformed signature")
	// ErrSigMismatch: the signature does not match the request.
	ErrSigMismatch = errors.New("signature does not match")
	// ErrSigExpired: a presigned URL past its expiry, or a signature
	// dated too far from now.
	ErrSigExpired = errors.New("signature expired")
	// ErrSigUnsupported: a signing scheme that is not Signature V4.
	ErrSigUnsupported = errors.New("signing scheme not supported")
)

// The values of x-amz-content-sha256 that are not a hash of the body.
const (
	UnsignedPayload        = "UNSIGNED-PAYLOAD"
	StreamingPayload       = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrail  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDate      = "20060102T150405Z"
	// MaxClockSkew is how far a signature's date may be from the
	// router's clock, as S3 allows.
	MaxClockSkew = 15 * time.Minute
	// MaxPresignExpiry is the longest a presigned URL may be valid.
	MaxPresignExpiry = 7 * 24 * time.Hour
)

// SigV4 is a request's signature as parsed, before it is checked.
type SigV4 struct {
	AccessKey string
	Date      time.Time // X-Amz-Date
	Day       string    // the scope's date, YYYYMMDD
	Region    string
	Service   string
	Signed    []string // lower-case header names, sorted
	Signature []byte
	// Presigned: the signature is in the query string, valid for Expires
	// from Date.
	Presigned bool
	Expires   time.Duration
	// Payload is the body's declared hash: hex SHA-256, UnsignedPayload
	// or one of the streaming forms.
	Payload string
}

// Scope is the credential scope: DAY/REGION/SERVICE/aws4_request.
func (v *SigV4) Scope() string {
	return v.Day + "/" + v.Region + "/" + v.Service + "/aws4_request"
}

// ParseSigV4 reads the signature of r: from its Authorization header, or
// from the query string of a presigned URL. ErrSigMissing: neither.
func ParseSigV4(r *http.Request) (*SigV4, error) {
	q := r.URL.Query()
	auth := r.Header.Get("Authorization")
	switch {
	case auth != "" && q.Has("X-Amz-Signature"):
		return nil, fmt.Errorf("%w: both an Authorization header and a presigned query string", ErrSigMalformed)
	case auth != "":
		return parseAuthHeader(r, auth)
	case q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential"):
		return parsePresigned(r, q)
	case q.Has("Signature") || q.Has("AWSAccessKeyId"):
		return nil, fmt.Errorf("%w: signature version 2; sign with version 4 (AWS4-HMAC-SHA256)", ErrSigUnsupported)
	}
	return nil, ErrSigMissing
}

func parseAuthHeader(r *http.Request, auth string) (*SigV4, error) {
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != sigAlgorithm {
		if alg == "AWS" {
			return nil, fmt.Errorf("%w: signature version 2; sign with version 4 (AWS4-HMAC-SHA256)", ErrSigUnsupported)
		}
		return nil, fmt.Errorf("%w: authorization scheme %q; sign with AWS4-HMAC-SHA256", ErrSigUnsupported, alg)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return nil, fmt.Errorf("%w: Authorization field %q has no value", ErrSigMalformed, f)
		}
		fields[k] = val
	}
	v := &SigV4{Payload: r.Header.Get("X-Amz-Content-Sha256")}
	if err := v.credential(fields["Credential"]); err != nil {
		return nil, err
	}
	if err := v.signedHeaders(fields["SignedHeaders"]); err != nil {
		return nil, err
	}
	if err := v.signature(fields["Signature"]); err != nil {
		return nil, err
	}
	date := r.Header.Get("X-Amz-Date")
	if date == "" {
		date = r.Header.Get("Date")
		if t, err := http.ParseTime(date); err == nil {
			date = t.UTC().Format(amzDate)
		}
	}
	if err := v.date(date); err != nil {
		return nil, err
	}
	if v.Payload == "" {
		// S3 requires the header; other services sign the body's hash.
		return nil, fmt.Errorf("%w: no x-amz-content-sha256 header", ErrSigMalformed)
	}
	return v, nil
}

func parsePresigned(r *http.Request, q url.Values) (*SigV4, error) {
	if alg := q.Get("X-Amz-Algorithm"); alg != sigAlgorithm {
		return nil, fmt.Errorf("%w: X-Amz-Algorithm %q; sign with AWS4-HMAC-SHA256", ErrSigUnsupported, alg)
	}
	v := &SigV4{Presigned: true, Payload: UnsignedPayload}
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		v.Payload = h
	}
	if err := v.credential(q.Get("X-Amz-Credential")); err != nil {
		return nil, err
	}
	if err := v.signedHeaders(q.Get("X-Amz-SignedHeaders")); err != nil {
		return nil, err
	}
	if err := v.signature(q.Get("X-Amz-Signature")); err != nil {
		return nil, err
	}
	if err := v.date(q.Get("X-Amz-Date")); err != nil {
		return nil, err
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 0 {
		return nil, fmt.Errorf("%w: X-Amz-Expires %q is not a number of seconds", ErrSigMalformed, q.Get("X-Amz-Expires"))
	}
	if v.Expires = time.Duration(secs) * time.Second; v.Expires > MaxPresignExpiry {
		return nil, fmt.Errorf("%w: X-Amz-Expires %d is longer than 7 days (604800 s)", ErrSigMalformed, secs)
	}
	return v, nil
}

func (v *SigV4) credential(c string) error {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return fmt.Errorf("%w: credential %q: want ACCESSKEY/YYYYMMDD/REGION/SERVICE/aws4_request", ErrSigMalformed, c)
	}
	if _, err := time.Parse("20060102", parts[1]); err != nil {
		return fmt.Errorf("%w: credential date %q: want YYYYMMDD", ErrSigMalformed, parts[1])
	}
	v.AccessKey, v.Day, v.Region, v.Service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

func (v *SigV4) signedHeaders(s string) error {
	if s == "" {
		return fmt.Errorf("%w: no signed headers (host must be signed)", ErrSigMalformed)
	}
	v.Signed = strings.Split(s, ";")
	if !slices.IsSorted(v.Signed) || !slices.Contains(v.Signed, "host") {
		return fmt.Errorf("%w: signed headers %q: want lower-case names in order, host among them", ErrSigMalformed, s)
	}
	for _, h := range v.Signed {
		if h == "" || h != strings.ToLower(h) {
			return fmt.Errorf("%w: signed header %q: want a lower-case name", ErrSigMalformed, h)
		}
	}
	return nil
}

func (v *SigV4) signature(s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return fmt.Errorf("%w: signature %q is not 64 hex digits", ErrSigMalformed, s)
	}
	v.Signature = b
	return nil
}

func (v *SigV4) date(s string) error {
	t, err := time.Parse(amzDate, s)
	if err != nil {
		return fmt.Errorf("%w: X-Amz-Date %q: want YYYYMMDDTHHMMSSZ", ErrSigMalformed, s)
	}
	if t.Format("20060102") != v.Day {
		return fmt.Errorf("%w: X-Amz-Date %s is not on the credential's day %s", ErrSigMalformed, s, v.Day)
	}
	v.Date = t
	return nil
}

// SigningKey derives the key signatures are made with from the secret.
func (v *SigV4) SigningKey(secret string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), v.Day)
	k = hmacSHA256(k, v.Region)
	k = hmacSHA256(k, v.Service)
	return hmacSHA256(k, "aws4_request")
}

// Verify checks v, parsed from r, with the key from SigningKey at time
// now: the signature over r's canonical form, its date (within
// MaxClockSkew of now) or a presigned URL's expiry. It does not read the
// body: a hex Payload must still be compared with the body's hash, and a
// streaming body checked chunk by chunk (ChunkedReader).
func (v *SigV4) Verify(r *http.Request, key []byte, now time.Time) error {
	if v.Presigned {
		if now.Before(v.Date.Add(-MaxClockSkew)) {
			return fmt.Errorf("%w: the presigned URL is dated %s, in the future", ErrSigExpired, v.Date.Format(time.RFC3339))
		}
		if now.After(v.Date.Add(v.Expires)) {
			return fmt.Errorf("%w: the presigned URL expired at %s", ErrSigExpired, v.Date.Add(v.Expires).Format(time.RFC3339))
		}
	} else if d := now.Sub(v.Date); d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("%w: the request is dated %s, more than 15 minutes from this router's clock (%s): check the client's clock",
			ErrSigExpired, v.Date.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	want := hmacSHA256(key, v.stringToSign(v.canonicalRequest(r)))
	if !hmac.Equal(want, v.Signature) {
		return fmt.Errorf("%w: check the secret key and the signing method", ErrSigMismatch)
	}
	return nil
}

func (v *SigV4) stringToSign(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return sigAlgorithm + "\n" + v.Date.Format(amzDate) + "\n" + v.Scope() + "\n" + hex.EncodeToString(sum[:])
}

// canonicalRequest is r in the form the signature covers.
func (v *SigV4) canonicalRequest(r *http.Request) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uriEncode(r.URL.Path, false))
	b.WriteByte('\n')
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		if !(v.Presigned && k == "X-Amz-Signature") {
			keys = append(keys, k)
		}
	}
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		for _, val := range q[k] {
			pairs = append(pairs, uriEncode(k, true)+"="+uriEncode(val, true))
		}
	}
	slices.Sort(pairs)
	b.WriteString(strings.Join(pairs, "&"))
	b.WriteByte('\n')
	for _, h := range v.Signed {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(v.Signed, ";"))
	b.WriteByte('\n')
	b.WriteString(v.Payload)
	return b.String()
}

// headerValue is the canonical value of header h of r: its values
// trimmed, inner runs of spaces made one, joined by commas. Go moves Host,
// Content-Length and Transfer-Encoding out of the header map.
func headerValue(r *http.Request, h string) string {
	var vals []string
	switch h {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		if r.ContentLength >= 0 && r.Header.Get("Content-Length") == "" {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		} else {
			vals = r.Header.Values(h)
		}
	case "transfer-encoding":
		vals = r.TransferEncoding
	default:
		vals = r.Header.Values(h)
	}
	out := make([]string, len(vals))
	for i, val := range vals {
		out[i] = strings.Join(strings.Fields(val), " ")
	}
	return strings.Join(out, ",")
}

// uriEncode escapes s as SigV4 asks: every byte but A-Z a-z 0-9 - _ . ~
// as %XX, and "/" too when slash is set (a query's keys and values; a
// path keeps its slashes).
func uriEncode(s string, slash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !slash {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// emptySum is the SHA-256 of nothing; emptySHA256 its hex.
var (
	emptySum    = sha256.Sum256(nil)
	emptySHA256 = hex.EncodeToString(emptySum[:])
)

// chunkSigner signs the chunks of a streaming body, each over the one
// before it, starting from the request's signature.
type chunkSigner struct {
	key   []byte
	date  string
	scope string
	prev  []byte
}

// chunkSigner returns what checks the chunks of v's streaming body.
func (v *SigV4) chunkSigner(key []byte) *chunkSigner {
	return &chunkSigner{key: key, date: v.Date.Format(amzDate), scope: v.Scope(), prev: v.Signature}
}

// next checks sig, the signature of the next chunk, whose data has the
// SHA-256 sum.
func (c *chunkSigner) next(sum, sig []byte) bool {
	want := hmacSHA256(c.key, "AWS4-HMAC-SHA256-PAYLOAD\n"+c.date+"\n"+c.scope+"\n"+hex.EncodeToString(c.prev)+"\n"+emptySHA256+"\n"+hex.EncodeToString(sum))
	c.prev = want
	return hmac.Equal(want, sig)
}

func (c *chunkSigner) trailer(trailer []byte, sig []byte) bool {
	sum := sha256.Sum256(trailer)
	want := hmacSHA256(c.key, "AWS4-HMAC-SHA256-TRAILER\n"+c.date+"\n"+c.scope+"\n"+hex.EncodeToString(c.prev)+"\n"+hex.EncodeToString(sum[:]))
	return hmac.Equal(want, sig)
}

// trimCRLF cuts a line's ending.
func trimCRLF(b []byte) []byte {
	return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
}

// SignV4 signs r for S3 with the access key id and its secret, in the
// Authorization header, leaving the body unsigned (UNSIGNED-PAYLOAD: over
// TLS, which protects it): what a benchmark or a tool needs to reach the
// S3 API without an SDK.
func SignV4(r *http.Request, id, secret, region string, now time.Time) {
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	now = now.UTC()
	r.Header.Set("X-Amz-Date", now.Format(amzDate))
	r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	v := &SigV4{AccessKey: id, Date: now, Day: now.Format("20060102"), Region: region, Service: "s3",
		Signed: []string{"host", "x-amz-content-sha256", "x-amz-date"}, Payload: UnsignedPayload}
	sig := hmacSHA256(v.SigningKey(secret), v.stringToSign(v.canonicalRequest(r)))
	r.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		sigAlgorithm, id, v.Scope(), strings.Join(v.Signed, ";"), hex.EncodeToString(sig)))
}
