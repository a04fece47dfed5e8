package dstate

import "fmt"

// sizeGuard is what an engine knows of the size of its own snapshot, so that
// a mutation whose result would not replicate is refused at the owner (see
// [Engine.SetSizeLimits]) without encoding the snapshot on every mutation of
// a delta state.
type sizeGuard struct {
	maxSnapshot int // 0: DefaultMaxPayload
	maxDelta    int // 0: DefaultMaxPayload
	// bound is an estimate from above of the length of the snapshot of the
	// owned value at generation gen: the length of its last encoding plus
	// the lengths of the deltas committed since.
	bound int
	gen   Generation
	known bool
}

func (g *sizeGuard) limits() (snapshot, delta int) {
	snapshot, delta = g.maxSnapshot, g.maxDelta
	if snapshot <= 0 {
		snapshot = DefaultMaxPayload
	}
	if delta <= 0 {
		delta = DefaultMaxPayload
	}
	return snapshot, delta
}

// note records that the snapshot of generation gen encodes to n bytes.
func (g *sizeGuard) note(gen Generation, n int) { g.gen, g.bound, g.known = gen, n, true }

// SetSizeLimits sets the sizes a mutation's result must fit in: a mutation
// whose snapshot would encode to more than lim.MaxSnapshot bytes, or whose
// delta to more than lim.MaxDelta bytes, is refused with a *SizeLimitError
// (see [Engine.TryPrepare]), since every peer decoding with these limits
// would refuse it. Zero fields take the defaults of [DecodeLimits]
// (MaxPayload, else 16 MiB), which also apply when it is never called.
// Hosts pass the limits they decode with.
func (e *Engine[S, V]) SetSizeLimits(lim DecodeLimits) {
	lim = lim.WithDefaults()
	e.size.maxSnapshot, e.size.maxDelta = lim.MaxSnapshot, lim.MaxDelta
}

// SizeLimits returns the snapshot and delta limits mutations are held to.
func (e *Engine[S, V]) SizeLimits() (maxSnapshot, maxDelta int) { return e.size.limits() }

// fitSize checks that the prepared mutation replicates within the size
// limits. A delta is measured as it is. The snapshot is encoded (once, and
// kept for Commit) when it is not already and its size cannot be bounded
// cheaply: a delta state whose last known snapshot length plus the deltas
// since stays within the limit is not encoded. This estimate assumes that a
// delta does not grow the snapshot by more than its own encoding, as holds
// for the usual key/value deltas. It returns a *SizeLimitError for a result
// over a limit, and nil when the encoder fails (Commit meets that failure
// and counts it). It runs inside TryPrepare's recovery: a panicking encoder
// undoes the mutation as EncodeView.
func (e *Engine[S, V]) fitSize() error {
	p := &e.pend
	maxSnap, maxDelta := e.size.limits()
	if p.hasDelta && e.codec.ApplyDelta != nil {
		if len(p.deltaData) > maxDelta {
			return &SizeLimitError{State: e.name, Limit: LimitDeltaBytes, Size: len(p.deltaData), Max: maxDelta}
		}
		if !p.hasSnap && e.size.known && e.size.gen == p.prevGen {
			if b := e.size.bound + len(p.deltaData); b <= maxSnap {
				p.sizeBound, p.sized = b, true
				return nil
			}
		}
	}
	if !p.hasSnap {
		b, err := e.codec.EncodeView(p.view)
		if err != nil {
			return nil
		}
		p.snap, p.hasSnap = b, true
	}
	if len(p.snap) > maxSnap {
		return &SizeLimitError{State: e.name, Limit: LimitSnapshotBytes, Size: len(p.snap), Max: maxSnap}
	}
	p.sizeBound, p.sized = len(p.snap), true
	return nil
}

// refuseSize undoes the prepared mutation that fitSize refused and returns
// err, joined with the rollback's error if the value could not be restored.
func (e *Engine[S, V]) refuseSize(err error) error {
	if rerr := e.Rollback(); rerr != nil {
		e.size.known = false
		return fmt.Errorf("%w (and the value could not be restored: %w)", err, rerr)
	}
	return err
}

// formatBytes renders n bytes for an error message: whole KiB, MiB or GiB
// as such, else one decimal.
func formatBytes(n int) string {
	units := []string{"GiB", "MiB", "KiB"}
	for i, u := range units {
		size := 1 << (10 * (len(units) - i))
		if n >= size {
			if n%size == 0 {
				return fmt.Sprintf("%d %s", n/size, u)
			}
			return fmt.Sprintf("%.1f %s", float64(n)/float64(size), u)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
