package sqlmigrate

import (
	"testing"
	"testing/fstest"
)

func TestParse_InOrderAndWithoutGaps(t *testing.T) {
	ok := fstest.MapFS{
		"migrations/0002_more.sql": {Data: []byte("SELECT 2")},
		"migrations/0001_init.sql": {Data: []byte("SELECT 1")},
	}
	ms, err := Parse(ok, "test")
	if err != nil || len(ms) != 2 || ms[0].Name != "0001_init" || ms[1].Version != 2 || ms[1].SQL != "SELECT 2" {
		t.Fatalf("Parse = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"migrations/0001_init.sql": {Data: []byte("x")}, "migrations/0003_gap.sql": {Data: []byte("x")}},
		"no digit": {"migrations/init.sql": {Data: []byte("x")}},
	} {
		if _, err := Parse(fsys, "test"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
