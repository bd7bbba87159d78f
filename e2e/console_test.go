package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"shoal/client"
	"shoal/harness"
)

// needChromium returns the path of a Chromium to drive, or skips the test
// saying so; with SHOAL_REQUIRE_CHROMIUM set (as CI sets it) it fails
// instead.
func needChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "SKIPPED: the console test needs Chromium (apt-get install chromium)"
	if os.Getenv("SHOAL_REQUIRE_CHROMIUM") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browserSession is one headless Chromium tab on the console, saving a
// screenshot of each step under shots.
type browserSession struct {
	t     *testing.T
	ctx   context.Context
	shots string
	step  int
}

func newBrowser(t *testing.T, chrome string) *browserSession {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox,                // tests run as root, where Chromium's sandbox will not start
		chromedp.IgnoreCertErrors,         // the router's certificate is from the cluster's own CA
		chromedp.Flag("lang", "en-US"),    // the console prints times the browser's way
		chromedp.WindowSize(1280, 1600),   // room for both groups, the files and the events
		chromedp.UserDataDir(t.TempDir()), // no profile shared with anything else
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	shots := os.Getenv("SHOAL_SCREENSHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "shoal-console-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots: %s", shots)
	return &browserSession{t: t, ctx: ctx, shots: shots}
}

// run runs actions with a deadline, failing the test with what was
// being done.
func (b *browserSession) run(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("console: %s: %v", what, err)
	}
}

// screenshot saves the whole page as NN-name.png.
func (b *browserSession) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.step++
	p := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.step, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// await polls the JavaScript expression cond (harness.WaitFor), which
// must turn true within d; what says what was awaited. On failure it saves
// a screenshot and prints the page's text.
func (b *browserSession) await(what string, d time.Duration, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	err := harness.WaitFor(ctx, what, func() (bool, error) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		return chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
	})
	if err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("console: %v (%s); the page reads:\n%s", err, cond, text)
	}
}

// The web console in a real headless Chromium, on a secure cluster of two
// groups: a bad token is refused; the admin's token shows both groups and
// every member; a killed node is marked failed within 5 s; a file uploaded
// through the file input is listed with its size, downloads byte for byte
// and is deleted from the cluster.
func TestConsole(t *testing.T) {
	chrome := needChromium(t)
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}, {Name: "g2", Size: 3}},
		RouterFlags: []string{"--metrics", "127.0.0.1:0"}}) // the traffic sparklines read the router's metrics
	b := newBrowser(t, chrome)

	// The first call starts the browser, which lives as long as its
	// context: it gets no deadline of its own.
	if err := chromedp.Do(b.ctx, chromedp.Navigate(c.API+"/ui/")); err != nil {
		t.Fatalf("console: start Chromium and open %s/ui/: %v", c.API, err)
	}
	b.run("see the login form", 30*time.Second, chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.screenshot("login")

	b.run("log in with a bad token", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"), chromedp.Click(chromedp.CSS("#login-form button")))
	b.await("the bad token to be refused", 10*time.Second,
		`document.querySelector("#login-error").textContent.includes("refused") && document.querySelector("#app").hidden`)
	b.screenshot("bad-token-refused")

	b.run("log in with the admin's token", 10*time.Second,
		chromedp.SetValue(chromedp.CSS("#token"), c.Creds.Token), chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	var names []string
	for _, p := range c.Nodes {
		names = append(names, p.Name)
	}
	b.await("both groups and every member", 15*time.Second, fmt.Sprintf(`(() => {
		const alive = (n) => { const r = document.querySelector('tr.member[data-node="' + n + '"]'); return r && r.dataset.status === "alive"; };
		return !!document.querySelector('.group[data-group="g1"]') && !!document.querySelector('.group[data-group="g2"]') &&
			%q.split(",").every(alive) && document.querySelector("#health").dataset.state === "ok";
	})()`, strings.Join(names, ",")))
	b.screenshot("cluster")

	victim := c.Nodes[len(c.Nodes)-1] // a member of g2
	killed := time.Now()
	victim.Kill()
	b.await(victim.Name+" marked failed", 5*time.Second,
		fmt.Sprintf(`document.querySelector('tr.member[data-node=%q]').dataset.status === "failed"`, victim.Name))
	t.Logf("the console marked %s failed %v after the kill", victim.Name, time.Since(killed).Round(10*time.Millisecond))
	b.await("the failure in the events", 5*time.Second,
		fmt.Sprintf(`[...document.querySelectorAll('#events li[data-kind="failed"]')].some((li) => li.dataset.node === %q)`, victim.Name))
	b.screenshot("node-failed")

	// Upload through the file input, as a user picking files would.
	content := make([]byte, 300_000+17)
	rand.Read(content)
	local := filepath.Join(t.TempDir(), "photo.bin")
	if err := os.WriteFile(local, content, 0o644); err != nil {
		t.Fatal(err)
	}
	b.run("pick a file to upload", 10*time.Second, chromedp.SetUploadFiles(chromedp.CSS("#upload-input"), []string{local}))
	b.await("the upload to be listed with its size", 20*time.Second,
		fmt.Sprintf(`(() => { const r = document.querySelector('tr.entry[data-name="photo.bin"]'); return !!r && r.dataset.size === "%d" && r.querySelector(".size").textContent === "293 KiB"; })()`, len(content)))
	b.await("the upload in the traffic sparklines", 10*time.Second,
		`parseInt(document.querySelector("#traffic-note").textContent) >= 2`) // the router's own count: the listing and the upload at least
	got, err := c.client().ReadFile(context.Background(), "/photo.bin")
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the cluster holds %d bytes at /photo.bin (error %v); the console uploaded %d", len(got), err, len(content))
	}
	b.screenshot("uploaded")

	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads}); err != nil {
		t.Fatalf("console: let Chromium save downloads in %s: %v", downloads, err)
	}
	b.run("download the file", 10*time.Second, chromedp.Click(chromedp.CSS(`tr.entry[data-name="photo.bin"] button.download`)))
	harness.Await(t, 20*time.Second, "the download to be saved whole", func() bool {
		saved, _ := filepath.Glob(filepath.Join(downloads, "*"))
		for _, f := range saved {
			if got, err := os.ReadFile(f); err == nil && bytes.Equal(got, content) {
				return true
			}
		}
		return false
	})

	del := `tr.entry[data-name="photo.bin"] button.delete`
	b.run("delete the file (click, then confirm)", 10*time.Second,
		chromedp.Click(chromedp.CSS(del)), chromedp.WaitVisible(chromedp.CSS(del+".confirm")), chromedp.Click(chromedp.CSS(del)))
	b.await("the file to leave the listing", 10*time.Second, `!document.querySelector('tr.entry[data-name="photo.bin"]')`)
	if _, err := c.client().Stat(context.Background(), "/photo.bin"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after the console deleted /photo.bin the cluster still answers stat with %v; want not found", err)
	}
	b.screenshot("deleted")
}
