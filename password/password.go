// Package password hashes and verifies user passwords with argon2id
// (RFC 9106), in the PHC string format of the reference implementation:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in standard base64 without padding.
//
// It owns the choice of algorithm and parameters, the encoding, and the
// defences around them: bounds on every parameter read from a stored hash
// (a hash string is data; one planted in the database must not make a
// login allocate gigabytes), a bound on the password length (argon2's input
// is hashed once, but an unbounded form field is still a cheap way to make
// the server work), constant-time comparison (security invariant 9), and
// DummyVerify, so that an unknown username costs the same time as a wrong
// password (OWASP Authentication Cheat Sheet, "Authentication Responses").
//
// It does not own users, rate limiting or lockout, nor how many hashes run
// at once: at the default parameters each one holds 19 MiB for some tens
// of milliseconds, so the login handler should bound their concurrency.
//
// Passwords are hashed as the bytes given, without Unicode normalisation.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/latch-auth/latch"
	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters and output sizes.
type Params struct {
	Memory      uint32 // m, in KiB
	Iterations  uint32 // t, passes over the memory
	Parallelism uint8  // p, lanes (and goroutines)
	SaltLen     uint32 // bytes of random salt
	KeyLen      uint32 // bytes of hash (the "tag")
}

// DefaultParams are the OWASP Password Storage Cheat Sheet's first
// argon2id configuration ("Argon2id", section "Argon2id": "a minimum
// configuration of 19 MiB of memory, an iteration count of 2, and 1
// degree of parallelism"), with the 16-byte salt and 32-byte tag that RFC
// 9106 §4 recommends. The cheat sheet lists configurations of equal
// strength that trade memory for passes, from m=47104 (46 MiB), t=1 down;
// this one keeps the memory a burst of logins holds small while staying
// at t=2.
//
// https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id
var DefaultParams = Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Bounds on parameters, checked both when hashing and when reading a
// stored hash. The upper bounds are well above any sensible configuration
// (RFC 9106 §4's second recommendation is m=64 MiB, t=3, p=4) and well
// below what would hurt a server: at most 256 MiB and 16 passes per
// verification.
const (
	MaxMemory      = 256 * 1024 // KiB
	MaxIterations  = 16
	MaxParallelism = 16
	MinSaltLen     = 8 // RFC 9106 §3.1 and the reference implementation's minimum
	MaxSaltLen     = 64
	MinKeyLen      = 16 // shorter tags are too easy to collide
	MaxKeyLen      = 64

	// MinNewSaltLen is the shortest salt Hash generates: 128 bits (RFC
	// 9106 §4). Shorter salts, down to MinSaltLen, are only verified.
	MinNewSaltLen = 16

	// MaxPasswordLen bounds the password, in bytes. Longer ones are refused
	// (EINVALID) without hashing. 1024 is far beyond any passphrase a
	// person types or a manager generates (OWASP Authentication Cheat
	// Sheet: allow at least 64 characters).
	MaxPasswordLen = 1024

	// maxEncodedLen bounds a PHC string before it is parsed: the longest
	// valid one, with every field at its maximum, is well under it.
	maxEncodedLen = 256
)

// Validate reports whether p is within the bounds above; argon2 also needs
// at least 8 KiB of memory per lane.
func (p Params) Validate() error {
	switch {
	case p.Iterations < 1 || p.Iterations > MaxIterations:
		return latch.Errorf(latch.EINVALID, "password: iterations %d out of range [1, %d]", p.Iterations, MaxIterations)
	case p.Parallelism < 1 || p.Parallelism > MaxParallelism:
		return latch.Errorf(latch.EINVALID, "password: parallelism %d out of range [1, %d]", p.Parallelism, MaxParallelism)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > MaxMemory:
		return latch.Errorf(latch.EINVALID, "password: memory %d KiB out of range [%d, %d] for parallelism %d",
			p.Memory, 8*uint32(p.Parallelism), MaxMemory, p.Parallelism)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return latch.Errorf(latch.EINVALID, "password: salt length %d out of range [%d, %d]", p.SaltLen, MinSaltLen, MaxSaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return latch.Errorf(latch.EINVALID, "password: key length %d out of range [%d, %d]", p.KeyLen, MinKeyLen, MaxKeyLen)
	}
	return nil
}

func checkPassword(password string) error {
	switch {
	case password == "":
		return latch.Errorf(latch.EINVALID, "password: empty password")
	case len(password) > MaxPasswordLen:
		return latch.Errorf(latch.EINVALID, "password: longer than %d bytes", MaxPasswordLen)
	}
	return nil
}

// Hash returns the PHC string of password under p, with a salt of
// p.SaltLen bytes read from random (crypto/rand.Reader when nil). It
// refuses (EINVALID) an empty password, one longer than MaxPasswordLen,
// parameters out of bounds and a salt shorter than MinNewSaltLen.
func Hash(password string, p Params, random io.Reader) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	if err := p.Validate(); err != nil {
		return "", err
	}
	if p.SaltLen < MinNewSaltLen {
		return "", latch.Errorf(latch.EINVALID, "password: salt length %d: new hashes need at least %d", p.SaltLen, MinNewSaltLen)
	}
	if random == nil {
		random = rand.Reader
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(random, salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return encode(p, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, comparing
// in constant time. It returns an EINVALID error, and false, for a password
// Hash would refuse (empty or too long: no stored hash can match it) and
// for an encoded string that is not a canonical argon2id v=19 PHC string
// within the bounds of Params.Validate; in both cases without running
// argon2, so a planted hash string cannot make it allocate more than
// MaxMemory.
func Verify(password, encoded string) (bool, error) {
	if err := checkPassword(password); err != nil {
		return false, err
	}
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than
// p (or cannot be read), so that after a successful Verify the login
// handler stores Hash(password, p) instead: parameters then follow the
// configuration as users log in.
func NeedsRehash(encoded string, p Params) bool {
	got, err := ParamsOf(encoded)
	return err != nil || got != p
}

// ParamsOf returns the parameters of the PHC string encoded, or the
// EINVALID error Verify would return for it.
func ParamsOf(encoded string) (Params, error) {
	p, _, _, err := decode(encoded)
	return p, err
}

// dummySalt is the salt of DummyVerify: any constant will do, nothing is
// ever compared against its result.
var dummySalt = []byte("latch-dummy-salt-latch-dummy-salt-latch-dummy-salt-latch-dummy-s")

// DummyVerify does the work of Verify against a hash made with p, and
// never matches: the login handler calls it when the username is unknown,
// so that the answer takes as long as for a known user with a wrong
// password and the response time does not tell which usernames exist
// (OWASP Authentication Cheat Sheet, "Authentication Responses"). Pass the
// parameters new hashes are made with, which NeedsRehash makes the common
// ones; invalid p falls back to DefaultParams. It returns the error Verify
// would for the password itself (empty or too long), after as little work
// as Verify does then, and nil otherwise.
func DummyVerify(password string, p Params) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	if p.Validate() != nil {
		p = DefaultParams
	}
	// Parse as Verify does, so that even its small cost is paid.
	p, salt, key, err := decode(encode(p, dummySalt[:p.SaltLen], make([]byte, p.KeyLen)))
	if err != nil {
		panic("password: DummyVerify cannot read its own hash: " + err.Error())
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	subtle.ConstantTimeCompare(got, key)
	return nil
}

var b64 = base64.RawStdEncoding.Strict()

// encode writes the PHC string the reference implementation writes.
func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses a PHC string strictly: argon2id, v=19, the parameters m, t,
// p in that order and nothing else (no keyid or data), salt and hash in
// unpadded standard base64, every value within Params.Validate, and the
// whole string exactly as encode would write it (no leading zeros, no
// padding, no stray bits in the last base64 character), so one hash has
// one spelling.
func decode(encoded string) (Params, []byte, []byte, error) {
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, latch.Errorf(latch.EINVALID, "password: malformed hash: %s", why)
	}
	if len(encoded) > maxEncodedLen {
		return bad("too long")
	}
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("want $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if f[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version is not v=19")
	}
	kv := strings.Split(f[3], ",")
	if len(kv) != 3 {
		return bad("want parameters m, t and p")
	}
	var n [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(kv[i], name)
		if !ok {
			return bad("want parameters m, t and p, in that order")
		}
		var err error
		if n[i], err = strconv.ParseUint(v, 10, 32); err != nil {
			return bad("parameter " + name + " is not a number")
		}
	}
	if n[2] > MaxParallelism {
		return bad("parallelism out of range")
	}
	salt, err := b64.DecodeString(f[4])
	if err != nil {
		return bad("salt is not unpadded base64")
	}
	key, err := b64.DecodeString(f[5])
	if err != nil {
		return bad("hash is not unpadded base64")
	}
	p := Params{Memory: uint32(n[0]), Iterations: uint32(n[1]), Parallelism: uint8(n[2]),
		SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.Validate(); err != nil {
		return bad(strings.TrimPrefix(latch.ErrorMessage(err), "password: "))
	}
	if encode(p, salt, key) != encoded {
		return bad("not in canonical form")
	}
	return p, salt, key, nil
}
