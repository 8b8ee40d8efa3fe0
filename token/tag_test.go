package token

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/latch-auth/latch"
)

func mustTagKey(tb testing.TB, fill byte) *TagKey {
	tb.Helper()
	k, err := NewTagKey(bytes.Repeat([]byte{fill}, MinTagKeyBytes))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// forgeTagged mints a token of the tagged form, with a valid CRC-32, under
// a key the verifier does not hold but naming the verifier's key id: what
// anyone can do without the key.
func forgeTagged(tb testing.TB, kid string) string {
	tb.Helper()
	other := mustTagKey(tb, 0xee)
	other.id = kid
	tok, err := NewTaggedOpaque(latch.KindAccess, other, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestTaggedOpaque_ForgedWithValidChecksum_IsRefusedByTag(t *testing.T) {
	key := mustTagKey(t, 1)
	keys := []*TagKey{mustTagKey(t, 2), key}
	good, err := NewTaggedOpaque(latch.KindAccess, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != taggedLen || !strings.HasPrefix(good, PrefixAccess) {
		t.Fatalf("NewTaggedOpaque = %q", good)
	}
	forged := forgeTagged(t, key.ID())
	// The CRC-32 alone cannot tell them apart.
	for _, tok := range []string{good, forged} {
		if kind, err := ParseOpaque(tok); err != nil || kind != latch.KindAccess {
			t.Fatalf("ParseOpaque(%q) = %q, %v", tok, kind, err)
		}
	}
	if kind, tag, err := CheckTag(good, keys); err != nil || tag != TagValid || kind != latch.KindAccess {
		t.Errorf("CheckTag(minted) = %q, %v, %v; want access, valid", kind, tag, err)
	}
	if _, _, err := CheckTag(forged, keys); !errors.Is(err, ErrForgedTag) || !errors.Is(err, ErrMalformed) {
		t.Errorf("CheckTag(forged) err = %v, want ErrForgedTag wrapping ErrMalformed", err)
	}
}

func TestCheckTag_UntaggedAndUnknownKey_AreLeftToTheIssuer(t *testing.T) {
	key := mustTagKey(t, 1)
	untagged, _ := NewOpaque(latch.KindAccess, nil)
	newer, _ := NewTaggedOpaque(latch.KindRefresh, mustTagKey(t, 3), nil)
	for _, tc := range []struct {
		name string
		raw  string
		kind latch.TokenKind
		tag  Tag
	}{
		{"untagged", untagged, latch.KindAccess, Untagged},
		{"key not held", newer, latch.KindRefresh, TagUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, tag, err := CheckTag(tc.raw, []*TagKey{key})
			if err != nil || kind != tc.kind || tag != tc.tag {
				t.Fatalf("CheckTag = %q, %v, %v; want %q, %v", kind, tag, err, tc.kind, tc.tag)
			}
		})
	}
}

func TestTaggedOpaque_EveryCharacterChanged_IsRefused(t *testing.T) {
	key := mustTagKey(t, 1)
	good, _ := NewTaggedOpaque(latch.KindAccess, key, &counter{})
	for i := range len(good) {
		b := []byte(good)
		b[i] ^= 0x01
		if _, tag, err := CheckTag(string(b), []*TagKey{key}); err == nil && tag == TagValid {
			t.Errorf("byte %d flipped: %q still has a valid tag", i, b)
		}
	}
}

func TestNewTagKey_ShortSecret_IsRefused(t *testing.T) {
	if _, err := NewTagKey(make([]byte, MinTagKeyBytes-1)); err == nil {
		t.Fatal("a 31-byte tag key was accepted")
	}
	if _, err := NewTaggedOpaque(latch.KindAccess, nil, nil); err == nil {
		t.Fatal("NewTaggedOpaque without a key succeeded")
	}
}

func TestTaggedOpaque_Pinned(t *testing.T) {
	key := mustTagKey(t, 1)
	tok, err := NewTaggedOpaque(latch.KindAccess, key, &counter{})
	if err != nil {
		t.Fatal(err)
	}
	// Pinned, so a change of format is a conscious one.
	const want = "lt_at_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	if !strings.HasPrefix(tok, want) || tok[len(want):len(want)+tagKeyIDLen] != key.ID() {
		t.Fatalf("NewTaggedOpaque(counter) = %q", tok)
	}
	t.Logf("pinned tagged token: %s (key id %s)", tok, key.ID())
}

// FuzzCheckTag: CheckTag never panics; a token it finds TagValid is exactly
// what NewTaggedOpaque makes of the same body under that key; and it never
// accepts what ParseOpaque refuses.
func FuzzCheckTag(f *testing.F) {
	key := mustTagKey(f, 1)
	for _, k := range []latch.TokenKind{latch.KindAccess, latch.KindRefresh} {
		tok, _ := NewTaggedOpaque(k, key, &counter{})
		f.Add(tok)
		f.Add(tok[:len(tok)-1])
		f.Add(tok[:opaqueLen])
		plain, _ := NewOpaque(k, &counter{})
		f.Add(plain)
	}
	f.Add(forgeTagged(f, key.ID()))
	f.Fuzz(func(t *testing.T, raw string) {
		kind, tag, err := CheckTag(raw, []*TagKey{key})
		if _, perr := ParseOpaque(raw); perr != nil {
			if err == nil {
				t.Fatalf("CheckTag accepted %q, which ParseOpaque refuses: %v", raw, perr)
			}
			return
		}
		if err != nil || tag != TagValid {
			return
		}
		body, derr := b64.DecodeString(raw[prefixLen : prefixLen+opaqueBodyLen])
		if derr != nil {
			t.Fatalf("valid tag on %q with an undecodable body", raw)
		}
		again, _ := NewTaggedOpaque(kind, key, bytes.NewReader(body))
		if again != raw {
			t.Fatalf("valid tag on %q, but its bytes make %q", raw, again)
		}
	})
}
