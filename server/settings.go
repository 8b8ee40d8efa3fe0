package server

import (
	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/keys"
)

// ValidateSettings checks c as New does, but for Store and Keys, which a
// command opens afterwards: a configuration error (an http issuer, a bad
// lifetime) is then reported before a port is bound or a database created.
// Issuer may be provisional (http://LISTEN before the port is known).
func (c Config) ValidateSettings() error {
	c.withDefaults()
	if c.Store == nil {
		c.Store = unopenedStore{}
	}
	if c.Keys == nil {
		c.Keys = &keys.Manager{}
	}
	return c.Validate()
}

// unopenedStore stands for the store Validate requires but never calls.
type unopenedStore struct{ latch.Store }
