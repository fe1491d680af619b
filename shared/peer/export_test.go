package peer

import "time"

// AgeManifests makes the manifests the peer holds look d older (tests of
// manifestRefresh).
func AgeManifests(p *Peer, d time.Duration) {
	for _, s := range p.sites {
		s.mu.Lock()
		s.manifestAt = s.manifestAt.Add(-d)
		s.mu.Unlock()
	}
}

// HeldObjects is the number of objects p holds for its Lookup caller to
// store (Config.CallerStores).
func HeldObjects(p *Peer) int { return p.held.count() }
