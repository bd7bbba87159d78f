package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestNoteDirs: a change of names made with a NoteDirs context asks the
// router for the directories it changed (dirs=1) and hands them over; a
// router that ignores the question (an earlier version, answering 204)
// leaves none, and the call still succeeds. Other calls do not ask.
func TestNoteDirs(t *testing.T) {
	answer := `{"dirs":[{"ino":7,"type":"dir","nlink":3}]}`
	var mu sync.Mutex
	asked := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.Method+" "+r.URL.Query().Get("op")] = r.URL.Query().Get("dirs") == "1"
		mu.Unlock()
		switch {
		case r.Method == http.MethodDelete && r.URL.Query().Get("only") == "dir": // an earlier router
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodDelete || r.URL.Query().Get("op") == "rename":
			w.Write([]byte(answer))
		case r.URL.Query().Get("op") == "create":
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"path":"/f","ino":9,"type":"file","dirs":[{"ino":7,"type":"dir","nlink":2}]}`))
		default:
			w.Write([]byte(`{"path":"/","ino":7,"type":"dir"}`))
		}
	}))
	defer srv.Close()
	c, err := New(Config{Router: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var dirs []Attr
	ctx := NoteDirs(context.Background(), &dirs)

	a, created, err := c.CreateIn(ctx, 7, "f", 0o644, 0, 0, true)
	if err != nil || !created || a.Ino != 9 || len(dirs) != 1 || dirs[0].Ino != 7 || dirs[0].Nlink != 2 {
		t.Fatalf("create: %+v created %v err %v; directories %+v", a, created, err, dirs)
	}
	if err := c.UnlinkIn(ctx, 7, "f", false); err != nil || len(dirs) != 1 || dirs[0].Nlink != 3 {
		t.Fatalf("unlink: err %v; directories %+v", err, dirs)
	}
	if err := c.RmdirIn(ctx, 7, "d"); err != nil || len(dirs) != 0 {
		t.Fatalf("rmdir answered 204: err %v; directories %+v, want none", err, dirs)
	}
	if _, err := c.StatIno(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := c.RenameIn(context.Background(), 7, "a", 7, "b", false, false); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for call, want := range map[string]bool{"POST create": true, "DELETE ": true, "GET stat": false, "POST rename": false} {
		if asked[call] != want {
			t.Errorf("%s asked for its directories: %v, want %v", call, asked[call], want)
		}
	}
}
