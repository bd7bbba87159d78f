package router

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"shoal/api"
)

// TestWhoamiInsecure checks that --insecure's root, which the cluster
// does not keep, decodes as a user: a client reads "created" as a time.
func TestWhoamiInsecure(t *testing.T) {
	s := newTestCluster(t).router(nil)
	w := do(s, "GET", "/v1/whoami", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /v1/whoami = %d %s", w.Code, w.Body)
	}
	var me api.User
	if err := json.Unmarshal(w.Body.Bytes(), &me); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	if me.Name != "root (--insecure)" || !me.Admin || !me.Created.IsZero() || strings.Contains(w.Body.String(), `"created"`) {
		t.Errorf("whoami = %s", w.Body)
	}
}
