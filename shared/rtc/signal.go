package rtc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Signalling payloads travel through the bootstrap service, which relays
// opaque bytes of at most MaxSignalSize between authenticated peers. Layout
// (big-endian), documented in docs/transport.md:
//
//	0      version (signalVersion)
//	1      kind (sigOffer, sigAnswer, sigCandidate, sigBye)
//	2..9   session id (uint64, chosen by the offerer; never 0)
//	10..   body:
//	  offer, answer: the SDP text, the rest of the payload (1..MaxSignalSize-10 bytes)
//	  candidate:     u16 candidate length, candidate text, u8 mid length, mid text,
//	                 u16 m-line index (0xFFFF: none)
//	  bye:           u8 reason (byeRefused, byeClosed)

// MaxSignalSize is the largest payload the bootstrap service relays.
const MaxSignalSize = 16 << 10

const (
	signalVersion    = 1
	signalHeaderSize = 10
	maxCandidateLen  = 1024
	maxMidLen        = 64
	noMLineIndex     = 0xFFFF
)

type sigKind uint8

const (
	sigOffer     sigKind = 1
	sigAnswer    sigKind = 2
	sigCandidate sigKind = 3
	sigBye       sigKind = 4
)

func (k sigKind) String() string {
	switch k {
	case sigOffer:
		return "offer"
	case sigAnswer:
		return "answer"
	case sigCandidate:
		return "candidate"
	case sigBye:
		return "bye"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Reasons carried by a bye.
const (
	byeRefused uint8 = 1 // the callee has no room (connection budget) or is closing
	byeClosed  uint8 = 2 // the sender closed the session
)

// signal is one decoded signalling payload.
type signal struct {
	kind    sigKind
	session uint64
	sdp     string // offer, answer
	cand    string // candidate
	mid     string // candidate; "" means none
	mline   uint16 // candidate; noMLineIndex means none
	reason  uint8  // bye
}

var errSignal = errors.New("rtc: malformed signal")

func (s *signal) encode() ([]byte, error) {
	if s.session == 0 {
		return nil, fmt.Errorf("%w: zero session", errSignal)
	}
	b := make([]byte, signalHeaderSize, signalHeaderSize+len(s.sdp)+len(s.cand)+len(s.mid)+8)
	b[0] = signalVersion
	b[1] = byte(s.kind)
	binary.BigEndian.PutUint64(b[2:], s.session)
	switch s.kind {
	case sigOffer, sigAnswer:
		b = append(b, s.sdp...)
	case sigCandidate:
		if len(s.cand) > maxCandidateLen || len(s.mid) > maxMidLen {
			return nil, fmt.Errorf("%w: candidate of %d bytes, mid of %d", errSignal, len(s.cand), len(s.mid))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.cand)))
		b = append(b, s.cand...)
		b = append(b, byte(len(s.mid)))
		b = append(b, s.mid...)
		b = binary.BigEndian.AppendUint16(b, s.mline)
	case sigBye:
		b = append(b, s.reason)
	default:
		return nil, fmt.Errorf("%w: kind %v", errSignal, s.kind)
	}
	if _, err := decodeSignal(b); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeSignal parses and validates a payload from the network.
func decodeSignal(b []byte) (signal, error) {
	var s signal
	if len(b) < signalHeaderSize {
		return s, fmt.Errorf("%w: %d bytes", errSignal, len(b))
	}
	if len(b) > MaxSignalSize {
		return s, fmt.Errorf("%w: %d bytes exceed %d", errSignal, len(b), MaxSignalSize)
	}
	if b[0] != signalVersion {
		return s, fmt.Errorf("%w: version %d", errSignal, b[0])
	}
	s.kind = sigKind(b[1])
	s.session = binary.BigEndian.Uint64(b[2:])
	if s.session == 0 {
		return s, fmt.Errorf("%w: zero session", errSignal)
	}
	body := b[signalHeaderSize:]
	switch s.kind {
	case sigOffer, sigAnswer:
		if len(body) == 0 || !printable(body, true) {
			return s, fmt.Errorf("%w: bad %v sdp", errSignal, s.kind)
		}
		s.sdp = string(body)
	case sigCandidate:
		if len(body) < 2 {
			return s, fmt.Errorf("%w: short candidate", errSignal)
		}
		n := int(binary.BigEndian.Uint16(body))
		body = body[2:]
		if n > maxCandidateLen || len(body) < n+1 {
			return s, fmt.Errorf("%w: candidate length %d", errSignal, n)
		}
		cand := body[:n]
		body = body[n:]
		m := int(body[0])
		body = body[1:]
		if m > maxMidLen || len(body) != m+2 {
			return s, fmt.Errorf("%w: mid length %d", errSignal, m)
		}
		mid := body[:m]
		if !printable(cand, false) || !printable(mid, false) {
			return s, fmt.Errorf("%w: candidate text", errSignal)
		}
		s.cand, s.mid = string(cand), string(mid)
		s.mline = binary.BigEndian.Uint16(body[m:])
	case sigBye:
		if len(body) != 1 || (body[0] != byeRefused && body[0] != byeClosed) {
			return s, fmt.Errorf("%w: bye", errSignal)
		}
		s.reason = body[0]
	default:
		return s, fmt.Errorf("%w: kind %d", errSignal, b[1])
	}
	return s, nil
}

// printable accepts valid UTF-8 without control characters (CR and LF too
// when lines is set, as SDP needs them).
func printable(b []byte, lines bool) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 && !(lines && (c == '\r' || c == '\n')) || c == 0x7f {
			return false
		}
	}
	return true
}
