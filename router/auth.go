package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"shoal/meta"
	"shoal/secure"
)

// Authentication. Every request but /healthz and /readyz carries a bearer token; its
// SHA-256 names a user in the meta group. A router keeps the users it
// found for AuthTTL, so a busy client costs one lookup a second, and a
// removed user's or a rotated token stops working within AuthTTL on every
// router (at once on the router that made the change). Unknown tokens are
// looked up a few at a time and each source's failures are rate-limited,
// so a flood of bad tokens cannot queue ahead of the users the router
// already knows.

// ActAsHeader carries the user a mount host acts for: "UID:GID" or
// "UID:GID:G1,G2,...".
const ActAsHeader = "X-Shoal-Act-As"

const (
	// authLookups bounds the lookups of unknown tokens in flight.
	authLookups = 8
	// authQueue is how long a request with an unknown token waits for a
	// lookup slot before it is refused with 429.
	authQueue = 250 * time.Millisecond
	// authStale is how long a known user stays accepted while the meta
	// group cannot be asked (a failover): longer than any election.
	authStale = 30 * time.Second
	// authRefreshWait bounds the lookup that refreshes a known user's
	// entry: a healthy meta group answers in milliseconds, and past it
	// the user is served as known (within authStale).
	authRefreshWait = time.Second
	// badTokens bounds the memory of tokens recently found to name
	// nobody, refused again without a lookup for the authenticator's ttl:
	// a token made on another router works here within that, as a
	// removed one stops.
	badTokens = 4096
	// failureRate and failureBurst bound the failed authentications a
	// source may cause per second before it gets 429 without a lookup.
	failureRate  = 20
	failureBurst = 40
)

// caller is who a request acts for.
type caller struct {
	user meta.User  // the token's user
	cred *meta.Cred // the identity checked in the namespace (nil: root, insecure)
	host bool       // acting for a mount host's user
	// anonymous: an unsigned S3 request reading a public-read bucket,
	// acting as its owner's uid and group (see s3Server.anonymous).
	anonymous bool
}

type callerKey struct{}

// callerOf returns the request's caller; nil when the router runs with
// --insecure (or for the router's own requests).
func callerOf(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// credOf is the identity ops and reads of ctx act for.
func credOf(ctx context.Context) *meta.Cred {
	if c := callerOf(ctx); c != nil {
		return c.cred
	}
	return nil
}

// authenticator finds the user of a token, with a cache.
type authenticator struct {
	lookup func(ctx context.Context, hash [32]byte) (*meta.User, error)
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	known   map[[32]byte]*knownUser
	bad     map[[32]byte]time.Time
	sources map[string]*bucket
	slots   chan struct{}
}

type knownUser struct {
	user       meta.User
	fetched    time.Time
	refreshing bool // a request is looking the token up again
}

func newAuthenticator(lookup func(context.Context, [32]byte) (*meta.User, error), ttl time.Duration) *authenticator {
	return &authenticator{
		lookup: lookup, ttl: ttl, now: time.Now,
		known: map[[32]byte]*knownUser{}, bad: map[[32]byte]time.Time{}, sources: map[string]*bucket{},
		slots: make(chan struct{}, authLookups),
	}
}

// authenticate returns the user r's token belongs to.
func (a *authenticator) authenticate(r *http.Request) (meta.User, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return meta.User{}, fmt.Errorf("%w: no token: send Authorization: Bearer TOKEN (an admin makes users with 'shoal user add')", ErrUnauthenticated)
	}
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || !secure.WellFormedToken(tok) {
		return meta.User{}, fmt.Errorf("%w: %w: the Authorization header holds no Shoal token", ErrUnauthenticated, errBadToken)
	}
	return a.byHash(r, secure.HashToken(tok))
}

// byHash returns the user whose token, or access key, hashes to hash
// (meta.User.Holds), for request r: from the cache while fresh, else
// from the meta group, with the same limits on unknown hashes whichever
// kind they are.
func (a *authenticator) byHash(r *http.Request, hash [32]byte) (meta.User, error) {
	now := a.now()
	a.mu.Lock()
	k := a.known[hash]
	if k != nil && (now.Sub(k.fetched) < a.ttl || k.refreshing && now.Sub(k.fetched) < authStale) {
		// Fresh, or another request is asking again right now: a busy
		// user costs one lookup per ttl, not one per request.
		a.mu.Unlock()
		return k.user, nil
	}
	if k != nil {
		k.refreshing = true
		defer func() {
			a.mu.Lock()
			k.refreshing = false
			a.mu.Unlock()
		}()
	}
	src := sourceOf(r)
	if k == nil {
		if until, ok := a.bad[hash]; ok && now.Before(until) {
			a.mu.Unlock()
			return meta.User{}, a.failed(src, now, fmt.Errorf("%w: %w", ErrUnauthenticated, errBadToken))
		}
		if b := a.sources[src]; b != nil && !b.allow(now, false) {
			a.mu.Unlock()
			return meta.User{}, fmt.Errorf("%w: too many failed authentications from %s", ErrTooManyRequests, src)
		}
	}
	a.mu.Unlock()
	if k == nil {
		// Unknown tokens queue for a few lookup slots; known users do not
		// wait behind them.
		t := time.NewTimer(authQueue)
		select {
		case a.slots <- struct{}{}:
			t.Stop()
			defer func() { <-a.slots }()
		case <-t.C:
			return meta.User{}, fmt.Errorf("%w: too many authentications in flight", ErrTooManyRequests)
		case <-r.Context().Done():
			t.Stop()
			return meta.User{}, r.Context().Err()
		}
	}
	ctx := r.Context()
	if k != nil {
		// A user known a moment ago is served from the cache if the meta
		// group cannot answer: do not make the request wait the whole
		// request timeout for that first.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, authRefreshWait)
		defer cancel()
	}
	u, err := a.lookup(ctx, hash)
	now = a.now()
	switch {
	case err != nil && k != nil && now.Sub(k.fetched) < authStale:
		return k.user, nil // the meta group is electing: keep serving a user known a moment ago
	case err != nil:
		return meta.User{}, fmt.Errorf("look up the token's user: %w", err)
	case u == nil || !u.Holds(hash):
		a.mu.Lock()
		delete(a.known, hash)
		if len(a.bad) >= badTokens {
			clear(a.bad)
		}
		a.bad[hash] = now.Add(a.ttl)
		a.mu.Unlock()
		return meta.User{}, a.failed(src, now, fmt.Errorf("%w: %w", ErrUnauthenticated, errBadToken))
	}
	a.mu.Lock()
	a.known[hash] = &knownUser{user: *u, fetched: now}
	a.mu.Unlock()
	return *u, nil
}

// errBadToken says a token names nobody, whatever the reason: never
// issued, rotated, its user removed. The answer does not tell them apart.
var errBadToken = errors.New("the token is not valid: it is malformed, was replaced, or its user was removed")

// failed counts a failed authentication against its source.
func (a *authenticator) failed(src string, now time.Time, err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.sources[src]
	if b == nil {
		if len(a.sources) >= badTokens {
			clear(a.sources)
		}
		b = &bucket{tokens: failureBurst, at: now}
		a.sources[src] = b
	}
	b.allow(now, true)
	return err
}

// forget drops the cached users named name: their token just changed.
func (a *authenticator) forget(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, k := range a.known {
		if k.user.Name == name {
			delete(a.known, h)
		}
	}
}

// issued says that hash is now a user's token: if it was tried before (a
// client that started before its user was made), it works at once.
func (a *authenticator) issued(hash [32]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.bad, hash)
}

// bucket is a token bucket of failures.
type bucket struct {
	tokens float64
	at     time.Time
}

// allow refills the bucket and, when take, spends one token; it reports
// whether one was left.
func (b *bucket) allow(now time.Time, take bool) bool {
	b.tokens = min(failureBurst, b.tokens+now.Sub(b.at).Seconds()*failureRate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	if take {
		b.tokens--
	}
	return true
}

// sourceOf is the address a request came from, without its port.
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// credFor is the identity a user's own requests act for.
func credFor(u meta.User) *meta.Cred {
	return &meta.Cred{Uid: u.Uid, Gid: u.Gid, Groups: u.Groups, Root: u.Admin}
}

// actAs reads the ActAsHeader of r, if any, and checks that the user may
// act for others: an admin, or a user with the mount capability whose
// connection presented a mount host's certificate (a trusted host, as an
// NFS server trusts the uids of the hosts it exports to). Root on such a
// host is root in the cluster.
func actAs(r *http.Request, u meta.User) (*meta.Cred, error) {
	v := r.Header.Get(ActAsHeader)
	if v == "" {
		return nil, nil
	}
	if !u.Admin && !(u.Mount && fromMountHost(r)) {
		why := "the user has no mount capability"
		if u.Mount {
			why = "the connection presented no mount host certificate (role client) from the cluster's CA"
		}
		return nil, fmt.Errorf("%w: %s may not act for other users: %s", ErrDenied, u.Name, why)
	}
	c, err := parseActAs(v)
	if err != nil {
		return nil, err
	}
	c.Host, c.Root = true, c.Uid == 0
	return c, nil
}

// fromMountHost reports whether r came with a verified certificate of the
// client role.
func fromMountHost(r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return false
	}
	role, ok := secure.RoleOf(r.TLS.PeerCertificates[0])
	return ok && role == secure.RoleClient
}

// maxGroups bounds the supplementary groups of one identity (NGROUPS_MAX
// is 65536; no real user has more than a few hundred).
const maxGroups = 1024

// parseActAs reads "UID:GID" or "UID:GID:G1,G2,...".
func parseActAs(v string) (*meta.Cred, error) {
	bad := fmt.Errorf("%w: %s %q: want UID:GID or UID:GID:G1,G2,...", ErrBadRequest, ActAsHeader, v)
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, bad
	}
	id := func(s string) (uint32, bool) {
		n, err := strconv.ParseUint(s, 10, 32)
		return uint32(n), err == nil
	}
	c := &meta.Cred{}
	var ok1, ok2 bool
	c.Uid, ok1 = id(parts[0])
	c.Gid, ok2 = id(parts[1])
	if !ok1 || !ok2 {
		return nil, bad
	}
	if len(parts) == 3 {
		var err error
		if c.Groups, err = parseIDs(parts[2]); err != nil {
			return nil, bad
		}
	}
	return c, nil
}
