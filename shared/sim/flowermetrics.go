package sim

import (
	"slices"
	"time"

	"github.com/flowercdn/flower/shared/core"
)

// metrics summarises the run: the partitions' counters merged.
func (f *flower) metrics() *Metrics {
	tr := newTraffic(flowerTraffic)
	anom := map[string]int64{}
	var events int64
	var now time.Duration
	for _, pt := range f.parts {
		for i, b := range pt.tr.bytes {
			tr.bytes[i] += b
		}
		tr.msgs += pt.tr.msgs
		tr.dropped += pt.tr.dropped
		for k, v := range pt.anom {
			anom[k] += v
		}
		events += pt.events
		now = max(now, pt.now)
	}
	m := summarize(f.w, &f.res, f.epoch, &tr)
	m.Events = events
	m.SimulatedS = round3(now.Seconds())
	m.Directory = f.dirMetrics()
	if u := f.untracked(); len(u) > 0 {
		anom["dir_positions_untracked"] += int64(len(u))
	}
	m.OriginReasons = map[string]int64{}
	for _, d := range f.drv {
		st := d.Node().Stats()
		for k, v := range st.Origin {
			m.OriginReasons[k] += int64(v)
		}
		if st.EntryFailures > 0 {
			anom["entry_request_failures"] += int64(st.EntryFailures)
		}
		if ds := d.Stats(); ds.BadFrames+ds.EncodeErrors > 0 {
			anom["wire_errors"] += ds.BadFrames + ds.EncodeErrors
		}
	}
	if len(anom) > 0 {
		m.Anomalies = anom
	}
	return m
}

// dirMetrics summarises the directory figures at the end of the run.
func (f *flower) dirMetrics() *DirMetrics {
	b := &f.boot
	d := &DirMetrics{
		Repairs:              int64(len(b.repairs)),
		Failures:             b.failures,
		VacantAtEnd:          int64(len(b.vacant)),
		PositionsEnd:         int64(len(b.holders)),
		MaxInstancesPerPetal: int64(b.maxInst),
		DirectoryRoleChanges: b.dirChanges,
		HolderConflicts:      b.conflicts,
		MaxHoldersPerKey:     int64(max(b.maxHolders, 1)),
		RolesEnd:             map[string]int64{},
	}
	repairs := slices.Clone(b.repairs)
	slices.Sort(repairs)
	d.RepairMsMean = round3(mean(repairs))
	d.RepairMsP95 = round3(percentile(repairs, 0.95))
	for i, c := range b.petalLive {
		if c > 0 {
			d.PetalsWithDir++
		}
		if b.petalSplit[i] {
			d.PetalsSplit++
		}
	}
	for p, drv := range f.drv {
		if f.online[p] {
			for _, s := range f.w.Interests(int32(p)) {
				d.RolesEnd[drv.Node().Role(f.w.SiteIDs[s]).String()]++
			}
			if int32(p) >= f.w.seedFrom && int32(p) < f.w.seedTo {
				d.SeederPositionsEnd += int64(len(drv.Node().DirKeys()))
			}
		}
	}
	return d
}

// untracked lists the online nodes whose D-ring positions, as registered with
// the bootstrap service, differ from what the node says it holds (DirKeys).
func (f *flower) untracked() []int32 {
	var out []int32
	for p, drv := range f.drv {
		if !f.online[p] {
			continue
		}
		keys := drv.Node().DirKeys()
		n := 0
		same := true
		for _, r := range f.regs[p] {
			if r.Role == core.RoleDirectory {
				n++
				same = same && slices.Contains(keys, r.Key)
			}
		}
		if !same || n != len(keys) {
			out = append(out, int32(p))
		}
	}
	return out
}
