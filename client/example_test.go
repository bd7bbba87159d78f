package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/harness"
)

// config reaches the cluster the examples run against: one group of one
// node and a router, started by TestMain from the binary of this tree.
var config client.Config

func TestMain(m *testing.M) {
	os.Exit(runWithCluster(m))
}

func runWithCluster(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var build harness.Build
	bin, err := build.Path(ctx)
	if err != nil {
		log.Printf("the examples need the shoal binary: %v", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "shoal-examples-")
	if err != nil {
		log.Print(err)
		return 1
	}
	defer os.RemoveAll(dir)
	hc, err := harness.Start(ctx, harness.Spec{Binary: bin, Dir: dir, Groups: []harness.Group{{Name: "g1", Size: 1}}})
	if err != nil {
		log.Printf("start a cluster for the examples: %v", err)
		return 1
	}
	defer hc.Stop(5 * time.Second)
	if _, err := hc.WaitGroup(ctx, "g1", 1, ""); err != nil {
		log.Printf("the examples' cluster: %v", err)
		return 1
	}
	if config, err = hc.Creds.Config(); err != nil {
		log.Print(err)
		return 1
	}
	return m.Run()
}

// Files are opened, written and read as with package os; another client
// sees the content once the file is closed.
func ExampleClient_OpenFile() {
	ctx := context.Background()
	c, err := client.New(config)
	if err != nil {
		log.Fatal(err)
	}
	c.Mkdir(ctx, "/examples", true)
	f, err := c.OpenFile(ctx, "/examples/log.txt", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(f, "first line")
	f.Close()

	f, err = c.OpenFile(ctx, "/examples/log.txt", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(f, "second line")
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}

	f, err = c.Open(ctx, "/examples/log.txt")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	fmt.Print(string(b))
	// Output:
	// first line
	// second line
}

// The cluster as an io/fs file system: fs.WalkDir, fs.ReadFile,
// http.FS and template.ParseFS take it.
func ExampleClient_FS() {
	ctx := context.Background()
	c, err := client.New(config)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"/site/index.html", "/site/css/main.css"} {
		c.Put(ctx, name, strings.NewReader("<!-- "+name+" -->"), -1)
	}
	site := c.FS(ctx, "/site")
	fs.WalkDir(site, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Println(p, d.IsDir())
		return nil
	})
	b, _ := fs.ReadFile(site, "css/main.css")
	fmt.Println(string(b))
	// Output:
	// . true
	// css true
	// css/main.css false
	// index.html false
	// <!-- /site/css/main.css -->
}

// A lock with a lease: Hold renews it until stop, and the changes made
// under the held context carry its fencing token, so the cluster refuses
// them once the lease is over.
func ExampleClient_Lock() {
	ctx := context.Background()
	c, err := client.New(config)
	if err != nil {
		log.Fatal(err)
	}
	c.Put(ctx, "/examples/job.lock", nil, 0)
	lease, err := c.Lock(ctx, "/examples/job.lock", client.LockOptions{TTL: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	held, stop := lease.Hold(ctx)
	if _, err := c.Put(held, "/examples/job.out", strings.NewReader("done"), -1); err != nil {
		log.Fatal(err)
	}
	_, err = c.Lock(ctx, "/examples/job.lock", client.LockOptions{})
	fmt.Println("a second lock:", errors.Is(err, client.ErrLocked))
	stop()

	// The lease is over: its token fences nothing any more.
	_, err = c.Put(client.WithFence(ctx, lease.Token), "/examples/job.out", strings.NewReader("late"), -1)
	fmt.Println("a late write:", errors.Is(err, client.ErrFenced))
	// Output:
	// a second lock: true
	// a late write: true
}
