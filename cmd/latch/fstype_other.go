//go:build !linux

package main

// filesystem cannot tell the filesystem type outside Linux.
func filesystem(string) (string, bool) { return "", false }
