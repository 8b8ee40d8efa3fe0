package storetest

import (
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var clientTests = []test{
	{"Create_RoundTripsEveryField", testClientRoundTrip},
	{"Create_EmptyFields_RoundTrip", testClientEmptyFields},
	{"Create_Duplicate_IsConflict", testClientDuplicate},
	{"Create_KeepsNoReferenceToInput", testClientCopies},
	{"Get_Missing_IsNotFound", testClientMissing},
	{"List_Empty", testClientsEmpty},
	{"List_OrderedByID", testClientsOrdered},
	{"Update_ReplacesEveryField", testClientUpdate},
	{"Update_Missing_IsNotFound", testClientUpdateMissing},
	{"Update_KeepsRegistrationID", testClientUpdateKeepsRegistration},
	{"Delete_RemovesClient", testClientDelete},
	{"Delete_Missing_IsNotFound", testClientDeleteMissing},
	{"Delete_RemovesItsOpaqueTokensOnly", testClientDeleteTokens},
}

func testClientRoundTrip(t *testing.T, s latch.Store) {
	want := newClient("app")
	mustCreateClient(t, s, want)
	checkClient(t, want, mustClient(t, s, "app"))
}

func testClientEmptyFields(t *testing.T, s latch.Store) {
	want := &latch.Client{
		ID:                "spa",
		AuthMethod:        latch.AuthNone,
		AccessTokenFormat: latch.FormatJWT,
	}
	mustCreateClient(t, s, want)
	got := mustClient(t, s, "spa")
	checkClient(t, want, got)
	if !got.CreatedAt.IsZero() || !got.UpdatedAt.IsZero() {
		t.Errorf("zero times came back as %v, %v", got.CreatedAt, got.UpdatedAt)
	}
}

func testClientDuplicate(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	other := newClient("app")
	other.Name = "impostor"
	wantCode(t, "CreateClient(duplicate)", s.CreateClient(ctx(t), other), latch.ErrConflict)
	if got := mustClient(t, s, "app"); got.Name != "Client app" {
		t.Errorf("duplicate create changed the stored client: Name = %q", got.Name)
	}
}

func testClientCopies(t *testing.T, s latch.Store) {
	c := newClient("app")
	mustCreateClient(t, s, c)
	c.Scopes[0] = "admin"
	c.SecretHash[0] ^= 0xff
	got := mustClient(t, s, "app")
	checkClient(t, newClient("app"), got)

	got.Scopes[0] = "admin"
	got.RedirectURIs = append(got.RedirectURIs, "https://evil.example")
	checkClient(t, newClient("app"), mustClient(t, s, "app"))
}

func testClientMissing(t *testing.T, s latch.Store) {
	_, err := s.Client(ctx(t), "nope")
	wantCode(t, `Client("nope")`, err, latch.ErrNotFound)
}

func testClientsEmpty(t *testing.T, s latch.Store) {
	cs, err := s.Clients(ctx(t))
	if err != nil {
		t.Fatalf("Clients: %v", err)
	}
	if len(cs) != 0 {
		t.Errorf("Clients on an empty store = %d clients, want 0", len(cs))
	}
}

func testClientsOrdered(t *testing.T, s latch.Store) {
	for _, id := range []string{"charlie", "alpha", "bravo", "Zulu"} {
		mustCreateClient(t, s, newClient(id))
	}
	cs, err := s.Clients(ctx(t))
	if err != nil {
		t.Fatalf("Clients: %v", err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	// Byte order: upper case sorts before lower case.
	want := []string{"Zulu", "alpha", "bravo", "charlie"}
	if len(ids) != len(want) {
		t.Fatalf("Clients = %q, want %q", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("Clients = %q, want %q", ids, want)
		}
	}
	checkClient(t, newClient("alpha"), cs[1])
}

func testClientUpdate(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	want := &latch.Client{
		ID:                "app",
		RegistrationID:    "reg-app", // kept: see testClientUpdateKeepsRegistration
		Name:              "renamed",
		AuthMethod:        latch.AuthPrivateKeyJWT,
		JWKS:              []byte(`{"keys":[]}`),
		GrantTypes:        []string{latch.GrantAuthorizationCode},
		Scopes:            []string{"openid"},
		Audiences:         nil,
		RedirectURIs:      []string{"https://new.example/cb"},
		WebOrigins:        []string{"https://new.example"},
		AccessTokenFormat: latch.FormatJWT,
		AccessTokenTTL:    time.Minute,
		CreatedAt:         base,
		UpdatedAt:         base.Add(time.Hour),
	}
	if err := s.UpdateClient(ctx(t), want); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	checkClient(t, want, mustClient(t, s, "app"))
	// And back: booleans and the encryption key are set by an update too.
	if err := s.UpdateClient(ctx(t), newClient("app")); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	checkClient(t, newClient("app"), mustClient(t, s, "app"))
}

// testClientUpdateKeepsRegistrationID: only a new registration changes
// RegistrationID, so an update (rotate-secret, a change of scopes) never
// revives or kills the client's tokens by accident.
func testClientUpdateKeepsRegistration(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	c := newClient("app")
	c.Name = "renamed"
	c.RegistrationID = "another"
	c.IDTokenAlgorithm = latch.RS256
	if err := s.UpdateClient(ctx(t), c); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	got := mustClient(t, s, "app")
	if got.IDTokenAlgorithm != latch.RS256 {
		t.Errorf("after an update, IDTokenAlgorithm %q, want RS256", got.IDTokenAlgorithm)
	}
	if got.Name != "renamed" || got.RegistrationID != "reg-app" {
		t.Errorf("after an update with RegistrationID %q: Name %q, RegistrationID %q; want renamed, reg-app", c.RegistrationID, got.Name, got.RegistrationID)
	}
}

func testClientUpdateMissing(t *testing.T, s latch.Store) {
	wantCode(t, "UpdateClient(missing)", s.UpdateClient(ctx(t), newClient("nope")), latch.ErrNotFound)
	_, err := s.Client(ctx(t), "nope")
	wantCode(t, "Client after UpdateClient(missing)", err, latch.ErrNotFound)
}

func testClientDelete(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	mustCreateClient(t, s, newClient("other"))
	if err := s.DeleteClient(ctx(t), "app"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	_, err := s.Client(ctx(t), "app")
	wantCode(t, "Client after DeleteClient", err, latch.ErrNotFound)
	mustClient(t, s, "other")
	wantCode(t, "DeleteClient twice", s.DeleteClient(ctx(t), "app"), latch.ErrNotFound)
}

func testClientDeleteMissing(t *testing.T, s latch.Store) {
	wantCode(t, "DeleteClient(missing)", s.DeleteClient(ctx(t), "nope"), latch.ErrNotFound)
}

func testClientDeleteTokens(t *testing.T, s latch.Store) {
	mustCreateClient(t, s, newClient("app"))
	mustCreateClient(t, s, newClient("other"))
	mine := []*latch.Token{newToken("app", "a1"), newToken("app", "a2"), newToken("app", "r1")}
	mine[2].Kind = latch.KindRefresh
	for _, tok := range mine {
		mustCreateToken(t, s, tok)
	}
	theirs := newToken("other", "o1")
	mustCreateToken(t, s, theirs)

	if err := s.DeleteClient(ctx(t), "app"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	for _, tok := range mine {
		_, err := s.Token(ctx(t), tok.Hash)
		wantCode(t, "Token of a deleted client", err, latch.ErrNotFound)
	}
	checkToken(t, theirs, mustToken(t, s, theirs.Hash))
	// Each deleted live token is in the revocation log, so caches in front
	// of introspection drop it.
	log, err := s.RevocationsSince(ctx(t), 0, 100)
	if err != nil {
		t.Fatalf("RevocationsSince: %v", err)
	}
	logged := map[string]bool{}
	for _, r := range log {
		if r.Kind == latch.RevokeOpaque {
			logged[string(r.TokenHash)] = true
		}
	}
	for _, tok := range mine {
		if tok.ExpiresAt.After(time.Now()) && !logged[string(tok.Hash)] {
			t.Errorf("token %s of the deleted client is not in the revocation log", tok.ID)
		}
	}
	if logged[string(theirs.Hash)] {
		t.Error("another client's token was logged as revoked")
	}
}
