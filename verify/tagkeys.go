package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// DefaultTagKeysRefresh is the least time between two fetches of the
// opaque-token tag keys that an unknown key id triggers.
const DefaultTagKeysRefresh = 30 * time.Second

// TagKeysConfig configures TagKeys.
type TagKeysConfig struct {
	// Endpoint is the issuer's opaque_token_keys_endpoint (latch's
	// metadata names it).
	Endpoint string
	// ClientID and ClientSecret authenticate this client (confidential)
	// with client_secret_basic.
	ClientID     string
	ClientSecret string
	// Refresh is the least time between two fetches triggered by an
	// unknown key id. Default DefaultTagKeysRefresh.
	Refresh time.Duration

	HTTPClient        *http.Client
	Timeout           time.Duration
	MaxResponseBytes  int64
	InsecureAllowHTTP bool
	Logger            *slog.Logger
	Now               func() time.Time
}

// TagKeys holds a copy of the issuer's opaque-token tag keys
// (token.NewTaggedOpaque), so that a forged opaque token is refused
// without a round trip to the issuer: its checksum anyone can compute, its
// tag only a key holder. A token naming a key this copy does not hold, or
// carrying no tag, is left to the issuer, and the copy is fetched again
// (at most once per TagKeysConfig.Refresh), which is how a key rotation at
// the issuer reaches it. It is safe for concurrent use.
type TagKeys struct {
	cfg   TagKeysConfig
	fetch *fetcher
	keys  atomic.Pointer[[]*token.TagKey]

	mu         sync.Mutex
	last       time.Time
	refreshing bool
}

// NewTagKeys fetches the keys once and fails if that fails: wrong
// credentials show at start-up.
func NewTagKeys(ctx context.Context, cfg TagKeysConfig) (*TagKeys, error) {
	fetchDefaults(&cfg.HTTPClient, &cfg.Timeout, &cfg.MaxResponseBytes)
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultTagKeysRefresh
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := checkEndpoint("opaque_token_keys_endpoint", cfg.Endpoint, cfg.InsecureAllowHTTP); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("verify: TagKeysConfig.ClientID and ClientSecret are required: the tag keys are given to confidential clients only")
	}
	if cfg.Refresh < 0 {
		return nil, errors.New("verify: TagKeysConfig.Refresh must not be negative")
	}
	k := &TagKeys{cfg: cfg, fetch: &fetcher{client: cfg.HTTPClient, timeout: cfg.Timeout, maxBytes: cfg.MaxResponseBytes, allowHTTP: cfg.InsecureAllowHTTP}}
	k.last = cfg.Now()
	keys, err := k.get(ctx)
	if err != nil {
		return nil, err
	}
	k.keys.Store(&keys)
	return k, nil
}

// Check parses raw with token.CheckTag against the keys held. A forged tag
// is an error wrapping token.ErrForgedTag; on token.TagUnknownKey the keys
// are fetched again in the background, if the last fetch is older than
// Refresh.
func (k *TagKeys) Check(raw string) (latch.TokenKind, token.Tag, error) {
	kind, tag, err := token.CheckTag(raw, *k.keys.Load())
	if err == nil && tag == token.TagUnknownKey {
		k.refresh()
	}
	return kind, tag, err
}

func (k *TagKeys) refresh() {
	now := k.cfg.Now()
	k.mu.Lock()
	if k.refreshing || now.Sub(k.last) < k.cfg.Refresh {
		k.mu.Unlock()
		return
	}
	k.refreshing, k.last = true, now
	k.mu.Unlock()
	go func() {
		keys, err := k.get(context.Background())
		if err != nil {
			k.cfg.Logger.Warn("verify: cannot refresh the opaque-token tag keys; tokens under a new key are checked at the issuer meanwhile", "err", err)
		} else {
			k.keys.Store(&keys)
		}
		k.mu.Lock()
		k.refreshing = false
		k.mu.Unlock()
	}()
}

// get fetches the key set.
func (k *TagKeys) get(ctx context.Context) ([]*token.TagKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.cfg.Endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("verify: GET %q: %w", k.cfg.Endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client_secret_basic form-encodes both parts first.
	req.SetBasicAuth(url.QueryEscape(k.cfg.ClientID), url.QueryEscape(k.cfg.ClientSecret))
	_, body, err := k.fetch.do(req)
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden) {
			return nil, fmt.Errorf("verify: the opaque-token keys endpoint refuses our client credentials (a confidential client is needed): %w", err)
		}
		return nil, err
	}
	var doc struct {
		Keys []struct {
			KeyID  string `json:"kid"`
			Secret string `json:"k"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("verify: opaque-token keys at %s: %w", k.cfg.Endpoint, err)
	}
	keys := make([]*token.TagKey, 0, len(doc.Keys))
	for _, d := range doc.Keys {
		secret, err := base64.RawURLEncoding.DecodeString(d.Secret)
		if err != nil {
			return nil, fmt.Errorf("verify: opaque-token key %q at %s is not base64url", d.KeyID, k.cfg.Endpoint)
		}
		tk, err := token.NewTagKey(secret)
		if err != nil {
			return nil, fmt.Errorf("verify: opaque-token key %q at %s: %w", d.KeyID, k.cfg.Endpoint, err)
		}
		// The id is derived from the secret; one that differs means the
		// two ends disagree about the derivation, and tags would never
		// verify.
		if tk.ID() != d.KeyID {
			return nil, fmt.Errorf("verify: opaque-token key at %s has kid %q, but its secret gives %q", k.cfg.Endpoint, d.KeyID, tk.ID())
		}
		keys = append(keys, tk)
	}
	return keys, nil
}
