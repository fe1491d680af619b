package worker

import (
	"encoding/json"
	"fmt"
)

// SettingsDoc is the IndexedDB document holding the visitor's settings
// (docs/browser.md, "The visitor's controls"): the page-side peer reads it
// when it starts, the dashboard's controls write it, and the worker reads
// Left.
const SettingsDoc = "visitor"

// Settings are the visitor's choices, for the site of the origin.
type Settings struct {
	// Paused: the peer neither uploads nor takes a directory role.
	Paused bool `json:"paused"`
	// UploadLimit caps the peer's upload rate in bytes per second (0:
	// none).
	UploadLimit int64 `json:"uploadLimit"`
	// Left: the visitor left the site's Flower-CDN: the peer does not join
	// its petal, and the worker passes the site's requests through.
	Left bool `json:"left"`
}

// ParseSettings decodes the settings document (nil or empty: defaults).
func ParseSettings(b []byte) (Settings, error) {
	var s Settings
	if len(b) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Settings{}, fmt.Errorf("worker: settings document: %w", err)
	}
	if s.UploadLimit < 0 {
		s.UploadLimit = 0
	}
	return s, nil
}

// Marshal encodes the settings document.
func (s Settings) Marshal() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("worker: settings: %v", err)) // plain data: cannot fail
	}
	return b
}

// SetLeft says whether the visitor left the site: while so, the worker
// handles none of its requests (Shares is false, Handle answers ErrPass)
// and the browser sends them to the network as it would without
// Flower-CDN.
func (w *Worker) SetLeft(left bool) { w.left.Store(left) }

// Left reports SetLeft's setting.
func (w *Worker) Left() bool { return w.left.Load() }
