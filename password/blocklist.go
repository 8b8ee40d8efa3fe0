package password

import (
	"bufio"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Blocklist is a set of passwords that must not be chosen: breached or
// commonly used ones (NIST SP 800-63B-4 §3.1.1.2, "SHALL"; OWASP ASVS
// V6.2). It holds SHA-1 digests only, the form in which the largest
// public list, Have I Been Pwned's Pwned Passwords, is published, so a
// list of plain passwords and an excerpt of that one load alike.
//
// SHA-1 is used as a set key here, not to protect anything: the list is
// public, and nothing is stored.
type Blocklist struct {
	set map[[sha1.Size]byte]struct{}
	// foldCase: a password's lower-case form is looked up too (the
	// built-in list, which is in lower case: "Dragon" is as common as
	// "dragon").
	foldCase bool
}

// commonPasswords is data/common-passwords.txt: the 30,000 most common
// passwords of zxcvbn's frequency lists (MIT; the file names its source
// and data/LICENSE.zxcvbn holds the licence).
//
//go:embed data/common-passwords.txt
var commonPasswords string

// Common returns the built-in list of the 30,000 most common passwords,
// which callers check before any list of their own (NIST SP 800-63B-4
// §3.1.1.2 requires checking a blocklist of commonly used passwords; ASVS
// 5.0 V6.2.4 asks for at least the top 3,000). It matches a password
// whatever its case. Loaded on first use, it then holds about 1.4 MiB of
// heap (docs/users.md has the measurement).
var Common = sync.OnceValue(func() *Blocklist {
	b, err := LoadBlocklist(strings.NewReader(commonPasswords))
	if err != nil {
		panic("password: built-in common password list: " + err.Error())
	}
	b.foldCase = true
	return b
})

// LoadBlocklist reads a list with one entry per line: a password as it
// would be typed, or the 40 hexadecimal digits of its SHA-1, optionally
// followed by ":count" (the Pwned Passwords format). Empty lines and
// lines starting with "#" are skipped; a final "\r" is dropped. A line
// that looks like a digest is taken as one, so a password of exactly 40
// hexadecimal digits cannot be listed in plain form.
func LoadBlocklist(r io.Reader) (*Blocklist, error) {
	b := &Blocklist{set: make(map[[sha1.Size]byte]struct{})}
	sc := bufio.NewScanner(r)
	// The largest token is the larger of the two: keep the buffer small.
	sc.Buffer(make([]byte, 0, 512), MaxPasswordLen+64)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if d, ok := digestLine(line); ok {
			b.set[d] = struct{}{}
			continue
		}
		b.set[sha1.Sum([]byte(line))] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("password: blocklist line %d: %w", n+1, err)
	}
	return b, nil
}

// digestLine parses "HEX40" or "HEX40:count".
func digestLine(line string) ([sha1.Size]byte, bool) {
	var d [sha1.Size]byte
	h, _, _ := strings.Cut(line, ":")
	if len(h) != 2*sha1.Size {
		return d, false
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, false
	}
	return d, true
}

// Contains reports whether pw is on the list (for Common, in any case).
// A nil Blocklist holds nothing.
func (b *Blocklist) Contains(pw string) bool {
	if b == nil {
		return false
	}
	if _, ok := b.set[sha1.Sum([]byte(pw))]; ok {
		return true
	}
	if lower := strings.ToLower(pw); b.foldCase && lower != pw {
		_, ok := b.set[sha1.Sum([]byte(lower))]
		return ok
	}
	return false
}

// Len is the number of distinct entries.
func (b *Blocklist) Len() int {
	if b == nil {
		return 0
	}
	return len(b.set)
}
