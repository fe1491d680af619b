package sim

import "time"

// origin is the origin-only baseline: the browser cache (an LRU with the
// same per-peer quota as the other systems), then the origin.
type origin struct {
	base
	cache *lru
}

func newOrigin(w *World) *origin {
	return &origin{base: newBase(w, nil), cache: newLRU(w.quota)}
}

func (o *origin) up(int32)   {}
func (o *origin) down(int32) {}

func (o *origin) query(qi, p, obj int32) {
	if o.cache.get(p, obj) {
		if o.settle(qi, p) {
			o.res.set(qi, outLocal, 0, 0, 0)
		}
		return
	}
	ol := o.w.OriginLat(o.w.SiteOfObj(obj), o.w.Loc[p])
	o.res.transfer[qi] = int32(ol / time.Microsecond)
	o.q.push(event{at: o.now + 2*ol, kind: evOrDeliver, node: p, qid: uint64(qi)})
}

func (o *origin) handle(ev *event) {
	qi, p := int32(ev.qid), ev.node
	if !o.online[p] || !o.settle(qi, p) {
		return
	}
	o.res.out[qi] = outOrigin
	o.cache.add(p, o.w.Trace[o.w.QueryPos[qi]].Obj, o.w.ObjSize[o.w.Trace[o.w.QueryPos[qi]].Obj])
}
