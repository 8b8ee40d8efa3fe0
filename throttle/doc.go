// Package throttle owns the login back-off: its rules (Config, with the
// defaults for accounts and client addresses), the Throttle interface every
// store of its state implements, and Memory, the in-memory one each server
// node keeps. Package redis implements Throttle for state shared by every
// node; package throttletest is the contract both pass. What the login
// handler adds (which attempts count, that a success resets accounts only,
// falling back to memory when the shared store fails) is package server's.
//
// It imports only the standard library.
package throttle
