package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"shoal/harness"
)

// TestManyLargeUploadsAtOnce: many clients upload large files through one
// router at the same time, on a cluster with the default flags. Every
// upload succeeds (load slows uploads down, it does not fail them), every
// file reads back with its content, and the router's memory stays
// bounded: uploads share a fixed budget of chunk buffers instead of
// holding a few chunks each. SHOAL_UPLOADS=N runs N uploads instead of 20.
func TestManyLargeUploadsAtOnce(t *testing.T) {
	uploads, size := 20, int64(50e6)
	if v, err := strconv.Atoi(os.Getenv("SHOAL_UPLOADS")); err == nil && v > 0 {
		uploads = v
	}
	// With its default --upload-memory of 256 MiB the router peaks at
	// about 400 MiB here, however many uploads run; without a bound it
	// took 1.4 to 2.1 GiB for 20 to 25 uploads.
	const rssBound = 600 << 20
	c := startCluster(t, harness.Spec{Groups: []harness.Group{{Name: "g1", Size: 3}}})
	// No retries: a 503 is a failure here, and the bodies cannot be
	// rewound anyway.
	cl, err := c.Client(2*time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before, _ := c.groups()

	start := time.Now()
	errs := make([]error, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A plain reader, not a Seeker: the client cannot replay it.
			body := io.LimitReader(newPattern(uint64(1000+i)), size)
			_, errs[i] = cl.Put(ctx, fmt.Sprintf("/load/f%d.bin", i), body, size)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	peak, err := c.Router.PeakRSS()
	if err != nil {
		t.Fatalf("peak memory of the router: %v", err)
	}
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			t.Errorf("upload %d of %d: %v", i, uploads, err)
		}
	}
	after, _ := c.groups()
	t.Logf("%d uploads of %d MB at once: %v (%.0f MB/s in all), %d failed; router peak RSS %d MiB; primary %s term %d, then %s term %d",
		uploads, size/1e6, took.Round(time.Millisecond), float64(uploads)*float64(size)/1e6/took.Seconds(), failed, peak>>20,
		before.Primary, before.Term, after.Primary, after.Term)
	if peak > rssBound {
		t.Errorf("the router's RSS reached %d MiB during the uploads, over the bound of %d MiB", peak>>20, rssBound>>20)
	}
	if failed > 0 {
		t.FailNow()
	}
	for i := range uploads {
		want := sha256.New()
		io.Copy(want, io.LimitReader(newPattern(uint64(1000+i)), size))
		rc, _, err := cl.Get(ctx, fmt.Sprintf("/load/f%d.bin", i))
		if err != nil {
			t.Fatalf("read upload %d back: %v", i, err)
		}
		got := sha256.New()
		n, err := io.Copy(got, rc)
		rc.Close()
		if err != nil || n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Fatalf("upload %d read back: %d bytes (err %v), want %d bytes of its content", i, n, err, size)
		}
	}
}
