package rtc

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func signalSeeds() []signal {
	return []signal{
		{kind: sigOffer, session: 1, sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"},
		{kind: sigAnswer, session: 1<<63 + 5, sdp: "v=0\r\n"},
		{kind: sigCandidate, session: 7, cand: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", mid: "0", mline: 0},
		{kind: sigCandidate, session: 7, cand: "", mline: noMLineIndex},
		{kind: sigBye, session: 9, reason: byeRefused},
		{kind: sigBye, session: 9, reason: byeClosed},
	}
}

func TestSignalRoundTrip(t *testing.T) {
	for _, s := range signalSeeds() {
		b, err := s.encode()
		if err != nil {
			t.Fatalf("%v: %v", s.kind, err)
		}
		got, err := decodeSignal(b)
		if err != nil {
			t.Fatalf("%v: %v", s.kind, err)
		}
		if got != s {
			t.Fatalf("round trip %+v -> %+v", s, got)
		}
	}
	bad := []signal{
		{kind: sigOffer, session: 0, sdp: "v=0"},
		{kind: sigOffer, session: 1, sdp: ""},
		{kind: sigOffer, session: 1, sdp: "v=0\x00"},
		{kind: sigCandidate, session: 1, cand: strings.Repeat("x", maxCandidateLen+1)},
		{kind: sigBye, session: 1, reason: 7},
		{kind: 9, session: 1},
	}
	for _, s := range bad {
		if _, err := s.encode(); !errors.Is(err, errSignal) {
			t.Fatalf("%+v encoded: %v", s, err)
		}
	}
	for _, b := range [][]byte{nil, {1}, {2, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'v'}, append([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, MaxSignalSize)...)} {
		if _, err := decodeSignal(b); err == nil {
			t.Fatalf("decoded %x", b)
		}
	}
}

func FuzzDecodeSignal(f *testing.F) {
	for _, s := range signalSeeds() {
		b, err := s.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSignal(b)
		if err != nil {
			return
		}
		again, err := s.encode()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", s, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b)
		}
	})
}

func frameSeeds() [][]byte {
	chunk := make([]byte, chunkHeaderSize+3)
	putChunkHeader(chunk, 42)
	copy(chunk[chunkHeaderSize:], "abc")
	return [][]byte{
		appendMsg(nil, []byte("core message")),
		appendMsg(nil, nil),
		appendReason(nil, fCancel, 42, reasonRefused),
		appendCredit(nil, 42, 1<<20),
		appendStart(nil, 42, 1<<20, []byte("statement")),
		chunk,
		appendQID(nil, fEnd, 42),
		appendReason(nil, fAbort, 42, reasonAck),
	}
}

func TestFrames(t *testing.T) {
	for _, b := range frameSeeds() {
		ctl := onControl(b[0])
		f, err := decodeFrame(b, ctl)
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if f.typ != fMsg && f.qid != 42 {
			t.Fatalf("%x: qid %d", b, f.qid)
		}
		if _, err := decodeFrame(b, !ctl); err == nil {
			t.Fatalf("%x accepted on the wrong channel", b)
		}
	}
	bad := [][]byte{
		{},
		{0},
		{byte(fStart), 0, 0, 0, 0, 0, 0, 0, 1},
		appendStart(nil, 1, maxObjectSize+1, nil),
		appendStart(nil, 1, 5, make([]byte, MaxMetaSize+1)),
		append(appendStart(nil, 1, 5, []byte("ab")), 'c'),
		appendQID(nil, fChunk, 1),
		append(appendQID(nil, fChunk, 1), make([]byte, MaxChunkSize+1)...),
		append(appendQID(nil, fEnd, 1), 0),
		appendReason(nil, fAbort, 1, 0),
		appendReason(nil, fAbort, 1, maxReason+1),
		appendCredit(nil, 1, -1),
		appendQID(nil, fCredit, 1),
	}
	for _, b := range bad {
		if _, err := decodeFrame(b, false); !errors.Is(err, errFrame) {
			t.Fatalf("%x accepted", b)
		}
	}
	if _, err := decodeFrame(appendMsg(nil, make([]byte, MaxMessageSize+1)), true); err == nil {
		t.Fatal("oversized message accepted")
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, b := range frameSeeds() {
		f.Add(b, onControl(b[0]))
	}
	f.Fuzz(func(t *testing.T, b []byte, ctl bool) {
		fr, err := decodeFrame(b, ctl)
		if err != nil {
			return
		}
		var again []byte
		switch fr.typ {
		case fMsg:
			again = appendMsg(nil, fr.data)
		case fStart:
			again = appendStart(nil, fr.qid, fr.size, fr.meta)
		case fChunk:
			again = make([]byte, chunkHeaderSize, chunkHeaderSize+len(fr.data))
			putChunkHeader(again, fr.qid)
			again = append(again, fr.data...)
		case fEnd:
			again = appendQID(nil, fEnd, fr.qid)
		case fCredit:
			again = appendCredit(nil, fr.qid, fr.size)
		case fAbort, fCancel:
			again = appendReason(nil, fr.typ, fr.qid, fr.reason)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b)
		}
	})
}

func onControl(t byte) bool {
	return t == byte(fMsg) || t == byte(fCancel) || t == byte(fCredit)
}
