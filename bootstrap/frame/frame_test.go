package frame

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"testing"

	"github.com/flowercdn/flower/shared/ids"
)

func sampleFrames() []Frame {
	var nonce [NonceLen]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	p := ids.PeerID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	var key [PubKeyLen]byte
	var sig [SigLen]byte
	key[0], sig[63] = 7, 9
	return []Frame{
		{Type: TChallenge, Nonce: nonce, MaxFrame: MaxFrame, Localities: 16, InstanceBits: 3},
		{Type: TWelcome, Peer: p, PingInterval: 30},
		{Type: TError, Code: CodeUnknownTarget, Ref: TSignal, Peer: p, ReqID: 9, Text: "unknown target"},
		{Type: TDeliver, Peer: p, Payload: []byte("v=0 offer")},
		{Type: TEntries, ReqID: 3, Local: []ids.Member{{Key: 0x2a00000000000019, ID: p}, {Key: 0x2a0000000000001a, ID: ids.PeerID{9}}},
			Remote: []ids.Member{{Key: 0x2a00000000000008, ID: ids.PeerID{8}}}, Random: []ids.Member{{Key: 77, ID: ids.PeerID{7}}}},
		{Type: TEntries, ReqID: 4, Random: []ids.Member{{Key: 1, ID: p}}},
		{Type: TEntries, ReqID: 5},
		{Type: TGoAway, Retry: 1500, URLs: []string{"ws://a/v1/ws", "ws://b/v1/ws"}, Text: "shutting down"},
		{Type: TPong, ReqID: 77},
		{Type: THello, Key: key, Sig: sig},
		{Type: TRegister, Regs: []Reg{{Site: 42, Loc: 3, Role: RoleDirectory, Key: 0x19}, {Site: 43, Loc: 0, Role: RoleClient}}},
		{Type: TSignal, Peer: p, Payload: []byte{0, 1, 2}},
		{Type: TEntryReq, ReqID: 5, Site: 42, Loc: 3, N: 8},
		{Type: TPing, ReqID: 1},
		sampleReport(),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range sampleFrames() {
		b := f.Append(nil)
		g, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", f.Type, err)
		}
		if !reflect.DeepEqual(f, g) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", f.Type, g, f)
		}
		// Every strict prefix is rejected, never a panic.
		for i := 0; i < len(b); i++ {
			if _, err := Decode(b[:i]); err == nil && f.Type != TDeliver && f.Type != TSignal {
				t.Fatalf("%s: prefix %d/%d decoded", f.Type, i, len(b))
			}
		}
		if _, err := Decode(append(b, 0)); err == nil && f.Type != TDeliver && f.Type != TSignal {
			t.Fatalf("%s: trailing byte accepted", f.Type)
		}
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"version 1", []byte{1, byte(TPing), 0, 0, 0, 0}, ErrVersion},
		{"version 3", []byte{3, byte(TPing), 0, 0, 0, 0}, ErrVersion},
		{"unknown", []byte{Version, 0x7f}, ErrUnknownType},
		{"oversize", make([]byte, MaxFrame+1), ErrLimit},
		{"signal payload", append([]byte{Version, byte(TSignal)}, make([]byte, 16+MaxSignal+1)...), ErrLimit},
		{"too many regs", []byte{Version, byte(TRegister), MaxRegs + 1}, ErrLimit},
		{"bad role", append([]byte{Version, byte(TRegister), 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0), ErrInvalid},
		{"short reg", append([]byte{Version, byte(TRegister), 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 3), ErrShort},
		{"short entries", []byte{Version, byte(TEntries), 0, 0, 0, 0, 2, 1}, ErrShort},
		{"entries without lists", []byte{Version, byte(TEntries), 0, 0, 0, 0}, ErrShort},
		{"too many local", []byte{Version, byte(TEntries), 0, 0, 0, 0, MaxLocal + 1}, ErrLimit},
		{"too many remote", []byte{Version, byte(TEntries), 0, 0, 0, 0, 0, MaxRemote + 1}, ErrLimit},
		{"too many random", []byte{Version, byte(TEntries), 0, 0, 0, 0, 0, 0, MaxRandom + 1}, ErrLimit},
		{"short challenge", append([]byte{Version, byte(TChallenge)}, make([]byte, NonceLen+6)...), ErrShort},
	}
	for _, c := range cases {
		if _, err := Decode(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestAuthMessageBindsHostAndNonce(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	var n1, n2 [NonceLen]byte
	n2[0] = 1
	sig := ed25519.Sign(priv, AuthMessage("a.example:443", n1))
	if !ed25519.Verify(pub, AuthMessage("a.example:443", n1), sig) {
		t.Fatal("valid signature rejected")
	}
	if ed25519.Verify(pub, AuthMessage("b.example:443", n1), sig) {
		t.Fatal("signature relayed to another host accepted")
	}
	if ed25519.Verify(pub, AuthMessage("a.example:443", n2), sig) {
		t.Fatal("signature replayed for another nonce accepted")
	}
}

func TestHotPathEncoders(t *testing.T) {
	p := ids.PeerID{4}
	if got, want := AppendDeliver(nil, p, []byte("x")), (&Frame{Type: TDeliver, Peer: p, Payload: []byte("x")}).Append(nil); !bytes.Equal(got, want) {
		t.Fatalf("AppendDeliver %x != %x", got, want)
	}
	if got, want := AppendSignal(nil, p, []byte("x")), (&Frame{Type: TSignal, Peer: p, Payload: []byte("x")}).Append(nil); !bytes.Equal(got, want) {
		t.Fatalf("AppendSignal %x != %x", got, want)
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to the same bytes. The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, fr := range sampleFrames() {
		f.Add(fr.Append(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			return
		}
		out := fr.Append(nil)
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", b, out)
		}
		if _, err := Decode(out); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
