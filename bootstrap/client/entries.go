package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/flowercdn/flower/bootstrap/frame"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/keymgr"
	"github.com/flowercdn/flower/shared/webfetch"
)

// Entries is an entry-point answer, from an Entries frame or from the JSON
// of GET /v1/entry: the site's directories in the asker's locality (Local,
// every PetalUp instance), in the other localities (Remote), and random
// D-ring members of any site (Random).
type Entries struct {
	ReqID uint32     // the frame form only
	Site  ids.SiteID // the JSON form only (0: random members only)
	Loc   int        // the JSON form only

	Local, Remote, Random []ids.Member
}

// Layout is the D-ring key layout the service announced in its challenge.
func (c *Client) Layout() (keymgr.Layout, error) {
	l, err := keymgr.NewLayout(int(c.Challenge.Localities), int(c.Challenge.InstanceBits))
	if err != nil {
		return keymgr.Layout{}, fmt.Errorf("layout from the challenge: %w", err)
	}
	return l, nil
}

// DirectoryReg is the registration of a directory peer of site in locality
// loc holding PetalUp instance inst: its D-ring key in the service's layout.
func (c *Client) DirectoryReg(site ids.SiteID, loc, inst int) (frame.Reg, error) {
	l, err := c.Layout()
	if err != nil {
		return frame.Reg{}, err
	}
	if loc < 0 || loc >= int(c.Challenge.Localities) || inst < 0 || inst >= l.MaxInstances() {
		return frame.Reg{}, fmt.Errorf("directory of locality %d instance %d: out of the service's layout", loc, inst)
	}
	return frame.Reg{Site: site, Loc: uint16(loc), Role: frame.RoleDirectory, Key: l.Key(site, loc, inst)}, nil
}

// RequestEntries sends an entry-point request; the answer arrives as an
// Entries frame with the same reqID (see ParseEntries). site 0 asks for
// random members only.
func (c *Client) RequestEntries(ctx context.Context, reqID uint32, site ids.SiteID, loc, n int) error {
	if loc < 0 || loc > 0xffff || n < 0 || n > 0xff {
		return fmt.Errorf("entry request: loc %d, n %d out of range", loc, n)
	}
	return c.Send(ctx, &frame.Frame{Type: frame.TEntryReq, ReqID: reqID, Site: site, Loc: uint16(loc), N: uint8(n)})
}

// ParseEntries returns the three lists of an Entries frame.
func ParseEntries(f frame.Frame) (Entries, error) {
	if f.Type != frame.TEntries {
		return Entries{}, fmt.Errorf("parse entries: got a %s frame", f.Type)
	}
	return Entries{ReqID: f.ReqID, Local: f.Local, Remote: f.Remote, Random: f.Random}, nil
}

// ParseEntriesJSON parses the JSON answer of GET /v1/entry.
func ParseEntriesJSON(b []byte) (Entries, error) {
	var j frame.EntriesJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Entries{}, fmt.Errorf("parse entries json: %w", err)
	}
	e := Entries{Loc: j.Loc}
	if j.Site != "" {
		v, err := frame.ParseHex64(j.Site)
		if err != nil {
			return Entries{}, fmt.Errorf("parse entries json: site: %w", err)
		}
		e.Site = ids.SiteID(v)
	}
	var err error
	if e.Local, err = frame.ParseMembersJSON(j.Local); err != nil {
		return Entries{}, fmt.Errorf("parse entries json: local: %w", err)
	}
	if e.Remote, err = frame.ParseMembersJSON(j.Remote); err != nil {
		return Entries{}, fmt.Errorf("parse entries json: remote: %w", err)
	}
	if e.Random, err = frame.ParseMembersJSON(j.Random); err != nil {
		return Entries{}, fmt.Errorf("parse entries json: random: %w", err)
	}
	return e, nil
}

// Empty reports whether the answer lists no member at all.
func (e Entries) Empty() bool { return len(e.Local)+len(e.Remote)+len(e.Random) == 0 }

// FetchEntries asks a bootstrap service's HTTP API (base: http(s)://host:port)
// for the entry points of site (an origin) in locality loc: GET /v1/entry.
func FetchEntries(ctx context.Context, hc *webfetch.Client, base, site string, loc int) (Entries, error) {
	u := fmt.Sprintf("%s/v1/entry?site=%s&loc=%d", strings.TrimSuffix(base, "/"), url.QueryEscape(site), loc)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Entries{}, fmt.Errorf("entries: %w", err)
	}
	resp, err := webfetch.Do(hc, req)
	if err != nil {
		return Entries{}, fmt.Errorf("entries: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Entries{}, fmt.Errorf("entries: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Entries{}, fmt.Errorf("entries: %s: %s", u, resp.Status)
	}
	return ParseEntriesJSON(b)
}
