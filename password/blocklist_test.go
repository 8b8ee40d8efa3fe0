package password

import (
	"strings"
	"testing"
)

func TestBlocklist_PlainAndPwnedPasswordsLines(t *testing.T) {
	// 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8 is SHA-1("password"), the
	// first entry of every breach corpus.
	list := "# common passwords\n123456789012345\r\n\n5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824\ncorrect horse battery staple\n"
	b, err := LoadBlocklist(strings.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"123456789012345", "password", "correct horse battery staple"} {
		if !b.Contains(pw) {
			t.Errorf("%q not on the list", pw)
		}
	}
	for _, pw := range []string{"Password", "# common passwords", "", "123456789012345\r", "correct horse battery staple "} {
		if b.Contains(pw) {
			t.Errorf("%q on the list", pw)
		}
	}
	if b.Len() != 3 {
		t.Errorf("Len = %d, want 3", b.Len())
	}
	var none *Blocklist
	if none.Contains("password") || none.Len() != 0 {
		t.Error("a nil list holds something")
	}
}

func TestBlocklist_OverlongLineIsAnError(t *testing.T) {
	if _, err := LoadBlocklist(strings.NewReader(strings.Repeat("x", MaxPasswordLen+100) + "\n")); err == nil {
		t.Fatal("a line longer than any password loaded")
	}
}

// The built-in list holds at least the 10,000 most common passwords and
// matches them in any case; a long passphrase is not on it.
func TestCommon_HoldsTheMostCommonPasswords(t *testing.T) {
	c := Common()
	if c.Len() < 10_000 {
		t.Fatalf("built-in list has %d entries, want at least 10,000", c.Len())
	}
	for _, pw := range []string{"123456", "password", "qwerty", "password1", "Password1", "PASSWORD1", "iloveyou", "trustno1", "qqqqqq1", "baseball"} {
		if !c.Contains(pw) {
			t.Errorf("%q not on the built-in list", pw)
		}
	}
	for _, pw := range []string{"correct horse battery staple", "an unlisted long passphrase", "", "# The 30,000 most common passwords, most common first: the \"passwords\""} {
		if c.Contains(pw) {
			t.Errorf("%q on the built-in list", pw)
		}
	}
	if Common() != c {
		t.Error("the built-in list is loaded more than once")
	}
}
