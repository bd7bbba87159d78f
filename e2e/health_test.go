package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"shoal/api"
	"shoal/harness"
)

// readyz asks url's /readyz and returns its status and answer.
func readyz(cl *http.Client, url string) (int, api.Health, error) {
	resp, err := cl.Get(url + "/readyz")
	if err != nil {
		return 0, api.Health{}, err
	}
	defer resp.Body.Close()
	var h api.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return resp.StatusCode, h, fmt.Errorf("GET %s/readyz: %d, body not JSON: %w", url, resp.StatusCode, err)
	}
	return resp.StatusCode, h, nil
}

// Killing a majority of the meta group turns the router's /readyz (on its
// API address and on its metrics address) to 503 saying why, and shoal
// status's exit code to 4 (unavailable), within seconds; once the nodes
// are back, both say ready again, and status exits 0 once every member is
// synced. A storage node's own /readyz says what it is.
func TestReadiness(t *testing.T) {
	metrics := []string{"--metrics", "127.0.0.1:0"}
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}, Standbys: 1,
		NodeFlags: append(metrics, "--replace-after", "-1s"), RouterFlags: metrics})
	apiClient := c.httpClient()
	apiClient.Timeout = 10 * time.Second
	plain := &http.Client{Timeout: 10 * time.Second}
	routerMetrics := metricsURL(t, c.Router)
	expectReady := func(what string, want bool) {
		t.Helper()
		wantCode := http.StatusOK
		if !want {
			wantCode = http.StatusServiceUnavailable
		}
		took := harness.Await(t, 20*time.Second, what, func() (bool, error) {
			for _, u := range []struct {
				cl  *http.Client
				url string
			}{{apiClient, c.API}, {plain, routerMetrics}} {
				code, h, err := readyz(u.cl, u.url)
				if err != nil {
					return false, err
				}
				if code != wantCode || h.Ready != want || len(h.Checks) != 1 {
					return false, fmt.Errorf("%s/readyz: %d %+v", u.url, code, h)
				}
			}
			return true, nil
		})
		_, h, _ := readyz(apiClient, c.API)
		t.Logf("%s after %v: %s", what, took.Round(time.Millisecond), h.Checks[0].Why)
	}
	status := func() (string, int) {
		out, _, code := c.run("status")
		return out, code
	}

	expectReady("the router ready", true)
	if out, code := status(); code != 0 || !strings.Contains(out, "HEALTH: ok") {
		t.Fatalf("shoal status on a healthy cluster: exit %d\n%s", code, out)
	}
	for _, p := range c.Servers() {
		if p == c.Router {
			continue
		}
		code, h, err := readyz(plain, metricsURL(t, p))
		if err != nil || code != http.StatusOK || !h.Ready || len(h.Checks) != 1 || h.Checks[0].Name != p.Name {
			t.Fatalf("%s's /readyz: %d %+v %v", p.Name, code, h, err)
		}
		t.Logf("%s: %s", p.Name, h.Checks[0].Why)
	}

	// A majority of the meta group dies.
	nodes := c.groupNodes("g1")
	killed := nodes[:2]
	for _, p := range killed {
		p.Kill()
	}
	expectReady("the router to say it is not ready", false)
	harness.Await(t, 20*time.Second, "shoal status to exit 4 (unavailable)", func() (bool, error) {
		out, code := status()
		if code != 4 || !strings.Contains(out, "HEALTH: unavailable") {
			return false, fmt.Errorf("exit %d, last line %q", code, lastLine(out))
		}
		return true, nil
	})

	for _, p := range killed {
		c.start(p)
	}
	expectReady("the router ready again", true)
	harness.Await(t, 60*time.Second, "shoal status to exit 0 with every member back and synced", func() (bool, error) {
		out, code := status()
		if code != 0 {
			return false, fmt.Errorf("exit %d, last line %q", code, lastLine(out))
		}
		return true, nil
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
