package interest

import (
	"slices"
	"testing"

	"github.com/flowercdn/flower/shared/ids"
)

func TestRoleString(t *testing.T) {
	for _, c := range []struct {
		r    Role
		want string
	}{
		{None, "none"}, {Client, "client"}, {Content, "content"}, {Directory, "directory"}, {Role(200), "none"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("Role(%d).String() = %q, want %q", c.r, got, c.want)
		}
	}
}

func TestEmpty(t *testing.T) {
	m := New()
	if len(m.Sites()) != 0 {
		t.Errorf("new manager has sites %v", m.Sites())
	}
	if r := m.Role(1); r != None {
		t.Errorf("Role of unknown site = %v", r)
	}
	if m.RemoveInterest(1) {
		t.Errorf("RemoveInterest on empty manager reported true")
	}
}

type op struct {
	kind string // add, remove, role
	ws   ids.SiteID
	role Role
	want bool // result of the call
}

func TestOperations(t *testing.T) {
	for _, c := range []struct {
		name  string
		ops   []op
		order []ids.SiteID
		roles map[ids.SiteID]Role // expected roles (absent: None)
	}{
		{
			name:  "add keeps insertion order",
			ops:   []op{{"add", 3, 0, true}, {"add", 1, 0, true}, {"add", 2, 0, true}},
			order: []ids.SiteID{3, 1, 2},
			roles: map[ids.SiteID]Role{1: Client, 2: Client, 3: Client},
		},
		{
			name:  "duplicate add reports false and keeps the role",
			ops:   []op{{"add", 5, 0, true}, {"role", 5, Directory, true}, {"add", 5, 0, false}},
			order: []ids.SiteID{5},
			roles: map[ids.SiteID]Role{5: Directory},
		},
		{
			name:  "remove from the middle",
			ops:   []op{{"add", 1, 0, true}, {"add", 2, 0, true}, {"add", 3, 0, true}, {"remove", 2, 0, true}},
			order: []ids.SiteID{1, 3},
			roles: map[ids.SiteID]Role{1: Client, 3: Client},
		},
		{
			name:  "remove first and last",
			ops:   []op{{"add", 1, 0, true}, {"add", 2, 0, true}, {"add", 3, 0, true}, {"remove", 1, 0, true}, {"remove", 3, 0, true}},
			order: []ids.SiteID{2},
			roles: map[ids.SiteID]Role{2: Client},
		},
		{
			name:  "remove unknown",
			ops:   []op{{"add", 1, 0, true}, {"remove", 9, 0, false}, {"remove", 1, 0, true}, {"remove", 1, 0, false}},
			order: nil,
		},
		{
			name: "re-add goes to the end with role Client",
			ops: []op{{"add", 1, 0, true}, {"add", 2, 0, true}, {"role", 1, Content, true},
				{"remove", 1, 0, true}, {"add", 1, 0, true}},
			order: []ids.SiteID{2, 1},
			roles: map[ids.SiteID]Role{1: Client, 2: Client},
		},
		{
			name:  "update role on unknown site does not whitelist it",
			ops:   []op{{"role", 7, Directory, false}, {"role", 7, Client, false}},
			order: nil,
		},
		{
			name:  "update role after removal",
			ops:   []op{{"add", 7, 0, true}, {"remove", 7, 0, true}, {"role", 7, Content, false}},
			order: nil,
		},
		{
			name: "role transitions",
			ops: []op{{"add", 1, 0, true},
				{"role", 1, Client, false}, // unchanged
				{"role", 1, Content, true},
				{"role", 1, Content, false},
				{"role", 1, Directory, true},
				{"role", 1, Client, true},
			},
			order: []ids.SiteID{1},
			roles: map[ids.SiteID]Role{1: Client},
		},
		{
			name:  "role None is refused and keeps the old role",
			ops:   []op{{"add", 1, 0, true}, {"role", 1, Directory, true}, {"role", 1, None, false}},
			order: []ids.SiteID{1},
			roles: map[ids.SiteID]Role{1: Directory},
		},
		{
			name:  "roles are per site",
			ops:   []op{{"add", 1, 0, true}, {"add", 2, 0, true}, {"role", 2, Directory, true}},
			order: []ids.SiteID{1, 2},
			roles: map[ids.SiteID]Role{1: Client, 2: Directory},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := New()
			for i, o := range c.ops {
				var got bool
				switch o.kind {
				case "add":
					got = m.AddInterest(o.ws)
				case "remove":
					got = m.RemoveInterest(o.ws)
				case "role":
					got = m.UpdateRole(o.ws, o.role)
				}
				if got != o.want {
					t.Errorf("op %d %s(%d, %v) = %v, want %v", i, o.kind, o.ws, o.role, got, o.want)
				}
			}
			if !slices.Equal(m.Sites(), c.order) {
				t.Errorf("Sites() = %v, want %v", m.Sites(), c.order)
			}
			for _, ws := range []ids.SiteID{1, 2, 3, 5, 7, 9} {
				if got := m.Role(ws); got != c.roles[ws] {
					t.Errorf("Role(%d) = %v, want %v", ws, got, c.roles[ws])
				}
			}
			// Every site in the order has a role, and only those do.
			for _, ws := range m.Sites() {
				if m.Role(ws) == None {
					t.Errorf("whitelisted %d has role None", ws)
				}
			}
		})
	}
}

// A long random sequence of operations keeps Sites() equal to a simple
// model (insertion order, no duplicates) every step.
func TestOrderMatchesModel(t *testing.T) {
	m := New()
	var model []ids.SiteID
	x := uint64(12345)
	for step := range 5000 {
		x = x*6364136223846793005 + 1442695040888963407
		ws := ids.SiteID(x >> 60) // 16 sites
		if x>>59&1 == 0 {
			want := !slices.Contains(model, ws)
			if got := m.AddInterest(ws); got != want {
				t.Fatalf("step %d: AddInterest(%d) = %v", step, ws, got)
			}
			if want {
				model = append(model, ws)
			}
		} else {
			want := slices.Contains(model, ws)
			if got := m.RemoveInterest(ws); got != want {
				t.Fatalf("step %d: RemoveInterest(%d) = %v", step, ws, got)
			}
			model = slices.DeleteFunc(model, func(s ids.SiteID) bool { return s == ws })
		}
		if !slices.Equal(m.Sites(), model) {
			t.Fatalf("step %d: Sites() = %v, want %v", step, m.Sites(), model)
		}
	}
}
