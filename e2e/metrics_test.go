package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/harness"
)

// needPrometheus skips a test that needs Prometheus's server and promtool
// (Debian's prometheus package) where they are missing, saying so; with
// SHOAL_REQUIRE_PROMETHEUS set (as CI sets it) it fails instead.
func needPrometheus(t *testing.T) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "SKIPPED: the Prometheus test needs " + strings.Join(missing, " and ") + " (apt-get install prometheus)"
	if os.Getenv("SHOAL_REQUIRE_PROMETHEUS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// metricsURL is where p serves its metrics, from the line its log has
// once it does.
var servingMetrics = regexp.MustCompile(`msg="serving metrics" url=(http://[0-9.:]+)/metrics`)

func metricsURL(t *testing.T, p *harness.Proc) string {
	t.Helper()
	var u string
	harness.Await(t, 10*time.Second, p.Name+" to serve its metrics", func() bool {
		m := servingMetrics.FindStringSubmatch(p.Tail(400))
		if m != nil {
			u = m[1]
		}
		return m != nil
	})
	return u
}

// A real Prometheus scrapes every process of a cluster (three storage
// nodes, a standby and a router, each with --metrics): after a workload
// its API shows every process up and the key series with the values the
// workload implies, and promtool finds every exposition well formed.
func TestPrometheus(t *testing.T) {
	needPrometheus(t)
	metrics := []string{"--metrics", "127.0.0.1:0"}
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}, Standbys: 1,
		NodeFlags: metrics, RouterFlags: metrics})
	targets := map[string]string{} // host:port → process
	for _, p := range c.Servers() {
		u := metricsURL(t, p)
		targets[strings.TrimPrefix(u, "http://")] = p.Name
	}
	if len(targets) != 5 {
		t.Fatalf("metrics addresses %v: want one for each of the 5 processes", targets)
	}

	// promtool checks each exposition as it is served.
	for addr, name := range targets {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("scrape %s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check := exec.Command("promtool", "check", "metrics")
		check.Stdin = bytes.NewReader(body)
		if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on %s's exposition (%d bytes): %v\n%s", name, len(body), err, out)
		}
	}

	// A workload: 20 small files written and read back, and a file of
	// 3 MiB (a chunk).
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const files = 20
	for i := range files {
		data := randomBytes(uint64(i), 1000)
		if _, err := cl.Put(ctx, fmt.Sprintf("/m/f%d", i), bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	big := randomBytes(99, 3<<20)
	if _, err := cl.Put(ctx, "/m/big", bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		rc, _, err := cl.Get(ctx, fmt.Sprintf("/m/f%d", i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}

	// Prometheus itself, scraping every process each second.
	dir := t.TempDir()
	var list []string
	for addr := range targets {
		list = append(list, strconv.Quote(addr))
	}
	// With the rules the documentation ships, checked by promtool first.
	rules, err := filepath.Abs(filepath.Join("..", "docs", "shoal-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range [][]string{{"check", "rules", rules}, {"check", "config", filepath.Join(filepath.Dir(rules), "prometheus.yml")}} {
		if out, err := exec.Command("promtool", check...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(check, " "), err, out)
		}
	}
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [%q]\nscrape_configs:\n  - job_name: shoal\n    static_configs:\n      - targets: [%s]\n",
		rules, strings.Join(list, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	prom := &harness.Proc{Name: "prometheus", Log: filepath.Join(dir, "prometheus.log"), Args: []string{"prometheus",
		"--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "tsdb"),
		"--web.listen-address", web}}
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prom.Kill)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of prometheus:\n%s", prom.Tail(20))
		}
	})

	// query runs an instant query and returns each series' value by the
	// label named by, or an error saying what came back.
	query := func(q, by string) (map[string]float64, error) {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out struct {
			Status string
			Error  string
			Data   struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return nil, fmt.Errorf("query %s: %w", q, err)
		}
		if out.Status != "success" {
			return nil, fmt.Errorf("query %s: %s %s", q, out.Status, out.Error)
		}
		got := map[string]float64{}
		for _, r := range out.Data.Result {
			s, _ := r.Value[1].(string)
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("query %s: value %v", q, r.Value)
			}
			got[r.Metric[by]] = v
		}
		return got, nil
	}
	// expect waits until q's series, by label, satisfy ok.
	expect := func(what, q, by string, ok func(map[string]float64) bool) {
		t.Helper()
		var last map[string]float64
		harness.Await(t, 30*time.Second, what, func() (bool, error) {
			got, err := query(q, by)
			if err != nil {
				return false, err
			}
			last = got
			return ok(got), nil
		})
		t.Logf("%s: %s → %v", what, q, last)
	}

	expect("every process up", "up", "instance", func(got map[string]float64) bool {
		if len(got) != len(targets) {
			return false
		}
		for _, v := range got {
			if v != 1 {
				return false
			}
		}
		return true
	})
	expect("one primary, two replicas and a standby", `sum by (role) (shoal_node_info)`, "role", func(got map[string]float64) bool {
		return got["primary"] == 1 && got["replica"] == 2 && got["standby"] == 1
	})
	expect("the writes counted at the router", `sum by (operation) (shoal_router_requests_total{code="201"})`, "operation",
		func(got map[string]float64) bool { return got["write"] >= files+1 })
	expect("the reads counted at the router", `sum by (operation) (shoal_router_requests_total{code="200"})`, "operation",
		func(got map[string]float64) bool { return got["read"] >= files })
	expect("the upload's bytes received", `shoal_router_received_bytes_total`, "node",
		func(got map[string]float64) bool {
			return len(got) == 1 && got["router"] >= float64(len(big)+files*1000)
		})
	expect("log writes timed on every member", `shoal_replication_log_write_seconds_count > 0`, "node",
		func(got map[string]float64) bool { return len(got) == 3 })
	expect("every member at the primary's commit index", `shoal_replication_applied_index`, "node", func(got map[string]float64) bool {
		if len(got) != 3 {
			return false
		}
		first := -1.0
		for _, v := range got {
			if first < 0 {
				first = v
			}
			if v != first || v < files {
				return false
			}
		}
		return true
	})
	expect("no member lagging", `shoal_group_member_lag_entries`, "member", func(got map[string]float64) bool {
		if len(got) != 3 {
			return false
		}
		for _, v := range got {
			if v != 0 {
				return false
			}
		}
		return true
	})
	expect("the big file's chunks on every member", `shoal_storage_chunks{node=~"g1.*"} >= 1`, "node",
		func(got map[string]float64) bool { return len(got) == 3 })
	expect("a promotion and no step-down", `sum(shoal_replication_promotions_total) - sum(shoal_replication_step_downs_total)`, "",
		func(got map[string]float64) bool { return got[""] == 1 })
	expect("no death declared on a healthy cluster", `shoal_gossip_dead_declarations_total`, "node", func(got map[string]float64) bool {
		if len(got) != len(targets) {
			return false
		}
		for _, v := range got {
			if v != 0 {
				return false
			}
		}
		return true
	})
	expect("the whole cluster in every gossip view", `shoal_gossip_members{state="alive"}`, "node", func(got map[string]float64) bool {
		if len(got) != len(targets) {
			return false
		}
		for _, v := range got {
			if v != float64(len(targets)) {
				return false
			}
		}
		return true
	})

	// Every rule evaluates (a rule naming a series that does not exist
	// would still be healthy, so the recording rules' values are checked
	// too), and no alert fires on a healthy cluster.
	harness.Await(t, 30*time.Second, "every rule evaluated, healthy, and no alert firing", func() (bool, error) {
		resp, err := http.Get("http://" + web + "/api/v1/rules")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var out struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name, Health, LastError, State string
						LastEvaluation                 time.Time
					}
				}
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return false, err
		}
		n := 0
		for _, g := range out.Data.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health != "ok" || r.LastEvaluation.IsZero() {
					return false, fmt.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
				}
				if r.State == "firing" || r.State == "pending" {
					return false, fmt.Errorf("alert %s is %s on a healthy cluster", r.Name, r.State)
				}
			}
		}
		if n != 10 {
			return false, fmt.Errorf("%d rules loaded, want the 10 of %s", n, rules)
		}
		return true, nil
	})
	expect("each node's share of its capacity in use, recorded", `shoal:storage_used:ratio`, "node", func(got map[string]float64) bool {
		if len(got) != 4 {
			return false
		}
		for _, v := range got {
			if v <= 0 || v >= 1 {
				return false
			}
		}
		return true
	})
	expect("the group's primary, as the no-primary alert sees it", `sum by (group) (shoal_replication_is_primary * on (instance, node) group_left (group) shoal_node_info{group!=""})`, "group",
		func(got map[string]float64) bool { return len(got) == 1 && got["g1"] == 1 })
}

// A mount started with --metrics counts its FUSE operations by type with
// their latency, its errors by errno, and the bytes written but not yet
// stored; promtool finds the exposition well formed.
func TestMountMetrics(t *testing.T) {
	needFUSE(t)
	needPrometheus(t)
	c := newCluster(t, 3)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := c.mount("--metrics", addr)
	if out, code := sh(t, dir, 0, `
		mkdir d && head -c 3000000 /dev/urandom > d/f && cat d/f > /dev/null && mv d/f d/g
		ls missing 2>/dev/null; ls d`); code != 0 || strings.TrimSpace(out) != "g" {
		t.Fatalf("the workload through the mount: exit %d, %q", code, out)
	}
	node := regexp.QuoteMeta(`node="mount ` + dir + `"`)
	wants := []string{
		`shoal_mount_operation_duration_seconds_count\{` + node + `,op="mkdir"\} 1`,
		`shoal_mount_operation_duration_seconds_count\{` + node + `,op="create"\} 1`,
		`shoal_mount_operation_duration_seconds_count\{` + node + `,op="write"\} [1-9]\d*`,
		`shoal_mount_operation_duration_seconds_count\{` + node + `,op="rename"\} 1`,
		`shoal_mount_operation_duration_seconds_bucket\{` + node + `,op="write",le="\+Inf"\} [1-9]\d*`,
		`shoal_mount_errors_total\{errno="ENOENT",` + node + `,op="lookup"\} [1-9]\d*`,
		`shoal_mount_write_back_bytes\{` + node + `\} 0`, // every write stored at close
	}
	var body string
	var missing []string
	harness.Await(t, 10*time.Second, "the mount's metrics to count the workload", func() (bool, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		body, missing = string(b), nil
		for _, want := range wants {
			if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(body) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			return false, fmt.Errorf("no line matching %s", strings.Join(missing, "; "))
		}
		return true, err
	})
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on the mount's exposition: %v\n%s", err, out)
	}
	// Its /readyz says it serves the mount point.
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(ready), "serving the cluster at "+dir) {
		t.Errorf("the mount's /readyz: %s %s; want 200 saying it serves %s", resp.Status, ready, dir)
	}
	if t.Failed() {
		t.Logf("the mount's exposition:\n%s", body)
	}
}
