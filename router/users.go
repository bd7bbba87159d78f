package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"shoal/api"
	"shoal/gossip"
	"shoal/meta"
	"shoal/secure"
	"shoal/wire"
)

// The users API: /v1/whoami, /v1/users (admins), /v1/users/NAME/token
// (admins, and users for their own), /v1/users/NAME/files (the same), and
// /v1/keyring (admins). Users live in the meta group with the namespace:
// a router only ever sees a token long enough to hash it, and the cluster
// keeps nothing else of it.

// userOf is a user as the API shows it, without its token.
func userOf(u meta.User) api.User {
	return api.User{Name: u.Name, Uid: u.Uid, Gid: u.Gid, Groups: u.Groups, Admin: u.Admin, Mount: u.Mount,
		Created: utc(u.Created), Home: "/home/" + u.Name}
}

func (s *Server) routeUsers() {
	s.mux.HandleFunc("GET /v1/whoami", s.whoami)
	s.mux.HandleFunc("GET /v1/users", s.listUsers)
	s.mux.HandleFunc("POST /v1/users/{name}", s.addUser)
	s.mux.HandleFunc("DELETE /v1/users/{name}", s.removeUser)
	s.mux.HandleFunc("POST /v1/users/{name}/token", s.rotateToken)
	s.mux.HandleFunc("GET /v1/users/{name}/files", s.ownedFiles)
	s.mux.HandleFunc("GET /v1/users/{name}/keys", s.listKeys)
	s.mux.HandleFunc("POST /v1/users/{name}/keys", s.addKey)
	s.mux.HandleFunc("DELETE /v1/users/{name}/keys/{id}", s.removeKey)
	s.mux.HandleFunc("GET /v1/keyring", s.keyring)
	s.mux.HandleFunc("POST /v1/keyring", s.keyring)
}

// authenticate finds the caller of r and returns r carrying it, or the
// reason to refuse r (logged once per address, reason and hour). With
// Config.Insecure, r goes on as the cluster's root.
func (s *Server) authenticate(r *http.Request) (*http.Request, error) {
	if s.auth == nil {
		return r, nil
	}
	u, err := s.auth.authenticate(r)
	c := &caller{user: u, cred: credFor(u)}
	if err == nil {
		var act *meta.Cred
		if act, err = actAs(r, u); act != nil {
			c.cred, c.host = act, true
		}
	}
	if err != nil {
		status, code := statusOf(err)
		if status != http.StatusServiceUnavailable && s.refusals.Allow(sourceOf(r)+" "+string(code), time.Now()) {
			s.cfg.Logger.Warn("refused a request; further refusals of this address for this reason are not logged for an hour",
				"remote", r.RemoteAddr, "status", status, "code", code, "method", r.Method, "path", r.URL.Path, "err", err)
		}
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), nil
}

// userByToken asks the meta group for the user whose token hashes to h.
func (s *Server) userByToken(ctx context.Context, h [32]byte) (*meta.User, error) {
	rr, err := s.metaRead(ctx, &wire.Read{Kind: wire.ReadUser, Token: h})
	if err != nil {
		return nil, err
	}
	return rr.User, nil
}

// metaRead sends a read to the meta group's primary (m's group is filled
// in), in a batch with others when it may be (readBatcher). An error with
// an answer is the namespace's (Code): not found, or permission denied.
func (s *Server) metaRead(ctx context.Context, m *wire.Read) (*wire.ReadResp, error) {
	var rr *wire.ReadResp
	var err error
	if wire.Batchable(m.Kind) {
		rr, err = s.reads.do(ctx, m)
	} else {
		rr, err = s.readAlone(ctx, m)
	}
	if err != nil {
		return nil, err
	}
	if err := rr.Code.Err(); err != nil {
		return rr, err
	}
	return rr, nil
}

// readAlone sends m to the meta group's primary in a call of its own.
func (s *Server) readAlone(ctx context.Context, m *wire.Read) (*wire.ReadResp, error) {
	return wire.As[*wire.ReadResp](s.be.metaCall(ctx, func(g string) wire.Message {
		c := *m
		c.Group = g
		return &c
	}, true))
}

// readBatch sends reads to the meta group's primary in one call.
func (s *Server) readBatch(ctx context.Context, reads []*wire.Read) ([]*wire.ReadResp, []error, error) {
	rs := make([]wire.Read, len(reads))
	for i, m := range reads {
		rs[i] = *m
	}
	resp, err := wire.As[*wire.ReadBatchResp](s.be.metaCall(ctx, func(g string) wire.Message {
		return &wire.ReadBatch{Group: g, Reads: rs}
	}, true))
	if err != nil {
		return nil, nil, err
	}
	as := make([]*wire.ReadResp, len(resp.Resps))
	for i := range resp.Resps {
		as[i] = &resp.Resps[i]
	}
	return as, wire.BatchErrors(resp.Errs), nil
}

// admin refuses a request whose caller is not an admin; with
// Config.Insecure every caller is.
func admin(r *http.Request) error {
	c := callerOf(r.Context())
	if c == nil || c.user.Admin && !c.host {
		return nil
	}
	return fmt.Errorf("%w: %s %s is for admins only", ErrDenied, r.Method, r.URL.Path)
}

// selfOrAdmin refuses a request about user name from anyone but that user
// or an admin.
func selfOrAdmin(r *http.Request, name string) error {
	if c := callerOf(r.Context()); c != nil && !c.host && c.user.Name == name {
		return nil
	}
	return admin(r)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	if c == nil {
		writeJSON(w, http.StatusOK, api.User{Name: "root (--insecure)", Admin: true})
		return
	}
	writeJSON(w, http.StatusOK, userOf(c.user))
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	if err := admin(r); err != nil {
		writeError(w, err)
		return
	}
	rr, err := s.metaRead(r.Context(), &wire.Read{Kind: wire.ReadUsers})
	if err != nil {
		writeError(w, err)
		return
	}
	out := api.UserList{Users: []api.User{}}
	for _, u := range rr.Users {
		out.Users = append(out.Users, userOf(u))
	}
	writeJSON(w, http.StatusOK, out)
}

// parseIDs reads a comma-separated list of uids or gids.
func parseIDs(v string) ([]uint32, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxGroups {
		return nil, fmt.Errorf("%w: groups: at most %d", ErrBadRequest, maxGroups)
	}
	out := make([]uint32, 0, len(parts))
	for _, p := range parts {
		id, err := parseID("groups", strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	if err := admin(r); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	u := &meta.User{Name: r.PathValue("name"), AutoUid: q.Get("uid") == "", AutoGid: q.Get("gid") == ""}
	var err error
	if !u.AutoUid {
		u.Uid, err = parseID("uid", q.Get("uid"))
	}
	if err == nil && !u.AutoGid {
		u.Gid, err = parseID("gid", q.Get("gid"))
	}
	if err == nil {
		u.Groups, err = parseIDs(q.Get("groups"))
	}
	if err == nil {
		err = flags(q, map[string]*bool{"admin": &u.Admin, "mount": &u.Mount})
	}
	if err != nil {
		writeError(w, err)
		return
	}
	tok := secure.NewToken()
	u.TokenHash = secure.HashToken(tok)
	res, err := s.propose(r.Context(), meta.Op{Kind: meta.OpUserAdd, User: u})
	if err != nil {
		writeError(w, fmt.Errorf("add user %q: %w", u.Name, err))
		return
	}
	if s.auth != nil {
		s.auth.issued(u.TokenHash)
	}
	out := api.User{Name: u.Name, Token: tok}
	if res.User != nil {
		out = userOf(*res.User)
		out.Token = tok
	}
	s.cfg.Logger.Info("user added", "user", out.Name, "uid", out.Uid, "gid", out.Gid, "admin", out.Admin, "mount", out.Mount, "by", callerName(r))
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) removeUser(w http.ResponseWriter, r *http.Request) {
	if err := admin(r); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if _, err := s.propose(r.Context(), meta.Op{Kind: meta.OpUserRemove, User: &meta.User{Name: name}}); err != nil {
		writeError(w, fmt.Errorf("remove user %q: %w", name, err))
		return
	}
	if s.auth != nil {
		s.auth.forget(name)
	}
	s.cfg.Logger.Info("user removed", "user", name, "by", callerName(r))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := selfOrAdmin(r, name); err != nil {
		writeError(w, err)
		return
	}
	tok := secure.NewToken()
	// Checked above: the caller is the user or an admin. The namespace
	// lets only admins change users, so the change goes as the cluster's.
	ctx := context.WithValue(r.Context(), callerKey{}, (*caller)(nil))
	res, err := s.propose(ctx, meta.Op{Kind: meta.OpUserToken, User: &meta.User{Name: name, TokenHash: secure.HashToken(tok)}})
	if err != nil {
		writeError(w, fmt.Errorf("new token for %q: %w", name, err))
		return
	}
	if s.auth != nil {
		s.auth.forget(name)
		s.auth.issued(secure.HashToken(tok))
	}
	out := api.User{Name: name}
	if res.User != nil {
		out = userOf(*res.User)
	}
	out.Token = tok
	s.cfg.Logger.Info("token replaced", "user", name, "by", callerName(r))
	writeJSON(w, http.StatusOK, out)
}

// addKey makes an S3 access key for a user (the user itself or an
// admin may): a random ID and secret, the secret kept sealed with the
// cluster's data key, since checking a signature takes the secret itself.
// The answer is the only place the secret is ever shown.
func (s *Server) addKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := selfOrAdmin(r, name); err != nil {
		writeError(w, err)
		return
	}
	ur, err := s.metaRead(r.Context(), &wire.Read{Kind: wire.ReadUserNamed, Name: name})
	if err == nil && ur.User == nil {
		err = fmt.Errorf("user %q: %w", name, meta.ErrNotFound)
	}
	if err == nil && len(ur.User.Keys) >= meta.MaxAccessKeys {
		err = fmt.Errorf("%w: user %q has %d access keys, the most a user may have: remove one first ('shoal user key rm')", ErrBadRequest, name, len(ur.User.Keys))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	id, secret := secure.NewAccessKey()
	k := meta.AccessKey{ID: id, Secret: []byte(secret)}
	if s.cfg.Sealer != nil {
		k.Secret, k.SealKey = s.cfg.Sealer.SealInline([]byte(secret))
	}
	ctx := context.WithValue(r.Context(), callerKey{}, (*caller)(nil)) // checked above, as for tokens
	if _, err := s.propose(ctx, meta.Op{Kind: meta.OpUserKeyAdd, User: &meta.User{Name: name, Keys: []meta.AccessKey{k}}}); err != nil {
		writeError(w, fmt.Errorf("new access key for %q: %w", name, err))
		return
	}
	if s.auth != nil {
		s.auth.issued(meta.AccessKeyHash(id))
	}
	s.cfg.Logger.Info("access key added", "user", name, "access_key_id", id, "by", callerName(r))
	writeJSON(w, http.StatusCreated, api.AccessKey{User: name, ID: id, Secret: secret, Created: time.Now().UTC()})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := selfOrAdmin(r, name); err != nil {
		writeError(w, err)
		return
	}
	ur, err := s.metaRead(r.Context(), &wire.Read{Kind: wire.ReadUserNamed, Name: name})
	if err == nil && ur.User == nil {
		err = fmt.Errorf("user %q: %w", name, meta.ErrNotFound)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	out := api.AccessKeyList{User: name, Keys: []api.AccessKey{}}
	for _, k := range ur.User.Keys {
		out.Keys = append(out.Keys, api.AccessKey{User: name, ID: k.ID, Created: utc(k.Created)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) removeKey(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	if err := selfOrAdmin(r, name); err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithValue(r.Context(), callerKey{}, (*caller)(nil))
	if _, err := s.propose(ctx, meta.Op{Kind: meta.OpUserKeyRemove, User: &meta.User{Name: name, Keys: []meta.AccessKey{{ID: id}}}}); err != nil {
		writeError(w, fmt.Errorf("remove access key %s of %q: %w", id, name, err))
		return
	}
	if s.auth != nil {
		s.auth.forget(name)
	}
	s.cfg.Logger.Info("access key removed", "user", name, "access_key_id", id, "by", callerName(r))
	w.WriteHeader(http.StatusNoContent)
}

// maxOwnedPage bounds one page of the owned listing.
const maxOwnedPage = 1000

func (s *Server) ownedFiles(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := selfOrAdmin(r, name); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	after, limit := uint64(0), maxOwnedPage
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, fmt.Errorf("%w: after=%q: want an inode number", ErrBadRequest, v))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxOwnedPage {
			writeError(w, fmt.Errorf("%w: limit=%q: want 1 to %d", ErrBadRequest, v, maxOwnedPage))
			return
		}
	}
	ur, err := s.metaRead(r.Context(), &wire.Read{Kind: wire.ReadUserNamed, Name: name})
	if err == nil && ur.User == nil {
		err = fmt.Errorf("user %q: %w", name, meta.ErrNotFound)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	rr, err := s.metaRead(r.Context(), &wire.Read{Kind: wire.ReadOwned, Uid: ur.User.Uid, After: after, Limit: limit})
	if err != nil {
		writeError(w, err)
		return
	}
	out := api.OwnedPage{User: name, Files: make([]api.OwnedFile, 0, len(rr.Owned)), Next: rr.Next}
	for _, o := range rr.Owned {
		out.Files = append(out.Files, api.OwnedFile{Path: o.Path, Attr: attrOf(o.Inode)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) keyring(w http.ResponseWriter, r *http.Request) {
	if err := admin(r); err != nil {
		writeError(w, err)
		return
	}
	if s.cfg.Keyring == nil {
		writeError(w, fmt.Errorf("%w: this router has no gossip keyring", ErrBadRequest))
		return
	}
	op := gossip.KeyList
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		op = gossip.KeyringOp(q.Get("op"))
		switch op {
		case gossip.KeyInstall, gossip.KeyUse, gossip.KeyRemove:
			if _, err := secure.ParseKey(q.Get("key")); err != nil {
				writeError(w, fmt.Errorf("%w: key: %v", ErrBadRequest, err))
				return
			}
		default:
			writeError(w, fmt.Errorf("%w: op=%q: use install, use or remove (GET lists the keys)", ErrBadRequest, op))
			return
		}
	}
	res, err := s.cfg.Keyring(op, q.Get("key"))
	if err != nil && res.Nodes == 0 {
		writeError(w, fmt.Errorf("%w: keyring %s: %v", ErrBadRequest, op, err))
		return
	}
	if op != gossip.KeyList {
		s.cfg.Logger.Info("gossip keyring changed", "op", op, "by", callerName(r), "responses", res.Responses, "errors", res.Errors)
	}
	writeJSON(w, http.StatusOK, api.KeyringResult{Nodes: res.Nodes, Responses: res.Responses, Errors: res.Errors,
		Keys: res.Keys, Primary: res.Primary, Messages: res.Messages})
}

func callerName(r *http.Request) string {
	if c := callerOf(r.Context()); c != nil {
		return c.user.Name
	}
	return "root (--insecure)"
}

// Bootstrap makes the first admin user, "admin" with uid 0, whose token is
// Config.AdminToken, if the cluster has no user yet; it retries while the
// meta group cannot answer, until ctx ends. A cluster that has users
// already keeps them: the token then does nothing.
func (s *Server) Bootstrap(ctx context.Context) error {
	if s.cfg.AdminToken == "" {
		return nil
	}
	u := &meta.User{Name: "admin", Admin: true, TokenHash: secure.HashToken(s.cfg.AdminToken)}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		_, err := s.propose(ctx, meta.Op{Kind: meta.OpUserAdd, User: u, Bootstrap: true, ReqID: "bootstrap-admin"})
		if s.auth != nil && (err == nil || errors.Is(err, meta.ErrExists)) {
			s.auth.issued(u.TokenHash) // a client may have tried it already
		}
		switch {
		case err == nil:
			s.cfg.Logger.Info("made the first admin user, admin, with the token of --admin-token-file")
			return nil
		case errors.Is(err, meta.ErrExists):
			s.cfg.Logger.Debug("the cluster has users already; --admin-token-file is not used")
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		s.cfg.Logger.Debug("the first admin user cannot be made yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// statusRecorder remembers the status a handler answered with, and
// counts the bytes of the body it wrote.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logDenied logs a request refused for its user's rights (403), once per
// address and hour: someone probing what they may not touch shows up in
// the log without flooding it.
func (s *Server) logDenied(sr *statusRecorder, r *http.Request) {
	if sr.status != http.StatusForbidden || !s.refusals.Allow(sourceOf(r)+" 403", time.Now()) {
		return
	}
	s.cfg.Logger.Warn("refused a request the user may not make; further refusals of this address are not logged for an hour",
		"remote", r.RemoteAddr, "user", callerName(r), "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery)
}
