// Package fuzzcheck holds what the fuzz targets of every package share:
// seeding a target (and rewriting its committed corpus from the real
// encoders) and checking that decoding one input allocates no more than the
// decoder's configured limit allows.
package fuzzcheck
