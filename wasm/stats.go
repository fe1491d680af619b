//go:build js && wasm

package main

import (
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/peer"
	"github.com/flowercdn/flower/worker"
)

// Stats is what flower.stats() returns (docs/browser.md): the visitor's
// requests as the service worker answered them, and the page-side peer's
// part in the site's petal.
type Stats struct {
	Site      string `json:"site"`
	Peer      string `json:"peer"` // the peer's id (short)
	Role      string `json:"role"` // none, client, content or directory
	Locality  int    `json:"locality"`
	Contacts  int    `json:"contacts"`  // petal contacts in the view
	Directory string `json:"directory"` // the petal's directory peer (short id), "" if none known
	// Objects and BytesCached: what the peer holds and serves.
	Objects     int   `json:"objects"`
	BytesCached int64 `json:"bytesCached"`
	// Requests and bytes by where the answer came from: the own cache, a
	// peer, or the origin.
	Requests Sources `json:"requests"`
	Bytes    Sources `json:"bytes"`
	// Mean time to the first byte of answers from peers and from the
	// origin, in milliseconds (0: none yet).
	TTFBPeerMs   float64 `json:"ttfbPeerMs"`
	TTFBOriginMs float64 `json:"ttfbOriginMs"`
	// VerifyFailures: objects from peers that failed verification.
	VerifyFailures int64 `json:"verifyFailures"`
	Uploads        int64 `json:"uploads"`
	BytesUploaded  int64 `json:"bytesUploaded"`
	UptimeSeconds  int64 `json:"uptimeSeconds"`
	// Controls: the visitor's settings, the device's state, and the
	// restrictions they give (visitor.go).
	Controls Controls `json:"controls"`
	// The raw counters of both sides.
	Worker    worker.Snapshot `json:"worker"`
	PeerStats peer.Stats      `json:"peerStats"`
}

// Sources counts by source.
type Sources struct {
	Cache  int64 `json:"cache"`
	Peers  int64 `json:"peers"`
	Origin int64 `json:"origin"`
}

func (pp *pagePeer) stats() Stats {
	s := Stats{Site: pp.origin, Peer: pp.p.ID().Short(), Locality: pp.p.Locality(), PeerStats: pp.p.Stats()}
	pp.p.Node(func(n *core.Node) {
		s.Role = n.Role(pp.site).String()
		s.Contacts = n.ViewLen(pp.site)
		if d := n.DirInfo(pp.site); !d.Member.IsZero() {
			s.Directory = d.Member.ID.Short()
		}
		for _, ss := range n.Snapshot().Sites {
			if ss.Site != pp.site {
				continue
			}
			s.Objects = len(ss.Objects)
			for _, o := range ss.Objects {
				s.BytesCached += o.Size
			}
		}
	})
	s.Worker, _ = worker.SavedStats(pp.st)
	w := s.Worker
	s.Requests = Sources{Cache: w.FromCache, Peers: w.FromPeers, Origin: w.FromOrigin}
	s.Bytes = Sources{Cache: w.BytesFromCache, Peers: w.BytesFromPeers, Origin: w.BytesFromOrigin}
	if w.PeerTTFBN > 0 {
		s.TTFBPeerMs = float64(w.PeerTTFBMicros) / float64(w.PeerTTFBN) / 1000
	}
	if w.OriginTTFBN > 0 {
		s.TTFBOriginMs = float64(w.OriginTTFBMicros) / float64(w.OriginTTFBN) / 1000
	}
	s.VerifyFailures = w.VerifyFailures + s.PeerStats.VerifyFailures
	s.Uploads, s.BytesUploaded = s.PeerStats.Served, s.PeerStats.BytesUploaded
	s.UptimeSeconds = int64(time.Since(pp.started).Seconds())
	s.Controls = pp.ctl.snapshot()
	return s
}
