package verify

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

func (s *introServer) serveTagKeys(w http.ResponseWriter, r *http.Request) {
	s.keyCalls.Add(1)
	id, secret, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if !ok || id != rsClientID || secret != rsClientSecret || r.Method != http.MethodGet {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	type key struct {
		KID string `json:"kid"`
		K   string `json:"k"`
	}
	doc := struct {
		Keys []key `json:"keys"`
	}{Keys: []key{}}
	s.mu.Lock()
	for _, k := range s.tagKeys {
		doc.Keys = append(doc.Keys, key{k.ID(), base64.RawURLEncoding.EncodeToString(k.Secret())})
	}
	s.mu.Unlock()
	json.NewEncoder(w).Encode(doc)
}

// issueTagged registers an active opaque token tagged under k.
func (s *introServer) issueTagged(t *testing.T, c *clock, k *token.TagKey) string {
	tok := must(token.NewTaggedOpaque(latch.KindAccess, k, nil))
	now := c.Now().Unix()
	s.mu.Lock()
	s.ans[tok] = map[string]any{
		"active": true, "iss": s.srv.URL, "aud": []string{testAudience}, "sub": "svc", "client_id": "svc",
		"scope": "read", "exp": now + 600, "iat": now, "jti": must(token.NewID(nil)), "token_type": "Bearer",
	}
	s.mu.Unlock()
	return tok
}

// forgeWithKID makes a tagged token naming kid with a tag made up by
// someone without the key, and the CRC-32 anyone can compute.
func forgeWithKID(t *testing.T, kid string) string {
	t.Helper()
	tok := must(token.NewTaggedOpaque(latch.KindAccess, must(token.GenerateTagKey(nil)), nil))
	body := tok[:49] + kid + tok[53:75]
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE([]byte(body)))
	return body + base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestIntrospector_ForgedTag_RefusedWithoutIntrospection_RotatedKeyFetched(t *testing.T) {
	s := newIntroServer(t)
	old := must(token.GenerateTagKey(nil))
	s.tagKeys = []*token.TagKey{old}
	c := newClock()
	cfg := s.config(c)
	cfg.OpaqueTokenKeysEndpoint = s.srv.URL + "/opaque-token-keys"
	in := mustIntrospector(t, cfg)
	ctx := context.Background()

	if _, err := in.Introspect(ctx, s.issueTagged(t, c, old)); err != nil {
		t.Fatalf("tagged token: %v", err)
	}
	for range 100 {
		if _, err := in.Introspect(ctx, forgeWithKID(t, old.ID())); !errors.Is(err, token.ErrForgedTag) {
			t.Fatalf("forged tag: %v, want ErrForgedTag", err)
		}
	}
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d introspection calls, want 1 (the forged tokens none)", n)
	}

	// Rotation: the issuer tags with a new key. Its tokens are introspected
	// (their key is unknown here) and trigger a fetch of the keys, after
	// which forgeries under the new key id are refused locally too.
	next := must(token.GenerateTagKey(nil))
	s.mu.Lock()
	s.tagKeys = []*token.TagKey{next, old}
	s.mu.Unlock()
	c.Advance(DefaultTagKeysRefresh)
	if _, err := in.Introspect(ctx, s.issueTagged(t, c, next)); err != nil {
		t.Fatalf("token under the new key: %v", err)
	}
	for i := 0; ; i++ {
		if _, tag, _ := in.tagKeys.Check(s.issueTagged(t, c, next)); tag == token.TagValid {
			break
		}
		if i == 1000 {
			t.Fatal("the new key was never fetched")
		}
		time.Sleep(time.Millisecond)
	}
	before := s.calls.Load()
	if _, err := in.Introspect(ctx, forgeWithKID(t, next.ID())); !errors.Is(err, token.ErrForgedTag) || s.calls.Load() != before {
		t.Fatalf("forged under the new key: %v, %d calls", err, s.calls.Load()-before)
	}
	if n := s.keyCalls.Load(); n != 2 {
		t.Fatalf("%d fetches of the keys, want 2", n)
	}
}

func TestNewTagKeys_WrongCredentials_FailsAtStart(t *testing.T) {
	s := newIntroServer(t)
	_, err := NewTagKeys(context.Background(), TagKeysConfig{Endpoint: s.srv.URL + "/opaque-token-keys", ClientID: rsClientID,
		ClientSecret: "wrong", InsecureAllowHTTP: true})
	if err == nil {
		t.Fatal("NewTagKeys with a wrong secret succeeded")
	}
}

func TestIntrospector_UntaggedFlood_OverBudget_TaggedTokensStillIntrospected(t *testing.T) {
	s := newIntroServer(t)
	key := must(token.GenerateTagKey(nil))
	s.tagKeys = []*token.TagKey{key}
	c := newClock()
	cfg := s.config(c)
	cfg.OpaqueTokenKeysEndpoint = s.srv.URL + "/opaque-token-keys"
	cfg.UntaggedRate = 0.001 // a burst of 1
	in := mustIntrospector(t, cfg)
	ctx := context.Background()
	var inactive, unavailable int
	for range 10 {
		_, err := in.Introspect(ctx, must(token.NewOpaque(latch.KindAccess, nil)))
		switch {
		case errors.Is(err, ErrInactive):
			inactive++
		case errors.Is(err, ErrUnavailable):
			unavailable++
		default:
			t.Fatalf("untagged token: %v", err)
		}
	}
	if inactive != 1 || unavailable != 9 {
		t.Fatalf("untagged flood: %d introspected, %d over budget; want 1 and 9", inactive, unavailable)
	}
	if _, err := in.Introspect(ctx, s.issueTagged(t, c, key)); err != nil {
		t.Fatalf("tagged token after the flood: %v", err)
	}
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("%d introspections, want 2", n)
	}
}
