package wire

import (
	"github.com/bits-and-blooms/bloom/v3"
)

// Size returns the exact length of the frame Encode(m) produces, computed
// arithmetically: it neither encodes nor allocates, so a simulator can call
// it for every message it accounts. Size does not check limits: for a
// message that Encode rejects it returns the length the frame would have.
// It returns 0 when m is nil, a nil pointer or not a message of this package.
func Size(m Msg) int {
	switch v := m.(type) {
	case *Query:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.QID) + 3*u64Len + peerLen + 1 + uvarintLen(uint64(v.Hops)) + 1
	case *Miss:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.QID) + 2*u64Len
	case *NotFound:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.QID) + 3*u64Len + 1 + sizeDir(v.Dir) + sizeView(v.View)
	case *InitView:
		if v == nil {
			return 0
		}
		return headerLen + u64Len + sizeDir(v.Dir) + sizeView(v.View)
	case *Shuffle:
		if v == nil {
			return 0
		}
		return headerLen + u64Len + 1 + sizeDir(v.Dir) + sizeView(v.View) + sizeBloom(v.Summary)
	case *Push:
		if v == nil {
			return 0
		}
		return headerLen + 2*u64Len + 1 + sizeList(len(v.Added), u64Len) + sizeList(len(v.Removed), u64Len) + uvarintLen(uint64(v.Up))
	case *PushAck:
		if v == nil {
			return 0
		}
		return headerLen + 2*u64Len + 1 + sizeDir(v.Dir)
	case *DirSummary:
		if v == nil {
			return 0
		}
		return headerLen + u64Len + memberLen + sizeBloom(v.Summary) + sizeList(len(v.Dirs), memberLen) +
			sizeList(len(v.Added), u64Len)
	case *FindSucc:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.ReqID) + u64Len + peerLen + uvarintLen(uint64(v.Hops))
	case *FoundSucc:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.ReqID) + u64Len + memberLen + uvarintLen(uint64(v.Hops))
	case *GetPred:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.ReqID) + u64Len
	case *PredReply:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.ReqID) + 1 + memberLen + sizeList(len(v.Succs), memberLen)
	case *Join:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.ReqID) + memberLen
	case *JoinReply:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.ReqID) + 1 + memberLen + sizeList(len(v.Succs), memberLen)
	case *Notify:
		if v == nil {
			return 0
		}
		return headerLen + u64Len + memberLen
	case *Ping:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.ReqID) + u64Len
	case *Pong:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.ReqID) + 1
	case *Promote:
		if v == nil {
			return 0
		}
		return headerLen + 2*u64Len + uvarintLen(uint64(v.Gen)) + sizeList(len(v.Dirs), memberLen)
	case *Served:
		if v == nil {
			return 0
		}
		return headerLen + uvarintLen(v.QID) + peerLen
	}
	return 0
}

// sizeList is the size of a count followed by n fixed-size elements.
func sizeList(n, elem int) int {
	return uvarintLen(uint64(n)) + n*elem
}

func sizeDir(d DirInfo) int {
	return memberLen + uvarintLen(uint64(d.Gen))
}

func sizeView(view []Contact) int {
	n := uvarintLen(uint64(len(view))) + len(view)*minContact
	for i := range view {
		if view[i].Age >= 1<<7 {
			n += uvarintLen(uint64(view[i].Age)) - 1
		}
	}
	return n
}

func sizeBloom(f *bloom.BloomFilter) int {
	if f == nil {
		return 1
	}
	m := f.Cap()
	nw := int(m/64) + int(min(m%64, 1))
	return 1 + uvarintLen(uint64(m)) + 1 + nw*u64Len
}
