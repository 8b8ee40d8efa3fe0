package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func mustKEK(tb testing.TB, b byte) []byte {
	tb.Helper()
	return bytes.Repeat([]byte{b}, KEKSize)
}

func mustSealer(tb testing.TB, kek []byte) *Sealer {
	tb.Helper()
	s, err := NewSealer(kek)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestSealer_RoundTrip(t *testing.T) {
	s := mustSealer(t, mustKEK(t, 1))
	plain := []byte("pkcs8 private key")
	sealed, err := s.Seal(plain, []byte("kid-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed bytes contain the plaintext")
	}
	got, err := s.Open(sealed, []byte("kid-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, want %q", got, plain)
	}
}

func TestSealer_FreshNonceEachSeal(t *testing.T) {
	s := mustSealer(t, mustKEK(t, 1))
	a, _ := s.Seal([]byte("x"), nil)
	b, _ := s.Seal([]byte("x"), nil)
	if bytes.Equal(a[:12], b[:12]) {
		t.Fatal("two seals used the same nonce")
	}
}

func TestSealer_WrongKEK_SaysKEKDoesNotMatch(t *testing.T) {
	sealed, err := mustSealer(t, mustKEK(t, 1)).Seal([]byte("secret"), []byte("kid"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustSealer(t, mustKEK(t, 2)).Open(sealed, []byte("kid"))
	if err == nil || !strings.Contains(err.Error(), "key-encryption key does not match") {
		t.Fatalf("Open with the wrong KEK: err = %v, want one saying the KEK does not match", err)
	}
}

func TestSealer_TamperedCiphertext_Refused(t *testing.T) {
	s := mustSealer(t, mustKEK(t, 1))
	sealed, err := s.Seal([]byte("a private key of some length"), []byte("kid"))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 11, 12, len(sealed) / 2, len(sealed) - 1} { // nonce, body, tag
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := s.Open(bad, []byte("kid")); err == nil {
			t.Errorf("Open accepted a flip of byte %d", i)
		}
	}
	for _, n := range []int{0, 5, 12, 27} {
		if _, err := s.Open(sealed[:n], []byte("kid")); err == nil {
			t.Errorf("Open accepted %d truncated bytes", n)
		}
	}
}

func TestSealer_AADSwap_Refused(t *testing.T) {
	s := mustSealer(t, mustKEK(t, 1))
	sealed, err := s.Seal([]byte("private key of kid-a"), []byte("kid-a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(sealed, []byte("kid-b")); err == nil {
		t.Fatal("a key sealed for kid-a opened as kid-b")
	}
}

// TestSealer_DeriveKey_SameKEKSameKeyPerPurpose: two processes holding
// the same KEK derive the same key for a purpose, and a different KEK or
// purpose gives an unrelated key that is not the KEK.
func TestSealer_DeriveKey_SameKEKSameKeyPerPurpose(t *testing.T) {
	kek := mustKEK(t, 7)
	a, b := mustSealer(t, kek), mustSealer(t, append([]byte(nil), kek...))
	k := a.DeriveKey("refresh successor")
	if len(k) != KEKSize {
		t.Fatalf("derived key has %d bytes, want %d", len(k), KEKSize)
	}
	if !bytes.Equal(k, b.DeriveKey("refresh successor")) {
		t.Error("the same KEK derived two keys for one purpose")
	}
	for name, other := range map[string][]byte{
		"other purpose": a.DeriveKey("another purpose"),
		"other KEK":     mustSealer(t, mustKEK(t, 8)).DeriveKey("refresh successor"),
		"the KEK":       kek,
	} {
		if bytes.Equal(k, other) {
			t.Errorf("derived key equals %s", name)
		}
	}
}

func TestNewSealer_RequiresKEKSize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte KEK", n)
		}
	}
}

func TestParseKEK(t *testing.T) {
	kek := make([]byte, KEKSize)
	for i := range kek {
		kek[i] = byte(0xf0 + i) // has bytes where std and url alphabets differ
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"std padded", base64.StdEncoding.EncodeToString(kek), true},
		{"std raw", base64.RawStdEncoding.EncodeToString(kek), true},
		{"url padded", base64.URLEncoding.EncodeToString(kek), true},
		{"url raw", base64.RawURLEncoding.EncodeToString(kek), true},
		{"surrounding whitespace", " \n\t" + base64.StdEncoding.EncodeToString(kek) + "\r\n", true},
		{"empty", "", false},
		{"blank", "  \n", false},
		{"not base64", "this is not base64 at all!", false},
		{"16 bytes", base64.StdEncoding.EncodeToString(kek[:16]), false},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(bytes.Clone(kek), 0)), false},
		{"raw 32 bytes", string(kek), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKEK(tt.in)
			if tt.ok {
				if err != nil || !bytes.Equal(got, kek) {
					t.Fatalf("ParseKEK = %x, %v; want the KEK", got, err)
				}
				return
			}
			if err == nil {
				t.Fatal("ParseKEK accepted it")
			}
			if strings.TrimSpace(tt.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Fatalf("error %q repeats the secret input", err)
			}
		})
	}
}

func TestLoadKEKFile_RefusesFileReadableByGroupOrOthers(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions on Windows")
	}
	dir := t.TempDir()
	content := base64.StdEncoding.EncodeToString(mustKEK(t, 7)) + "\n"
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o666} {
		path := filepath.Join(dir, "kek-"+mode.String())
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKEKFile(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %v: err = %v, want one saying chmod 600 %s", mode, err, path)
		}
	}
	path := filepath.Join(dir, "kek-ok")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKEKFile(path)
	if err != nil || !bytes.Equal(got, mustKEK(t, 7)) {
		t.Fatalf("LoadKEKFile(0400) = %x, %v", got, err)
	}
}

func TestLoadKEKFile_Missing_IsNotExist(t *testing.T) {
	_, err := LoadKEKFile(filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestGenerateKEKFile_Creates0600AndNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	kek, err := GenerateKEKFile(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(kek) != KEKSize {
		t.Fatalf("len = %d", len(kek))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	loaded, err := LoadKEKFile(path)
	if err != nil || !bytes.Equal(loaded, kek) {
		t.Fatalf("LoadKEKFile = %x, %v; want the generated KEK", loaded, err)
	}
	if _, err := GenerateKEKFile(path, rand.Reader); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second GenerateKEKFile: err = %v, want fs.ErrExist", err)
	}
	again, err := LoadKEKFile(path)
	if err != nil || !bytes.Equal(again, kek) {
		t.Fatal("the KEK file changed")
	}
}

// FuzzSealerOpen: Open reads bytes from the database; it must refuse, never
// panic, on anything.
func FuzzSealerOpen(f *testing.F) {
	s := mustSealer(f, mustKEK(f, 3))
	good, _ := s.Seal([]byte("hello"), []byte("kid"))
	f.Add(good, []byte("kid"))
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, 28), []byte("kid"))
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		plain, err := s.Open(sealed, aad)
		// Only "hello" under aad "kid" was ever sealed with this KEK (in this
		// process or the one that made the seed), so nothing else may open.
		if err == nil && (string(aad) != "kid" || string(plain) != "hello") {
			t.Fatalf("Open accepted forged input %x", sealed)
		}
	})
}
