package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/latch-auth/latch"
)

var userTests = []test{
	{"RehashPassword_OnlyWhileTheHashIsUnchanged", testUserRehash},
	{"Create_RoundTripsEveryField", testUserRoundTrip},
	{"Create_EmptyFields_RoundTrip", testUserEmptyFields},
	{"Create_DuplicateID_IsConflict", testUserDuplicateID},
	{"Create_UsernameDiffersOnlyInCase_IsConflict", testUserDuplicateName},
	{"Create_InvalidUsernameOrID_IsInvalid", testUserInvalid},
	{"Create_KeepsNoReferenceToInput", testUserCopies},
	{"Get_Missing_IsNotFound", testUserMissing},
	{"ByName_IgnoresCase_KeepsUsernameAsGiven", testUserByName},
	{"ByName_Missing_IsNotFound", testUserByNameMissing},
	{"List_Empty", testUsersEmpty},
	{"List_OrderedByNormalizedUsername", testUsersOrdered},
	{"Update_ReplacesEveryField", testUserUpdate},
	{"Update_RenameFreesOldName", testUserRename},
	{"Update_UsernameOfAnother_IsConflict", testUserUpdateConflict},
	{"Update_InvalidUsername_IsInvalid", testUserUpdateInvalid},
	{"Update_Missing_IsNotFound", testUserUpdateMissing},
	{"Delete_RemovesUserAndItsSessionsOnly", testUserDelete},
	{"Delete_Missing_IsNotFound", testUserDeleteMissing},
	{"Email_RoundTripsWithProfile_ByEmailIgnoresCase", testUserEmailRoundTrip},
	{"Email_DiffersOnlyInCase_IsConflict", testUserEmailConflict},
	{"Email_EmptyForSeveralUsers_IsNoConflict", testUserEmailEmpty},
	{"Email_ChangedOrRemoved_FreesTheOld", testUserEmailChange},
	{"Email_OrProfileInvalid_IsInvalid", testUserEmailInvalid},
	{"ByEmail_MissingOrMalformed_IsNotFound", testUserByEmailMissing},
}

// withProfile gives u an email and every profile claim.
func withProfile(u *latch.User, email string) *latch.User {
	u.Email, u.EmailVerified = email, true
	u.Profile = latch.Profile{
		Name: "Élodie Martin-Dupré", GivenName: "Élodie", FamilyName: "Martin-Dupré", Nickname: `"Lo" \ 🦊`,
		Picture: "https://img.example.com/e.png?s=64&x=1", Website: "https://example.org/~elodie",
		Locale: "fr-CA", Zoneinfo: "America/Montreal",
	}
	return u
}

func testUserEmailRoundTrip(t *testing.T, s latch.Store) {
	want := withProfile(newUser("u1", "elodie"), "Elodie.Martin@Example.COM")
	mustCreateUser(t, s, want)
	checkUser(t, want, mustUser(t, s, "u1"))
	for _, e := range []string{"Elodie.Martin@Example.COM", "elodie.martin@example.com", "ELODIE.MARTIN@EXAMPLE.COM"} {
		got, err := s.UserByEmail(ctx(t), e)
		if err != nil {
			t.Fatalf("UserByEmail(%q): %v", e, err)
		}
		checkUser(t, want, got)
	}
	us := mustUsers(t, s)
	if len(us) != 1 {
		t.Fatalf("Users: %d, want 1", len(us))
	}
	checkUser(t, want, us[0])

	unverified := newUser("u2", "bob")
	unverified.Email = "bob@example.com"
	mustCreateUser(t, s, unverified)
	checkUser(t, unverified, mustUser(t, s, "u2"))
}

func testUserEmailConflict(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, withProfile(newUser("u1", "alice"), "alice@example.com"))
	err := s.CreateUser(ctx(t), withProfile(newUser("u2", "bob"), "ALICE@Example.com"))
	wantCode(t, "CreateUser(email of another, other case)", err, latch.ErrConflict)
	if _, err := s.User(ctx(t), "u2"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("User(u2) after a refused create: %v, want not found", err)
	}
	bob := newUser("u2", "bob")
	mustCreateUser(t, s, bob)
	bob.Email = "Alice@EXAMPLE.com"
	err = s.UpdateUser(ctx(t), bob)
	wantCode(t, "UpdateUser(email of another)", err, latch.ErrConflict)
	checkUser(t, newUser("u2", "bob"), mustUser(t, s, "u2"))
}

func testUserEmailEmpty(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	mustCreateUser(t, s, newUser("u2", "bob"))
	if us := mustUsers(t, s); len(us) != 2 {
		t.Fatalf("Users: %d, want 2", len(us))
	}
	_, err := s.UserByEmail(ctx(t), "")
	wantCode(t, `UserByEmail("")`, err, latch.ErrNotFound)
}

func testUserEmailChange(t *testing.T, s latch.Store) {
	u := withProfile(newUser("u1", "alice"), "alice@example.com")
	mustCreateUser(t, s, u)
	u.Email = "alice@example.org"
	if err := s.UpdateUser(ctx(t), u); err != nil {
		t.Fatalf("UpdateUser(new email): %v", err)
	}
	checkUser(t, u, mustUser(t, s, "u1"))
	_, err := s.UserByEmail(ctx(t), "alice@example.com")
	wantCode(t, "UserByEmail(old email)", err, latch.ErrNotFound)
	mustCreateUser(t, s, withProfile(newUser("u2", "bob"), "alice@example.com"))

	u.Email, u.EmailVerified, u.Profile = "", false, latch.Profile{}
	if err := s.UpdateUser(ctx(t), u); err != nil {
		t.Fatalf("UpdateUser(no email): %v", err)
	}
	checkUser(t, u, mustUser(t, s, "u1"))
	mustCreateUser(t, s, withProfile(newUser("u3", "carol"), "alice@example.org"))
}

func testUserEmailInvalid(t *testing.T, s latch.Store) {
	for name, u := range map[string]*latch.User{
		"display name": withProfile(newUser("u1", "alice"), "Alice <alice@example.com>"),
		"no at":        withProfile(newUser("u1", "alice"), "alice.example.com"),
		"space":        withProfile(newUser("u1", "alice"), "alice @example.com"),
		"newline":      withProfile(newUser("u1", "alice"), "alice@example.com\n"),
		"picture scheme": func() *latch.User {
			u := withProfile(newUser("u1", "alice"), "a@example.com")
			u.Profile.Picture = "javascript:alert(1)"
			return u
		}(),
		"zoneinfo": func() *latch.User {
			u := withProfile(newUser("u1", "alice"), "a@example.com")
			u.Profile.Zoneinfo = "Mars/Olympus"
			return u
		}(),
		"name control": func() *latch.User {
			u := withProfile(newUser("u1", "alice"), "a@example.com")
			u.Profile.Name = "a\u202eb"
			return u
		}(),
	} {
		err := s.CreateUser(ctx(t), u)
		wantCode(t, "CreateUser("+name+")", err, &latch.Error{Code: latch.EINVALID})
	}
	if us := mustUsers(t, s); len(us) != 0 {
		t.Fatalf("Users after refused creates: %d, want 0", len(us))
	}
	u := withProfile(newUser("u1", "alice"), "alice@example.com")
	mustCreateUser(t, s, u)
	u.Email = "not an address"
	wantCode(t, "UpdateUser(bad email)", s.UpdateUser(ctx(t), u), &latch.Error{Code: latch.EINVALID})
	checkUser(t, withProfile(newUser("u1", "alice"), "alice@example.com"), mustUser(t, s, "u1"))
}

func testUserByEmailMissing(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, withProfile(newUser("u1", "alice"), "alice@example.com"))
	for _, e := range []string{"bob@example.com", "alice", "alice@example.com ", "<alice@example.com>", "\xff@example.com"} {
		_, err := s.UserByEmail(ctx(t), e)
		wantCode(t, "UserByEmail("+e+")", err, latch.ErrNotFound)
	}
}

func testUserRoundTrip(t *testing.T, s latch.Store) {
	want := newUser("u1", "Alice")
	mustCreateUser(t, s, want)
	checkUser(t, want, mustUser(t, s, "u1"))

	disabled := newUser("u2", "Bob")
	disabled.Disabled = true
	mustCreateUser(t, s, disabled)
	checkUser(t, disabled, mustUser(t, s, "u2"))
}

func testUserEmptyFields(t *testing.T, s latch.Store) {
	want := &latch.User{ID: "u1", Username: "alice"}
	mustCreateUser(t, s, want)
	got := mustUser(t, s, "u1")
	checkUser(t, want, got)
	if !got.CreatedAt.IsZero() || !got.UpdatedAt.IsZero() || !got.PasswordChangedAt.IsZero() {
		t.Errorf("zero times came back as %v, %v, %v", got.CreatedAt, got.UpdatedAt, got.PasswordChangedAt)
	}
}

func testUserDuplicateID(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	err := s.CreateUser(ctx(t), newUser("u1", "mallory"))
	wantCode(t, "CreateUser(duplicate ID)", err, latch.ErrConflict)
	checkUser(t, newUser("u1", "alice"), mustUser(t, s, "u1"))
	_, err = s.UserByName(ctx(t), "mallory")
	wantCode(t, "UserByName after a refused create", err, latch.ErrNotFound)
}

func testUserDuplicateName(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "Alice"))
	for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
		err := s.CreateUser(ctx(t), newUser("u2", name))
		wantCode(t, "CreateUser("+name+")", err, latch.ErrConflict)
	}
	// The Kelvin sign lower-cases to k: it cannot shadow "kelvin".
	mustCreateUser(t, s, newUser("k1", "kelvin"))
	wantCode(t, "CreateUser(Kelvin sign)", s.CreateUser(ctx(t), newUser("k2", "\u212Aelvin")), latch.ErrConflict)

	_, err := s.User(ctx(t), "u2")
	wantCode(t, "User after refused creates", err, latch.ErrNotFound)
	if n := len(mustUsers(t, s)); n != 2 {
		t.Errorf("Users = %d users, want 2", n)
	}
}

func testUserInvalid(t *testing.T, s latch.Store) {
	for _, u := range []*latch.User{
		newUser("", "alice"),
		newUser("u1", ""),
		newUser("u1", "alice smith"),
		newUser("u1", "ali\u200bce"),
		newUser("u1", "\xffalice"),
		newUser("u1", string(make([]byte, latch.MaxUsernameLen+1))),
	} {
		err := s.CreateUser(ctx(t), u)
		wantCode(t, "CreateUser("+u.ID+", "+u.Username+")", err, &latch.Error{Code: latch.EINVALID})
	}
	if n := len(mustUsers(t, s)); n != 0 {
		t.Errorf("Users = %d users after refused creates, want 0", n)
	}
}

func testUserCopies(t *testing.T, s latch.Store) {
	u := newUser("u1", "alice")
	mustCreateUser(t, s, u)
	u.Roles[0] = "root"
	got := mustUser(t, s, "u1")
	checkUser(t, newUser("u1", "alice"), got)
	got.Groups[0] = "wheel"
	checkUser(t, newUser("u1", "alice"), mustUser(t, s, "u1"))
}

func testUserMissing(t *testing.T, s latch.Store) {
	_, err := s.User(ctx(t), "nope")
	wantCode(t, `User("nope")`, err, latch.ErrNotFound)
	_, err = s.User(ctx(t), "")
	wantCode(t, `User("")`, err, latch.ErrNotFound)
}

func testUserByName(t *testing.T, s latch.Store) {
	want := newUser("u1", "Élodie.Martin@Example.com")
	mustCreateUser(t, s, want)
	for _, name := range []string{"Élodie.Martin@Example.com", "élodie.martin@example.com", "ÉLODIE.MARTIN@EXAMPLE.COM"} {
		checkUser(t, want, mustUserByName(t, s, name))
	}
}

func testUserByNameMissing(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	// A name no user can have (refused by NormalizeUsername) is simply not
	// found, so a login form answers it like any unknown name.
	for _, name := range []string{"bob", "alic", "alice2", "", "alice ", "ali\u200bce", string(make([]byte, 100))} {
		_, err := s.UserByName(ctx(t), name)
		wantCode(t, "UserByName("+name+")", err, latch.ErrNotFound)
	}
}

func testUsersEmpty(t *testing.T, s latch.Store) {
	if us := mustUsers(t, s); len(us) != 0 {
		t.Errorf("Users on an empty store = %d users, want 0", len(us))
	}
}

func testUsersOrdered(t *testing.T, s latch.Store) {
	for i, name := range []string{"charlie", "Alpha", "ZULU", "bravo"} {
		mustCreateUser(t, s, newUser("id"+string(rune('0'+i)), name))
	}
	var names []string
	for _, u := range mustUsers(t, s) {
		names = append(names, u.Username)
	}
	// By the normalized name, so case does not decide the order.
	want := []string{"Alpha", "bravo", "charlie", "ZULU"}
	if !slices.Equal(names, want) {
		t.Fatalf("Users = %q, want %q", names, want)
	}
}

func testUserUpdate(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	want := &latch.User{
		ID:                "u1",
		Username:          "Alice",
		PasswordHash:      "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdG5ld3NhbHQ$new",
		Disabled:          true,
		Roles:             nil,
		Groups:            []string{"contractors"},
		CreatedAt:         base,
		UpdatedAt:         base.Add(time.Hour),
		PasswordChangedAt: base.Add(time.Hour),
	}
	if err := s.UpdateUser(ctx(t), want); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	checkUser(t, want, mustUser(t, s, "u1"))
	checkUser(t, want, mustUserByName(t, s, "ALICE"))
}

func testUserRename(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	renamed := newUser("u1", "alice.smith")
	if err := s.UpdateUser(ctx(t), renamed); err != nil {
		t.Fatalf("UpdateUser(rename): %v", err)
	}
	checkUser(t, renamed, mustUserByName(t, s, "Alice.Smith"))
	_, err := s.UserByName(ctx(t), "alice")
	wantCode(t, "UserByName(old name)", err, latch.ErrNotFound)
	mustCreateUser(t, s, newUser("u2", "Alice")) // the old name is free again
}

func testUserUpdateConflict(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	mustCreateUser(t, s, newUser("u2", "bob"))
	err := s.UpdateUser(ctx(t), newUser("u2", "ALICE"))
	wantCode(t, "UpdateUser(u2 to ALICE)", err, latch.ErrConflict)
	checkUser(t, newUser("u2", "bob"), mustUser(t, s, "u2"))
	checkUser(t, newUser("u1", "alice"), mustUserByName(t, s, "alice"))
}

func testUserUpdateInvalid(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	err := s.UpdateUser(ctx(t), newUser("u1", "alice\n"))
	wantCode(t, "UpdateUser(invalid name)", err, &latch.Error{Code: latch.EINVALID})
	checkUser(t, newUser("u1", "alice"), mustUser(t, s, "u1"))
}

func testUserUpdateMissing(t *testing.T, s latch.Store) {
	wantCode(t, "UpdateUser(missing)", s.UpdateUser(ctx(t), newUser("nope", "nope")), latch.ErrNotFound)
	_, err := s.User(ctx(t), "nope")
	wantCode(t, "User after UpdateUser(missing)", err, latch.ErrNotFound)
}

func testUserDelete(t *testing.T, s latch.Store) {
	mustCreateUser(t, s, newUser("u1", "alice"))
	mustCreateUser(t, s, newUser("u2", "bob"))
	mine := []*latch.Session{newSession("u1", "a1"), newSession("u1", "a2")}
	theirs := newSession("u2", "b1")
	for _, sess := range append(mine, theirs) {
		mustCreateSession(t, s, sess)
	}
	if err := s.DeleteUser(ctx(t), "u1"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := s.User(ctx(t), "u1")
	wantCode(t, "User after DeleteUser", err, latch.ErrNotFound)
	_, err = s.UserByName(ctx(t), "alice")
	wantCode(t, "UserByName after DeleteUser", err, latch.ErrNotFound)
	for _, sess := range mine {
		wantNoSession(t, s, "of a deleted user", sess.IDHash)
	}
	checkUser(t, newUser("u2", "bob"), mustUser(t, s, "u2"))
	checkSession(t, theirs, mustSession(t, s, theirs.IDHash))
	wantCode(t, "DeleteUser twice", s.DeleteUser(ctx(t), "u1"), latch.ErrNotFound)
	mustCreateUser(t, s, newUser("u1", "alice")) // ID and name are free again
}

func testUserDeleteMissing(t *testing.T, s latch.Store) {
	wantCode(t, "DeleteUser(missing)", s.DeleteUser(ctx(t), "nope"), latch.ErrNotFound)
}

func testUserRehash(t *testing.T, s latch.Store) {
	u := newUser("u1", "alice")
	mustCreateUser(t, s, u)
	old := u.PasswordHash
	before := mustUser(t, s, "u1") // times as the store keeps them
	ok, err := s.RehashPassword(ctx(t), "u1", old, "$argon2id$new")
	if err != nil || !ok {
		t.Fatalf("RehashPassword(current hash) = %v, %v; want true", ok, err)
	}
	got := mustUser(t, s, "u1")
	if got.PasswordHash != "$argon2id$new" || !got.PasswordChangedAt.Equal(before.PasswordChangedAt) || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("after rehash: hash %q, password changed %v, updated %v", got.PasswordHash, got.PasswordChangedAt, got.UpdatedAt)
	}
	// The hash changed in between (a password change): the rehash loses.
	if ok, err := s.RehashPassword(ctx(t), "u1", old, "$argon2id$stale"); err != nil || ok {
		t.Errorf("RehashPassword(stale hash) = %v, %v; want false", ok, err)
	}
	if ok, err := s.RehashPassword(ctx(t), "nobody", old, "$argon2id$x"); err != nil || ok {
		t.Errorf("RehashPassword(no such user) = %v, %v; want false", ok, err)
	}
	if mustUser(t, s, "u1").PasswordHash != "$argon2id$new" {
		t.Error("a losing rehash changed the hash")
	}
}
