package doctor_test

import (
	"testing"

	"github.com/latch-auth/latch/authority"

	"github.com/latch-auth/latch/doctor"
	"github.com/latch-auth/latch/server"
)

// TestNamesMatchServer pins doctor's copies of latch's own scope and
// audience names to the server's.
func TestNamesMatchServer(t *testing.T) {
	for _, c := range [][2]string{
		{doctor.ScopeAdmin, server.ScopeAdmin}, {doctor.ScopeIntrospect, authority.ScopeIntrospect},
		{doctor.AudienceAdmin, server.AudienceAdmin}, {doctor.AudienceIntrospection, server.AudienceIntrospection},
	} {
		if c[0] != c[1] {
			t.Errorf("doctor has %q, server %q", c[0], c[1])
		}
	}
}
