package rtc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Every data-channel message is one frame: a type byte and a body. The
// channels carry them (docs/transport.md):
//
//	control channel "ctl":                   fMsg, fCancel, fCredit
//	object channels "obj", "obj1" … "obj7": fStart, fChunk, fEnd, fAbort
//	                (one transfer at a time on each)
//
//	fMsg    [1] payload (0..MaxMessageSize bytes), one core message
//	fStart  [2] qid u64, size u64, meta length u16, meta (0..MaxMetaSize)
//	fChunk  [3] qid u64, body bytes (1..MaxChunkSize)
//	fEnd    [4] qid u64                 the sender handed over all size bytes
//	fAbort  [5] qid u64, reason u8      the sender gave up (or acknowledges a cancel)
//	fCancel [6] qid u64, reason u8      the receiver refuses or gives up
//	fCredit [7] qid u64, allowed u64    the receiver allows body bytes [0, allowed)
//
// A sender may send the first initialCredit body bytes of a transfer
// without credit; beyond that only up to the largest allowed it received.
// All integers are big-endian.

const (
	// MaxMessageSize is the largest core message Send accepts.
	MaxMessageSize = 64 << 10
	// MaxChunkSize is the largest object body chunk (Config.ChunkSize).
	MaxChunkSize = 64 << 10
	// MaxMetaSize is the largest object header (the signed statement).
	MaxMetaSize = 4 << 10

	chunkHeaderSize = 1 + 8
	startFixedSize  = 1 + 8 + 8 + 2
	// maxFrameSize bounds every frame; the SCTP maximum message size is set
	// above it so a full chunk plus its header fits in one message.
	maxFrameSize = chunkHeaderSize + MaxChunkSize
	// maxObjectSize bounds the size an fStart may announce (1 TiB).
	maxObjectSize = 1 << 40
)

type frameType uint8

const (
	fMsg    frameType = 1
	fStart  frameType = 2
	fChunk  frameType = 3
	fEnd    frameType = 4
	fAbort  frameType = 5
	fCancel frameType = 6
	fCredit frameType = 7
)

// initialCredit is what a sender may send before the receiver's first fCredit.
const initialCredit = 256 << 10

// MaxTransfers is how many transfers one peer may have running towards
// another at once (counted from fStart to the fEnd or fAbort that ends it).
// It is also the number of object channels: a sender waits for a free one
// (a slot); a receiver disconnects a peer that starts a transfer on an
// object channel whose previous transfer has not ended.
const MaxTransfers = 8

// Reasons in fAbort and fCancel.
const (
	reasonCancelled uint8 = 1 // the sender's context ended / the receiver's Cancel
	reasonRefused   uint8 = 2 // the receiver's Handler.Object refused
	reasonSinkError uint8 = 3 // the receiver's Sink.Write failed
	reasonStalled   uint8 = 4 // no progress for Config.StallTimeout
	reasonShort     uint8 = 5 // the sender's body ended before size bytes
	reasonAck       uint8 = 6 // fAbort answering an fCancel
	maxReason             = reasonAck
)

var errFrame = errors.New("rtc: malformed frame")

// frame is a decoded frame. data and meta alias the input buffer.
type frame struct {
	typ    frameType
	qid    uint64
	size   int64 // fStart: object size; fCredit: allowed
	meta   []byte
	data   []byte
	reason uint8
}

func appendMsg(b, payload []byte) []byte {
	b = append(b, byte(fMsg))
	return append(b, payload...)
}

func appendStart(b []byte, qid uint64, size int64, meta []byte) []byte {
	b = append(b, byte(fStart))
	b = binary.BigEndian.AppendUint64(b, qid)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint16(b, uint16(len(meta)))
	return append(b, meta...)
}

// putChunkHeader writes the chunk header into b[:chunkHeaderSize].
func putChunkHeader(b []byte, qid uint64) {
	b[0] = byte(fChunk)
	binary.BigEndian.PutUint64(b[1:], qid)
}

func appendCredit(b []byte, qid uint64, allowed int64) []byte {
	b = appendQID(b, fCredit, qid)
	return binary.BigEndian.AppendUint64(b, uint64(allowed))
}

func appendQID(b []byte, t frameType, qid uint64) []byte {
	b = append(b, byte(t))
	return binary.BigEndian.AppendUint64(b, qid)
}

func appendReason(b []byte, t frameType, qid uint64, reason uint8) []byte {
	return append(appendQID(b, t, qid), reason)
}

// decodeFrame parses one frame from a peer. ctl says which channel it came
// from: a frame on the wrong channel is malformed.
func decodeFrame(b []byte, ctl bool) (frame, error) {
	var f frame
	if len(b) == 0 {
		return f, fmt.Errorf("%w: empty", errFrame)
	}
	if len(b) > maxFrameSize {
		return f, fmt.Errorf("%w: %d bytes", errFrame, len(b))
	}
	f.typ = frameType(b[0])
	body := b[1:]
	onCtl := f.typ == fMsg || f.typ == fCancel || f.typ == fCredit
	if onCtl != ctl {
		return f, fmt.Errorf("%w: type %d on the wrong channel", errFrame, b[0])
	}
	if f.typ != fMsg {
		if len(body) < 8 {
			return f, fmt.Errorf("%w: type %d: short", errFrame, b[0])
		}
		f.qid = binary.BigEndian.Uint64(body)
		body = body[8:]
	}
	switch f.typ {
	case fMsg:
		if len(body) > MaxMessageSize {
			return f, fmt.Errorf("%w: message of %d bytes", errFrame, len(body))
		}
		f.data = body
	case fStart:
		if len(body) < 10 {
			return f, fmt.Errorf("%w: short start", errFrame)
		}
		size := binary.BigEndian.Uint64(body)
		n := int(binary.BigEndian.Uint16(body[8:]))
		body = body[10:]
		if size > maxObjectSize || n > MaxMetaSize || len(body) != n {
			return f, fmt.Errorf("%w: start: size %d, meta %d of %d bytes", errFrame, size, n, len(body))
		}
		f.size, f.meta = int64(size), body
	case fChunk:
		if len(body) == 0 || len(body) > MaxChunkSize {
			return f, fmt.Errorf("%w: chunk of %d bytes", errFrame, len(body))
		}
		f.data = body
	case fCredit:
		if len(body) != 8 {
			return f, fmt.Errorf("%w: credit", errFrame)
		}
		f.size = int64(binary.BigEndian.Uint64(body))
		if f.size < 0 || f.size > maxObjectSize+initialCredit {
			return f, fmt.Errorf("%w: credit %d", errFrame, f.size)
		}
	case fEnd:
		if len(body) != 0 {
			return f, fmt.Errorf("%w: long end", errFrame)
		}
	case fAbort, fCancel:
		if len(body) != 1 || body[0] == 0 || body[0] > maxReason {
			return f, fmt.Errorf("%w: type %d: reason", errFrame, b[0])
		}
		f.reason = body[0]
	default:
		return f, fmt.Errorf("%w: type %d", errFrame, b[0])
	}
	return f, nil
}
