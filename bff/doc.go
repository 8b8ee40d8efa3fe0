// Package bff is latch's Backend-for-Frontend for single-page apps.
package bff
