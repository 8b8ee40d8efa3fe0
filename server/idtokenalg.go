package server

import (
	"sync"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/token"
)

// idTokenSigners caches one token.Signer per ID token algorithm, replaced
// when the key that signs the algorithm changes.
type idTokenSigners struct {
	mu sync.Mutex
	by map[latch.Algorithm]*token.Signer
}

// idTokenSigner returns the signer of client c's ID tokens: in the
// client's id_token_signed_response_alg, else the server's IDTokenAlgorithm,
// else the default signing key's algorithm. Access tokens keep the default
// key whatever the client's ID token algorithm. An algorithm no key signs
// now is EUNAVAILABLE: signing with another than the registered one would
// be refused by the client anyway (OIDC Core §3.1.3.7 step 7).
func (s *Server) idTokenSigner(c *latch.Client) (*token.Signer, error) {
	alg := c.IDTokenAlgorithm
	if alg == "" {
		alg = s.cfg.IDTokenAlgorithm
	}
	if alg == "" {
		return s.tok.Signer()
	}
	kid, key, err := s.keys.SigningFor(alg)
	if err != nil {
		return nil, latch.Errorf(latch.EUNAVAILABLE, "server: no key signs ID tokens in %s: %v", alg, err)
	}
	s.idSigners.mu.Lock()
	defer s.idSigners.mu.Unlock()
	if cur := s.idSigners.by[alg]; cur != nil && cur.KeyID() == kid {
		return cur, nil
	}
	sg, err := token.NewSigner(kid, alg, key)
	if err != nil {
		return nil, err
	}
	if s.idSigners.by == nil {
		s.idSigners.by = make(map[latch.Algorithm]*token.Signer)
	}
	s.idSigners.by[alg] = sg
	return sg, nil
}
