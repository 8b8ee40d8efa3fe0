package registry

import (
	"bytes"
	"strings"
	"testing"
)

// A reader whose first 16 bytes encode to an ID starting with "-" (0xf8:
// the top six bits are 62, "-" in base64url), then zeros.
func TestNewRecordID_NeverStartsWithADash(t *testing.T) {
	r := bytes.NewReader(append(append([]byte{0xf8}, make([]byte, 15)...), make([]byte, 16)...))
	id, err := newRecordID(r)
	if err != nil || strings.HasPrefix(id, "-") || len(id) != 22 {
		t.Fatalf("newRecordID = %q, %v", id, err)
	}
}
