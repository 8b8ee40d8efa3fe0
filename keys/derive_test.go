package keys

import (
	"bytes"
	"testing"
)

func TestSealer_Derive_SameKEKSameKey_PurposeAndKEKSeparate(t *testing.T) {
	kek := bytes.Repeat([]byte{7}, KEKSize)
	a, _ := NewSealer(kek)
	b, _ := NewSealer(kek)
	other, _ := NewSealer(bytes.Repeat([]byte{8}, KEKSize))
	k := a.Derive("p")
	if len(k) != KEKSize || !bytes.Equal(k, b.Derive("p")) {
		t.Fatalf("two sealers of one KEK derive %x and %x", k, b.Derive("p"))
	}
	if bytes.Equal(k, a.Derive("q")) || bytes.Equal(k, other.Derive("p")) || bytes.Equal(k, kek) {
		t.Fatal("a derived key is shared across purposes or KEKs, or is the KEK")
	}
}
