package secure

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// ErrBadBody: a signed body does not match its signature, hash or
// checksum, or its aws-chunked framing is broken. The read that finds it
// fails, so nothing built from the body may be kept.
var ErrBadBody = errors.New("body does not match what was signed")

// maxChunkLine bounds a chunk header or trailer line of an aws-chunked body.
const maxChunkLine = 4096

// crc64NVME is the CRC-64/NVME table S3's CRC64NVME checksum uses.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// checksumHash returns a new hash for the S3 checksum header name
// (x-amz-checksum-crc32 and the like), or nil for a name not known.
func checksumHash(name string) hash.Hash {
	switch strings.ToLower(name) {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-crc64nvme":
		return crc64.New(crc64NVME)
	case "x-amz-checksum-sha1":
		return sha1.New()
	case "x-amz-checksum-sha256":
		return sha256.New()
	}
	return nil
}

// Body returns r's content as v signed it, checked as it is read: a body
// whose declared SHA-256 is a hash is compared with it at the end, an
// aws-chunked body is decoded with each chunk's signature checked, and an
// x-amz-checksum-* header or trailer is compared with the content. The
// read that finds a mismatch fails with ErrBadBody. size is the content's
// length (x-amz-decoded-content-length for a chunked body), -1 if unknown.
//
// A nil key decodes chunks without checking their signatures, for a
// server that checks none (a cluster run without security).
func (v *SigV4) Body(r *http.Request, key []byte) (body io.Reader, size int64, err error) {
	if key == nil {
		return readBody(r, v.Payload, nil)
	}
	return readBody(r, v.Payload, func() *chunkSigner { return v.chunkSigner(key) })
}

// UnsignedBody is Body for a request that carries no signature (an
// anonymous request to a public bucket): only hashes and checksums it
// declares are checked, and a signed streaming body is refused.
func UnsignedBody(r *http.Request) (io.Reader, int64, error) {
	p := r.Header.Get("X-Amz-Content-Sha256")
	if p == StreamingPayload || p == StreamingPayloadTrail {
		return nil, 0, fmt.Errorf("%w: a signed streaming body without a signature", ErrSigMalformed)
	}
	return readBody(r, cmpOr(p, UnsignedPayload), nil)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func readBody(r *http.Request, payload string, signer func() *chunkSigner) (io.Reader, int64, error) {
	var check []bodyCheck
	if name, sum := headerChecksum(r); name != "" {
		h := checksumHash(name)
		if h == nil {
			return nil, 0, fmt.Errorf("%w: checksum %s is not supported (use crc32, crc32c, crc64nvme, sha1 or sha256)", ErrSigUnsupported, name)
		}
		check = append(check, bodyCheck{name: name, h: h, want: sum, b64: true})
	}
	switch payload {
	case UnsignedPayload:
		return newCheckedReader(r.Body, check), r.ContentLength, nil
	case StreamingPayload, StreamingPayloadTrail, StreamingUnsignedTrail:
		if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.Contains(enc, "aws-chunked") {
			return nil, 0, fmt.Errorf("%w: a streaming payload with Content-Encoding %q (want aws-chunked)", ErrSigMalformed, enc)
		}
		size := int64(-1)
		if d := r.Header.Get("X-Amz-Decoded-Content-Length"); d != "" {
			n, err := strconv.ParseInt(d, 10, 64)
			if err != nil || n < 0 {
				return nil, 0, fmt.Errorf("%w: x-amz-decoded-content-length %q is not a size", ErrSigMalformed, d)
			}
			size = n
		}
		c := &chunkedReader{br: bufio.NewReaderSize(r.Body, 64<<10), size: size, left: -1, checks: check}
		if payload != StreamingUnsignedTrail && signer != nil {
			c.signer = signer()
		}
		if t := r.Header.Get("X-Amz-Trailer"); t != "" {
			h := checksumHash(t)
			if h == nil {
				return nil, 0, fmt.Errorf("%w: trailer %s is not supported (use an x-amz-checksum-* of crc32, crc32c, crc64nvme, sha1 or sha256)", ErrSigUnsupported, t)
			}
			c.trailer = &bodyCheck{name: strings.ToLower(t), h: h, b64: true}
		} else if payload != StreamingPayload {
			return nil, 0, fmt.Errorf("%w: %s without an x-amz-trailer header", ErrSigMalformed, payload)
		}
		return c, size, nil
	}
	want, err := hex.DecodeString(payload)
	if err != nil || len(want) != sha256.Size {
		return nil, 0, fmt.Errorf("%w: x-amz-content-sha256 %q is neither a hex SHA-256 nor a known payload kind", ErrSigMalformed, payload)
	}
	check = append(check, bodyCheck{name: "x-amz-content-sha256", h: sha256.New(), want: payload})
	return newCheckedReader(r.Body, check), r.ContentLength, nil
}

// headerChecksum returns the x-amz-checksum-* header of r, if any.
func headerChecksum(r *http.Request) (name, value string) {
	for k, v := range r.Header {
		if l := strings.ToLower(k); strings.HasPrefix(l, "x-amz-checksum-") && l != "x-amz-checksum-type" && l != "x-amz-checksum-algorithm" && len(v) > 0 {
			return l, v[0]
		}
	}
	return "", ""
}

// bodyCheck is a hash of a body compared at its end with what the request
// declared (hex, or base64 for the x-amz-checksum-* values).
type bodyCheck struct {
	name string
	h    hash.Hash
	want string
	b64  bool
}

func (c *bodyCheck) ok() bool {
	sum := c.h.Sum(nil)
	if c.b64 {
		return base64.StdEncoding.EncodeToString(sum) == c.want
	}
	return hex.EncodeToString(sum) == strings.ToLower(c.want)
}

type checkedReader struct {
	r      io.Reader
	checks []bodyCheck
	err    error
}

func newCheckedReader(r io.Reader, checks []bodyCheck) io.Reader {
	if len(checks) == 0 {
		return r
	}
	return &checkedReader{r: r, checks: checks}
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	for i := range c.checks {
		c.checks[i].h.Write(p[:n])
	}
	if err == io.EOF {
		for i := range c.checks {
			if !c.checks[i].ok() {
				c.err = fmt.Errorf("%w: the content does not match its %s", ErrBadBody, c.checks[i].name)
				return n, c.err
			}
		}
	}
	return n, err
}

// chunkedReader decodes an aws-chunked body:
//
//	HEXSIZE[;chunk-signature=SIG]\r\n DATA \r\n ... 0[;chunk-signature=SIG]\r\n [TRAILERS\r\n] \r\n
type chunkedReader struct {
	br      *bufio.Reader
	signer  *chunkSigner // nil: chunks are not signed
	trailer *bodyCheck
	checks  []bodyCheck
	size    int64 // declared decoded length, -1 if none
	read    int64
	left    int64  // bytes of the current chunk still to read; -1 before a header
	sig     []byte // the current chunk's signature
	chunk   hash.Hash
	done    bool
	err     error
}

func (c *chunkedReader) fail(format string, args ...any) error {
	c.err = fmt.Errorf("%w: aws-chunked body: %s", ErrBadBody, fmt.Sprintf(format, args...))
	return c.err
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	for c.left <= 0 {
		if c.left == 0 {
			if err := c.endChunk(); err != nil {
				return 0, err
			}
		}
		last, err := c.header()
		if err != nil {
			return 0, err
		}
		if last {
			return 0, c.finish()
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	c.read += int64(n)
	if c.chunk != nil {
		c.chunk.Write(p[:n])
	}
	for i := range c.checks {
		c.checks[i].h.Write(p[:n])
	}
	if c.trailer != nil {
		c.trailer.h.Write(p[:n])
	}
	if c.size >= 0 && c.read > c.size {
		return 0, c.fail("more content than x-amz-decoded-content-length (%d)", c.size)
	}
	if err == io.EOF {
		return n, c.fail("the body ends inside a chunk")
	}
	return n, err
}

// header reads a chunk's header line; last: the final, empty chunk.
func (c *chunkedReader) header() (last bool, err error) {
	line, err := c.line()
	if err != nil {
		return false, err
	}
	sizeHex, ext, _ := strings.Cut(string(line), ";")
	n, perr := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
	if perr != nil || n < 0 {
		return false, c.fail("chunk size %q is not hex", sizeHex)
	}
	if c.signer != nil {
		v, ok := strings.CutPrefix(strings.TrimSpace(ext), "chunk-signature=")
		sig, herr := hex.DecodeString(v)
		if !ok || herr != nil || len(sig) != sha256.Size {
			return false, c.fail("chunk without a chunk-signature")
		}
		c.sig = sig
		c.chunk = sha256.New()
	}
	c.left = n
	if n == 0 {
		// The final chunk is signed over no data.
		if c.signer != nil && !c.signer.next(emptySum[:], c.sig) {
			return false, c.fail("the final chunk's signature does not match")
		}
		return true, nil
	}
	return false, nil
}

// endChunk checks a chunk's signature and reads the CRLF after its data.
func (c *chunkedReader) endChunk() error {
	if c.chunk != nil {
		if !c.signer.next(c.chunk.Sum(nil), c.sig) {
			return c.fail("a chunk's signature does not match: check the secret key")
		}
	}
	line, err := c.line()
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return c.fail("no CRLF after a chunk's data")
	}
	c.left = -1
	return nil
}

// finish reads the trailers and the last CRLF, and checks the content.
func (c *chunkedReader) finish() error {
	var trailers bytes.Buffer
	got := map[string]string{}
	var trailerSig []byte
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			return c.fail("trailer %q is not NAME:VALUE", line)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if k == "x-amz-trailer-signature" {
			if trailerSig, err = hex.DecodeString(v); err != nil {
				return c.fail("x-amz-trailer-signature is not hex")
			}
			continue
		}
		got[k] = v
		trailers.WriteString(k + ":" + v + "\n")
	}
	if c.trailer != nil {
		v, ok := got[c.trailer.name]
		if !ok {
			return c.fail("no %s trailer, which x-amz-trailer announced", c.trailer.name)
		}
		c.trailer.want = v
		if !c.trailer.ok() {
			return c.fail("the content does not match its %s", c.trailer.name)
		}
		if c.signer != nil && !c.signer.trailer(trailers.Bytes(), trailerSig) {
			return c.fail("the trailer's signature does not match")
		}
	}
	for i := range c.checks {
		if !c.checks[i].ok() {
			return c.fail("the content does not match its %s", c.checks[i].name)
		}
	}
	if c.size >= 0 && c.read != c.size {
		return c.fail("%d bytes of content, x-amz-decoded-content-length said %d", c.read, c.size)
	}
	c.done = true
	return io.EOF
}

// line reads one CRLF-ended line, without its ending.
func (c *chunkedReader) line() ([]byte, error) {
	var line []byte
	for {
		part, err := c.br.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxChunkLine {
			return nil, c.fail("a line longer than %d bytes", maxChunkLine)
		}
		switch {
		case err == nil:
			return trimCRLF(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			return nil, c.fail("the body ends before its final chunk")
		default:
			c.err = err
			return nil, err
		}
	}
}
