package bootstrap_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
)

type entryJSON struct {
	Site  string   `json:"site"`
	Loc   int      `json:"loc"`
	Peers []string `json:"peers"`
}

func httpEntries(t *testing.T, in *instance, site string, loc, n int) map[string]bool {
	t.Helper()
	code, body := in.get(fmt.Sprintf("/v1/entry?site=%s&loc=%d&n=%d", site, loc, n), "")
	if code != http.StatusOK {
		t.Fatalf("entry: %d %s", code, body)
	}
	var e entryJSON
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("entry json %q: %v", body, err)
	}
	m := map[string]bool{}
	for _, p := range e.Peers {
		m[p] = true
	}
	return m
}

func sameSet(got map[string]bool, want ...*client.Client) bool {
	if len(got) != len(want) {
		return false
	}
	for _, c := range want {
		if !got[c.ID.String()] {
			return false
		}
	}
	return true
}

// Entry points are live directory peers of exactly that site and locality,
// over HTTP and over the socket, chosen at random.
func TestEntryPoints(t *testing.T) {
	const siteA, siteB = "https://a.example", "https://b.example"
	in := start(t, nil, "--allow-origins", siteA+","+siteB, "--localities", "4")
	a, b := ids.SiteOf(siteA), ids.SiteOf(siteB)
	reg := func(c *client.Client, regs ...frame.Reg) {
		t.Helper()
		if err := c.Register(ctxT(t), regs...); err != nil {
			t.Fatal(err)
		}
	}
	d1 := dial(t, in.ws(), client.Options{})
	d2 := dial(t, in.ws(), client.Options{})
	d3 := dial(t, in.ws(), client.Options{})
	d4 := dial(t, in.ws(), client.Options{})
	c1 := dial(t, in.ws(), client.Options{})
	reg(d1, frame.Reg{Site: a, Loc: 1, Role: frame.RoleDirectory}, frame.Reg{Site: b, Loc: 2, Role: frame.RoleContent})
	reg(d2, frame.Reg{Site: a, Loc: 1, Role: frame.RoleDirectory})
	reg(d3, frame.Reg{Site: a, Loc: 2, Role: frame.RoleDirectory})
	reg(d4, frame.Reg{Site: b, Loc: 1, Role: frame.RoleDirectory})
	reg(c1, frame.Reg{Site: a, Loc: 1, Role: frame.RoleContent})
	eventually(t, 5*time.Second, "registrations", func() bool {
		return sameSet(httpEntries(t, in, siteA, 1, 10), d1, d2)
	})
	if got := httpEntries(t, in, fmt.Sprintf("%016x", uint64(a)), 2, 10); !sameSet(got, d3) {
		t.Fatalf("site a loc 2 by site id: %v", got)
	}
	if got := httpEntries(t, in, siteB, 1, 10); !sameSet(got, d4) {
		t.Fatalf("site b loc 1: %v", got)
	}
	if got := httpEntries(t, in, siteB, 2, 10); len(got) != 0 {
		t.Fatalf("content peers are not entry points: %v", got)
	}
	// The same over the socket; the asker is never its own entry point.
	if err := c1.Send(ctxT(t), &frame.Frame{Type: frame.TEntryReq, ReqID: 7, Site: a, Loc: 1, N: 10}); err != nil {
		t.Fatal(err)
	}
	if e := recvType(t, c1, frame.TEntries); e.ReqID != 7 || len(e.Peers) != 2 || !peerSet(e.Peers)[d1.ID] || !peerSet(e.Peers)[d2.ID] {
		t.Fatalf("socket entries %+v", e)
	}
	if err := d1.Send(ctxT(t), &frame.Frame{Type: frame.TEntryReq, ReqID: 8, Site: a, Loc: 1, N: 10}); err != nil {
		t.Fatal(err)
	}
	if e := recvType(t, d1, frame.TEntries); len(e.Peers) != 1 || e.Peers[0] != d2.ID {
		t.Fatalf("d1 asking: %+v", e.Peers)
	}
	// Only live peers: a directory that leaves, or changes role, is gone.
	_ = d1.Close()
	eventually(t, 5*time.Second, "d1 gone from entries", func() bool { return sameSet(httpEntries(t, in, siteA, 1, 10), d2) })
	reg(d2, frame.Reg{Site: a, Loc: 1, Role: frame.RoleContent})
	eventually(t, 5*time.Second, "d2 demoted", func() bool { return len(httpEntries(t, in, siteA, 1, 10)) == 0 })

	// Bad registrations are refused with a reason.
	reg(c1, frame.Reg{Site: ids.SiteOf("https://evil.example"), Loc: 0, Role: frame.RoleDirectory})
	expectError(t, c1, frame.CodeBadRegister)
	reg(c1, frame.Reg{Site: a, Loc: 4, Role: frame.RoleDirectory})
	expectError(t, c1, frame.CodeBadRegister)

	// Random: with 12 directory peers and n=3, the answers vary and cover
	// most of them.
	for range 12 {
		d := dial(t, in.ws(), client.Options{})
		reg(d, frame.Reg{Site: b, Loc: 3, Role: frame.RoleDirectory})
	}
	eventually(t, 5*time.Second, "12 directories", func() bool { return len(httpEntries(t, in, siteB, 3, 32)) == 12 })
	seen := map[string]bool{}
	for range 60 {
		got := httpEntries(t, in, siteB, 3, 3)
		if len(got) != 3 {
			t.Fatalf("n=3 gave %d", len(got))
		}
		for p := range got {
			seen[p] = true
		}
	}
	if len(seen) < 10 {
		t.Fatalf("60 random draws of 3 out of 12 covered only %d peers", len(seen))
	}

	// Origin checks: CORS for allowed sites, 403 for others, on HTTP and WS.
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.addr+"/v1/entry?site="+siteA+"&loc=1", nil)
	req.Header.Set("Origin", siteA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != siteA {
		t.Fatalf("CORS: %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if code, _ := in.get("/v1/entry?site="+siteA+"&loc=1", "https://evil.example"); code != http.StatusForbidden {
		t.Fatalf("evil origin over HTTP: %d", code)
	}
	if _, err := client.Dial(ctxT(t), in.ws(), client.Options{Origin: "https://evil.example"}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("evil origin over WS: %v", err)
	}
	dial(t, in.ws(), client.Options{Origin: siteB})
}
