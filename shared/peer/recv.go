package peer

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/flowercdn/flower/shared/core"
	"github.com/flowercdn/flower/shared/ids"
	"github.com/flowercdn/flower/shared/security"
)

// The meta of an object transfer: the first thing a serving peer sends.
//
//	u8  format (1)
//	u16 the sender's locality (informative: not verified)
//	    the site's signed statement (security.Signed, encoded)
const metaFormat = 1

// ErrBadMeta is wrapped by decodeMeta's errors.
var ErrBadMeta = errors.New("peer: malformed transfer meta")

func encodeMeta(loc int, statement []byte) []byte {
	b := make([]byte, 0, 3+len(statement))
	b = append(b, metaFormat)
	b = binary.BigEndian.AppendUint16(b, uint16(loc))
	return append(b, statement...)
}

// decodeMeta reads the meta of an incoming transfer (untrusted bytes).
func decodeMeta(b []byte) (loc int, st security.Signed, raw []byte, err error) {
	if len(b) < 3 {
		return 0, st, nil, fmt.Errorf("%d bytes: %w", len(b), ErrBadMeta)
	}
	if b[0] != metaFormat {
		return 0, st, nil, fmt.Errorf("format %d: %w", b[0], ErrBadMeta)
	}
	loc = int(binary.BigEndian.Uint16(b[1:3]))
	raw = b[3:]
	if st, err = security.DecodeSigned(raw); err != nil {
		return 0, st, nil, fmt.Errorf("%w: %w", ErrBadMeta, err)
	}
	return loc, st, raw, nil
}

// incoming takes the start of an object a peer sends for one of the peer's
// queries. The statement is checked at once (signature, URL): a bad one
// never gets a byte of body in. The body is verified in full when it ends.
func (p *Peer) incoming(from ids.PeerID, qid uint64, meta []byte, size int64) (Sink, error) {
	// meta is the transport's buffer, valid only during this call.
	loc, signed, raw, merr := decodeMeta(append([]byte(nil), meta...))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("peer: closed")
	}
	q := p.queries[qid]
	switch {
	case q == nil:
		return nil, fmt.Errorf("peer: no query %d", qid) // late: the query moved on
	case q.receiving:
		return nil, fmt.Errorf("peer: query %d already receiving", qid)
	case size < 0 || size > p.cfg.MaxObjectSize:
		p.stats.transferFailures.Add(1)
		p.drv.DeliveryFailed(p.now(), qid, from, core.FailTransfer)
		p.rearm()
		return nil, fmt.Errorf("peer: object of %d bytes, limit %d", size, p.cfg.MaxObjectSize)
	}
	err := merr
	if err == nil {
		err = security.VerifyStatement(q.site.key, signed, q.url, time.Now())
	}
	if err != nil {
		why := core.FailBadObject
		if errors.Is(err, security.ErrExpired) {
			// A valid statement past its expiry: a stale copy or a clock
			// off by a little, not a forgery. The query moves on without
			// avoiding the sender.
			why = core.FailTransfer
			p.stats.transferFailures.Add(1)
			p.log.Debug("expired object from peer", "peer", from.Short(), "url", q.url)
		} else {
			p.stats.verifyFailures.Add(1)
			q.site.ctr.verifyFailures.Add(1)
			p.log.Warn("bad object from peer", "peer", from.Short(), "url", q.url, "err", err)
		}
		p.drv.DeliveryFailed(p.now(), qid, from, why)
		p.rearm()
		return nil, fmt.Errorf("peer: object for query %d: %w", qid, err)
	}
	q.receiving = true
	q.firstByte = time.Now()
	p.drv.Receiving(p.now(), qid, from)
	p.rearm()
	if q.onReceiving != nil {
		go q.onReceiving()
	}
	s := &recvSink{p: p, q: q, qid: qid, from: from, loc: loc, size: size, signed: signed, raw: raw}
	s.buf = make([]byte, 0, min(size, 1<<20)) // size is the sender's word: see Write
	s.hash = sha256.New()
	s.timer = time.AfterFunc(p.cfg.transferBudget(size), func() { p.net.Cancel(from, qid) })
	return s, nil
}

// recvSink collects one object's body, verifies it, stores it and tells
// the core.
type recvSink struct {
	p      *Peer
	q      *pending
	qid    uint64
	from   ids.PeerID
	loc    int
	size   int64
	signed security.Signed
	raw    []byte
	timer  *time.Timer

	once sync.Once
	buf  []byte
	hash hash.Hash // SHA-256 of buf, computed as the chunks arrive
}

func (s *recvSink) Write(chunk []byte) error {
	if int64(len(s.buf))+int64(len(chunk)) > s.size {
		return fmt.Errorf("peer: more than the %d bytes announced", s.size)
	}
	if len(s.buf)+len(chunk) > cap(s.buf) {
		// The first MiB is taken on trust of nothing; once the sender
		// has really sent it, the buffer is made for the announced size
		// in one step (growing by doubling costs a copy and fresh pages
		// at every step: a tenth of a 16 MiB transfer's CPU).
		buf := make([]byte, len(s.buf), max(s.size, int64(len(s.buf)+len(chunk))))
		copy(buf, s.buf)
		s.buf = buf
	}
	s.buf = append(s.buf, chunk...)
	s.hash.Write(chunk)
	s.p.stats.bytesIn.Add(int64(len(chunk)))
	return nil
}

func (s *recvSink) Close(err error) { s.once.Do(func() { s.close(err) }) }

func (s *recvSink) close(err error) {
	p := s.p
	s.timer.Stop()
	if err == nil && int64(len(s.buf)) != s.size {
		err = fmt.Errorf("peer: %d of %d bytes", len(s.buf), s.size)
	}
	if err != nil {
		p.stats.transferFailures.Add(1)
		p.log.Debug("transfer failed", "peer", s.from.Short(), "url", s.q.url, "err", err)
		p.input(func(now time.Duration) {
			s.q.receiving = false
			p.drv.DeliveryFailed(now, s.qid, s.from, core.FailTransfer)
		})
		return
	}
	var digest [sha256.Size]byte
	s.hash.Sum(digest[:0])
	if err := security.VerifyDigest(s.q.site.key, s.signed, s.q.url, digest, len(s.buf), time.Now()); err != nil {
		s.buf = nil // dropped: nothing of it is stored or used
		why := core.FailBadObject
		if errors.Is(err, security.ErrExpired) {
			// Signature, URL and digest hold (VerifyDigest checks the
			// expiry last) and the statement was valid when the transfer
			// started: it expired on the way, which is no fault of the
			// sender's, so the query moves on without avoiding it.
			why = core.FailTransfer
			p.stats.transferFailures.Add(1)
			p.log.Debug("object expired during its transfer", "peer", s.from.Short(), "url", s.q.url)
		} else {
			p.stats.verifyFailures.Add(1)
			s.q.site.ctr.verifyFailures.Add(1)
			p.log.Warn("bad object from peer", "peer", s.from.Short(), "url", s.q.url, "err", err)
		}
		p.input(func(now time.Duration) {
			s.q.receiving = false
			p.drv.DeliveryFailed(now, s.qid, s.from, why)
		})
		return
	}
	e := Entry{Site: s.q.site.id, URL: s.q.url, Statement: s.raw, Size: s.size}
	var stored, kept bool
	if s.q.delegate && p.cfg.CallerStores {
		kept = p.holdFor(s.qid, s.q, e, s.signed.Version, s.buf)
	} else {
		stored, _ = p.storeFor(s.qid, s.q, e, s.signed.Version, s.buf)
	}
	obj := p.objectMeta(s.signed, s.size)
	p.input(func(now time.Duration) {
		s.q.receiving = false
		if p.queries[s.qid] == s.q {
			s.q.body, s.q.ctype, s.q.verified, s.q.provLoc = s.buf, s.signed.ContentType, true, s.loc
			s.q.statement = s.raw
			s.q.lastByte = time.Now()
			s.q.keep = kept
		}
		p.drv.Delivered(now, s.qid, s.from, obj)
		if stored {
			p.dropIfRefused(e, s.signed.Version)
		}
	})
}

// storeFor stores a verified object for query qid unless the node would
// not take it: the query is no longer the node's (it moved on), or the
// node caches a version as new. It reports whether it stored, and a store
// failure.
func (p *Peer) storeFor(qid uint64, q *pending, e Entry, version uint64, body []byte) (bool, error) {
	if !p.takes(qid, q, e, version) {
		return false, nil
	}
	if err := p.cfg.Store.Put(e, body); err != nil {
		p.stats.storeErrors.Add(1)
		p.log.Warn("store", "url", e.URL, "err", err)
		return false, err
	}
	return true, nil
}

// takes reports whether the node takes an object delivered for query qid:
// the query is still the node's and the node holds no version as new.
func (p *Peer) takes(qid uint64, q *pending, e Entry, version uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	take := !p.closed && p.queries[qid] == q
	if take {
		if v, ok := p.drv.Node().CachedVersion(e.Site, ids.ObjectOf(e.URL)); ok && v >= version {
			take = false
		}
	}
	return take
}

// dropIfRefused deletes a stored object the node did not cache after all
// (over the quota, already stale). Called under p.mu, after the input that
// offered it.
func (p *Peer) dropIfRefused(e Entry, version uint64) {
	obj := ids.ObjectOf(e.URL)
	if v, ok := p.drv.Node().CachedVersion(e.Site, obj); ok && v == version {
		return
	}
	if err := p.cfg.Store.Delete(e.Site, obj); err != nil {
		p.stats.storeErrors.Add(1)
		p.log.Warn("drop refused object", "url", e.URL, "err", err)
	}
}

// objectMeta is what the core keeps of a verified object: its expiry moved
// to the node's clock.
func (p *Peer) objectMeta(s security.Signed, size int64) core.Object {
	o := core.Object{Size: size, Version: s.Version}
	if s.Expires != 0 {
		o.Expires = max(time.Unix(s.Expires, 0).Sub(p.epoch), 1)
	}
	return o
}
