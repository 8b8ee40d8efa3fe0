package token

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/latch-auth/latch"
)

// counter is a deterministic "random" source: 0, 1, 2, ...
type counter struct{ n byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

func mustOpaque(tb testing.TB, kind latch.TokenKind) string {
	tb.Helper()
	tok, err := NewOpaque(kind, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestOpaque_RoundTrip_KeepsKind(t *testing.T) {
	for _, tc := range []struct {
		kind   latch.TokenKind
		prefix string
	}{
		{latch.KindAccess, PrefixAccess},
		{latch.KindRefresh, PrefixRefresh},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			tok := mustOpaque(t, tc.kind)
			if !strings.HasPrefix(tok, tc.prefix) || len(tok) != opaqueLen {
				t.Fatalf("NewOpaque = %q, want prefix %q and length %d", tok, tc.prefix, opaqueLen)
			}
			kind, err := ParseOpaque(tok)
			if err != nil || kind != tc.kind {
				t.Fatalf("ParseOpaque(%q) = %q, %v; want %q", tok, kind, err, tc.kind)
			}
		})
	}
}

func TestNewOpaque_UnknownKind_IsRefused(t *testing.T) {
	if _, err := NewOpaque("id", nil); err == nil {
		t.Fatal("NewOpaque(\"id\") succeeded")
	}
}

func TestNewOpaque_RandomnessComesFromReader(t *testing.T) {
	a, err := NewOpaque(latch.KindAccess, &counter{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewOpaque(latch.KindAccess, &counter{})
	if a != b {
		t.Fatalf("same reader, different tokens: %q, %q", a, b)
	}
	var want [32]byte
	(&counter{}).Read(want[:])
	if body := a[prefixLen : prefixLen+opaqueBodyLen]; body != b64.EncodeToString(want[:]) {
		t.Fatalf("body %q is not base64url of the reader's bytes", body)
	}
	// Pinned, so a change of format is a conscious one.
	if a != "lt_at_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8GRWN_A" {
		t.Errorf("NewOpaque(counter) = %q", a)
	}
	r, _ := NewOpaque(latch.KindRefresh, &counter{})
	if r[prefixLen:prefixLen+opaqueBodyLen] != a[prefixLen:prefixLen+opaqueBodyLen] || r[prefixLen+opaqueBodyLen:] == a[prefixLen+opaqueBodyLen:] {
		t.Errorf("checksum does not cover the prefix: %q vs %q", r, a)
	}
}

func TestNewOpaque_ShortReader_IsAnError(t *testing.T) {
	if _, err := NewOpaque(latch.KindAccess, iotest.ErrReader(errors.New("boom"))); err == nil {
		t.Fatal("NewOpaque with a failing reader succeeded")
	}
	if _, err := NewOpaque(latch.KindAccess, bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("NewOpaque with 31 random bytes succeeded")
	}
}

func TestParseOpaque_EverySingleCharacterMutation_IsRefused(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. \x00\xff"
	for _, kind := range []latch.TokenKind{latch.KindAccess, latch.KindRefresh} {
		tok, err := NewOpaque(kind, &counter{n: 7})
		if err != nil {
			t.Fatal(err)
		}
		b := []byte(tok)
		n := 0
		for i := range b {
			orig := b[i]
			for j := 0; j < len(alphabet); j++ {
				if alphabet[j] == orig {
					continue
				}
				b[i] = alphabet[j]
				if k, err := ParseOpaque(string(b)); !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseOpaque(%q) = %q, %v; want ErrMalformed", b, k, err)
				}
				n++
			}
			b[i] = orig
		}
		t.Logf("%s: %d mutations refused", kind, n)
	}
}

func TestParseOpaque_BadForms_AreMalformed(t *testing.T) {
	good := mustOpaque(t, latch.KindAccess)
	body := good[prefixLen:]
	for _, tc := range []struct{ name, raw string }{
		{"empty", ""},
		{"prefix only", PrefixAccess},
		{"wrong prefix", "lt_xx_" + body},
		{"uppercase prefix", "LT_AT_" + body},
		{"jwt-like", "eyJhbGciOiJFUzI1NiJ9." + body},
		{"one short", good[:len(good)-1]},
		{"one long", good + "A"},
		{"padding", good[:len(good)-1] + "="},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good[:prefixLen]) + strings.NewReplacer("-", "+", "_", "/").Replace(body) + "+"},
		{"wrong checksum", good[:len(good)-6] + "AAAAAA"},
		{"swapped halves", good[:prefixLen] + body[20:43] + body[:20] + body[43:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseOpaque(tc.raw); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseOpaque(%q) = %v, want ErrMalformed", tc.raw, err)
			}
		})
	}
}

func TestParseOpaque_NonCanonicalBase64_IsRefused(t *testing.T) {
	// The last body character carries 2 unused bits; setting them encodes
	// the same bytes differently. Fix the checksum so only canonicity fails.
	good, _ := NewOpaque(latch.KindAccess, &counter{})
	last := good[prefixLen+opaqueBodyLen-1] // '8' for this reader's bytes
	i := strings.IndexByte(base64URLAlphabet, last)
	if i%4 != 0 {
		t.Fatalf("unexpected last char %q", last)
	}
	b := []byte(good)
	b[prefixLen+opaqueBodyLen-1] = base64URLAlphabet[i+1]
	var sum [4]byte
	c := crc32IEEE(b[:prefixLen+opaqueBodyLen])
	sum[0], sum[1], sum[2], sum[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	copy(b[prefixLen+opaqueBodyLen:], b64.EncodeToString(sum[:]))
	if _, err := ParseOpaque(string(b)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("ParseOpaque(non-canonical %q) = %v, want ErrMalformed", b, err)
	}
}

func TestHash_IsSHA256OfRawString(t *testing.T) {
	tok := mustOpaque(t, latch.KindRefresh)
	want := sha256.Sum256([]byte(tok))
	if got := Hash(tok); !bytes.Equal(got, want[:]) || len(got) != 32 {
		t.Fatalf("Hash = %x, want %x", got, want)
	}
}

func TestNewIDAndSecret_LengthAndReader(t *testing.T) {
	id, err := NewID(&counter{})
	if err != nil || id != "AAECAwQFBgcICQoLDA0ODw" {
		t.Fatalf("NewID(counter) = %q, %v", id, err)
	}
	sec, err := NewSecret(&counter{})
	if err != nil || sec != "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" {
		t.Fatalf("NewSecret(counter) = %q, %v", sec, err)
	}
	a, _ := NewID(nil)
	b, _ := NewID(nil)
	if a == b || len(a) != 22 {
		t.Fatalf("NewID(nil) = %q, %q", a, b)
	}
	if _, err := NewSecret(iotest.ErrReader(errors.New("boom"))); err == nil {
		t.Fatal("NewSecret with a failing reader succeeded")
	}
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
