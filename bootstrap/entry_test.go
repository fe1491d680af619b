package bootstrap_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowercdn/flower/bootstrap/client"
	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
)

// httpEntries asks GET /v1/entry; site "" asks for random members only.
func httpEntries(t *testing.T, in *instance, site string, loc, n int) client.Entries {
	t.Helper()
	q := fmt.Sprintf("loc=%d&n=%d", loc, n)
	if site != "" {
		q = "site=" + site + "&" + q
	}
	code, body := in.get("/v1/entry?"+q, "")
	if code != http.StatusOK {
		t.Fatalf("entry: %d %s", code, body)
	}
	e, err := client.ParseEntriesJSON([]byte(body))
	if err != nil {
		t.Fatalf("entry json %q: %v", body, err)
	}
	return e
}

// socketEntries asks over c's socket.
func socketEntries(t *testing.T, c *client.Client, req uint32, site ids.SiteID, loc, n int) client.Entries {
	t.Helper()
	if err := c.RequestEntries(ctxT(t), req, site, loc, n); err != nil {
		t.Fatal(err)
	}
	e, err := client.ParseEntries(recvType(t, c, frame.TEntries))
	if err != nil {
		t.Fatal(err)
	}
	if e.ReqID != req {
		t.Fatalf("entries for request %d, want %d", e.ReqID, req)
	}
	return e
}

// same reports whether got holds exactly the members want, in any order.
func same(got []ids.Member, want ...ids.Member) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// sameEntries reports whether e's directory lists are exactly local and remote.
func sameEntries(e client.Entries, local, remote []ids.Member) bool {
	return same(e.Local, local...) && same(e.Remote, remote...)
}

// dirPeer is a directory peer: a client and the D-ring member it registered.
type dirPeer struct {
	c *client.Client
	m ids.Member
}

// register registers c as a directory of site in loc holding instance inst,
// with the key the service's layout gives.
func register(t *testing.T, c *client.Client, site ids.SiteID, loc, inst int, more ...frame.Reg) dirPeer {
	t.Helper()
	r, err := c.DirectoryReg(site, loc, inst)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctxT(t), append([]frame.Reg{r}, more...)...); err != nil {
		t.Fatal(err)
	}
	return dirPeer{c: c, m: ids.Member{Key: r.Key, ID: c.ID}}
}

func members(ps ...dirPeer) []ids.Member {
	out := make([]ids.Member, len(ps))
	for i, p := range ps {
		out[i] = p.m
	}
	return out
}

// Entry points are exactly the live directory members (key, peer) of the
// site: in the asker's locality (every PetalUp instance), in the others, and
// random members of any site; over HTTP and over the socket.
func TestEntryPoints(t *testing.T) {
	const siteA, siteB = "https://a.example", "https://b.example"
	in := start(t, nil, "--allow-origins", siteA+","+siteB, "--localities", "4", "--instance-bits", "2")
	a, b := ids.SiteOf(siteA), ids.SiteOf(siteB)
	c1 := dial(t, in.ws(), client.Options{})
	if c1.Challenge.Localities != 4 || c1.Challenge.InstanceBits != 2 {
		t.Fatalf("challenge announces %d localities, %d instance bits", c1.Challenge.Localities, c1.Challenge.InstanceBits)
	}
	d1 := register(t, dial(t, in.ws(), client.Options{}), a, 1, 0, frame.Reg{Site: b, Loc: 2, Role: frame.RoleContent})
	d2 := register(t, dial(t, in.ws(), client.Options{}), a, 1, 3)
	d3 := register(t, dial(t, in.ws(), client.Options{}), a, 2, 0)
	d4 := register(t, dial(t, in.ws(), client.Options{}), b, 1, 1)
	if err := c1.Register(ctxT(t), frame.Reg{Site: a, Loc: 1, Role: frame.RoleContent}); err != nil {
		t.Fatal(err)
	}
	all := members(d1, d2, d3, d4)
	eventually(t, 5*time.Second, "registrations", func() bool {
		return sameEntries(httpEntries(t, in, siteA, 1, 10), members(d1, d2), members(d3))
	})
	// Instances in order; the key's low bits are (loc, instance).
	if e := httpEntries(t, in, siteA, 1, 10); e.Local[0] != d1.m || e.Site != a || e.Loc != 1 {
		t.Fatalf("site a loc 1: %+v", e)
	}
	if lay, _ := keymgr.NewLayout(4, 2); d2.m.Key != lay.Key(a, 1, 3) {
		t.Fatalf("d2 registered key %016x", uint64(d2.m.Key))
	}
	if e := httpEntries(t, in, fmt.Sprintf("%016x", uint64(a)), 2, 10); !sameEntries(e, members(d3), members(d1, d2)) || !same(e.Random, all...) {
		t.Fatalf("site a loc 2 by site id: %+v", e)
	}
	if e := httpEntries(t, in, siteB, 1, 10); !sameEntries(e, members(d4), nil) {
		t.Fatalf("site b loc 1: %+v", e)
	}
	if e := httpEntries(t, in, siteB, 2, 10); !sameEntries(e, nil, members(d4)) {
		t.Fatalf("content peers are not entry points: %+v", e)
	}
	// Random members only: no site.
	if e := httpEntries(t, in, "", 0, 10); len(e.Local)+len(e.Remote) != 0 || !same(e.Random, all...) || e.Site != 0 {
		t.Fatalf("random only: %+v", e)
	}
	if e := httpEntries(t, in, "", 0, 2); len(e.Random) != 2 || !slices.Contains(all, e.Random[0]) || e.Random[0] == e.Random[1] {
		t.Fatalf("2 random: %+v", e)
	}
	// The same over the socket; the asker is never its own entry point.
	if e := socketEntries(t, c1, 7, a, 1, 10); !sameEntries(e, members(d1, d2), members(d3)) || !same(e.Random, all...) {
		t.Fatalf("socket entries %+v", e)
	}
	if e := socketEntries(t, d1.c, 8, a, 1, 10); !sameEntries(e, members(d2), members(d3)) || !same(e.Random, members(d2, d3, d4)...) {
		t.Fatalf("d1 asking: %+v", e)
	}
	if e := socketEntries(t, c1, 9, 0, 0, 3); len(e.Local)+len(e.Remote) != 0 || len(e.Random) != 3 {
		t.Fatalf("socket random only: %+v", e)
	}
	// Only live members: a directory that leaves, or changes role, is gone.
	_ = d1.c.Close()
	eventually(t, 5*time.Second, "d1 gone from entries", func() bool {
		return sameEntries(httpEntries(t, in, siteA, 1, 10), members(d2), members(d3))
	})
	if err := d2.c.Register(ctxT(t), frame.Reg{Site: a, Loc: 1, Role: frame.RoleContent}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "d2 demoted", func() bool {
		return sameEntries(httpEntries(t, in, siteA, 1, 10), nil, members(d3))
	})

	// Bad registrations are refused with a reason.
	lay, err := c1.Layout()
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]frame.Reg{
		"site not allowed":        {Site: ids.SiteOf("https://evil.example"), Loc: 0, Role: frame.RoleDirectory, Key: lay.Key(ids.SiteOf("https://evil.example"), 0, 0)},
		"locality out of range":   {Site: a, Loc: 4, Role: frame.RoleDirectory, Key: lay.Key(a, 4, 0)},
		"key of another site":     {Site: a, Loc: 1, Role: frame.RoleDirectory, Key: lay.Key(b, 1, 0)},
		"key of another locality": {Site: a, Loc: 1, Role: frame.RoleDirectory, Key: lay.Key(a, 2, 0)},
		"no key":                  {Site: a, Loc: 1, Role: frame.RoleDirectory},
		"key without the role":    {Site: a, Loc: 1, Role: frame.RoleContent, Key: lay.Key(a, 1, 0)},
	}
	for name, r := range bad {
		if err := c1.Register(ctxT(t), r); err != nil {
			t.Fatal(err)
		}
		if f := expectError(t, c1, frame.CodeBadRegister); f.Ref != frame.TRegister {
			t.Fatalf("%s: error refers to %s", name, f.Ref)
		}
	}
	if e := httpEntries(t, in, siteA, 1, 10); !sameEntries(e, nil, members(d3)) {
		t.Fatalf("after refused registrations: %+v", e)
	}

	// Every PetalUp instance of the petal is listed (in instance order), and
	// random members vary and cover the ring.
	var petal []dirPeer
	for i := range 12 {
		petal = append(petal, register(t, dial(t, in.ws(), client.Options{}), b, 3, i%4))
	}
	eventually(t, 5*time.Second, "12 directories", func() bool { return len(httpEntries(t, in, siteB, 3, 0).Local) == 12 })
	e := httpEntries(t, in, siteB, 3, 0)
	if !same(e.Local, members(petal...)...) || !same(e.Remote, members(d4)...) || len(e.Random) != 0 {
		t.Fatalf("petal of 12: %+v", e)
	}
	for i := 1; i < len(e.Local); i++ {
		_, _, x := lay.Split(e.Local[i-1].Key)
		_, _, y := lay.Split(e.Local[i].Key)
		if x > y {
			t.Fatalf("local directories not in instance order: %v", e.Local)
		}
	}
	ring := append(members(petal...), d3.m, d4.m)
	seen := map[ids.Member]bool{}
	for range 60 {
		got := httpEntries(t, in, "", 0, 3).Random
		if len(got) != 3 {
			t.Fatalf("n=3 gave %d", len(got))
		}
		for _, m := range got {
			if !slices.Contains(ring, m) {
				t.Fatalf("random member %s is not registered", m)
			}
			seen[m] = true
		}
	}
	if len(seen) < 12 {
		t.Fatalf("60 random draws of 3 out of %d covered only %d members", len(ring), len(seen))
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
	for _, q := range []string{"site=nope&loc=1", "site=" + siteA, "site=" + siteA + "&loc=4", "loc=-1", "n=x"} {
		if code, body := in.get("/v1/entry?"+q, ""); code != http.StatusBadRequest {
			t.Fatalf("entry?%s: %d %s", q, code, body)
		}
	}
	if _, err := client.Dial(ctxT(t), in.ws(), client.Options{Origin: "https://evil.example"}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("evil origin over WS: %v", err)
	}
	dial(t, in.ws(), client.Options{Origin: siteB})
}
