// Package backoff is the one retry delay of the project: exponential from a
// floor, doubling per consecutive failure up to a cap, with optional "full
// jitter" above the floor, deterministic when given a random source.
package backoff
