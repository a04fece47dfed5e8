package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// replicator is one system the latency scenario drives: three members on
// loopback, member 0 issues updates, the others record when they see them.
type replicator interface {
	name() string
	// update issues update k (1-based, increasing) on member 0; the caller
	// has marked it in the send log.
	update(k int) error
	observers() []*recorder
	close()
}

// gossipOptions tune the memberlist and serf baselines.
type gossipOptions struct {
	// GossipInterval overrides the preset's (0 keeps memberlist's
	// DefaultLANConfig, 200 ms).
	GossipInterval time.Duration
}

func lanConfig(name string, opts gossipOptions) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = name
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.AdvertiseAddr = "127.0.0.1"
	c.LogOutput = io.Discard
	c.Logger = nil
	if opts.GossipInterval > 0 {
		c.GossipInterval = opts.GossipInterval
	}
	return c
}

// mlBroadcast is one update in memberlist's TransmitLimitedQueue. All
// updates share one name, so a newer update replaces a queued older one
// (the queue's invalidation, as a replicated value would use it).
type mlBroadcast struct{ msg []byte }

func (b *mlBroadcast) Invalidates(o memberlist.Broadcast) bool { _, ok := o.(*mlBroadcast); return ok }
func (b *mlBroadcast) Name() string                            { return "seq" }
func (b *mlBroadcast) Message() []byte                         { return b.msg }
func (b *mlBroadcast) Finished()                               {}

var _ memberlist.NamedBroadcast = (*mlBroadcast)(nil)

// mlDelegate hands out queued broadcasts and records received updates.
type mlDelegate struct {
	q   *memberlist.TransmitLimitedQueue
	rec *recorder
}

var _ memberlist.Delegate = (*mlDelegate)(nil)

func (d *mlDelegate) NodeMeta(int) []byte { return nil }
func (d *mlDelegate) NotifyMsg(b []byte) {
	if seq, k := binary.Uvarint(b); k > 0 {
		d.rec.saw(seq)
	}
}
func (d *mlDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.q.GetBroadcasts(overhead, limit)
}
func (d *mlDelegate) LocalState(bool) []byte            { return nil }
func (d *mlDelegate) MergeRemoteState(_ []byte, _ bool) {}

// mlReplicator sends updates as memberlist user broadcasts.
type mlReplicator struct {
	ms   []*memberlist.Memberlist
	dels []*mlDelegate
}

func newMemberlist(log *sendLog, opts gossipOptions) (*mlReplicator, error) {
	r := &mlReplicator{}
	for i := range 3 {
		cfg := lanConfig(fmt.Sprintf("m%d", i), opts)
		d := &mlDelegate{}
		if i > 0 {
			d.rec = newRecorder(log)
		}
		cfg.Delegate = d
		m, err := memberlist.Create(cfg)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("bench: memberlist: %w", err)
		}
		d.q = &memberlist.TransmitLimitedQueue{NumNodes: m.NumMembers, RetransmitMult: cfg.RetransmitMult}
		r.ms = append(r.ms, m)
		r.dels = append(r.dels, d)
	}
	seed := r.ms[0].LocalNode().Address()
	for _, m := range r.ms[1:] {
		if _, err := m.Join([]string{seed}); err != nil {
			r.close()
			return nil, fmt.Errorf("bench: memberlist join: %w", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range r.ms {
		for m.NumMembers() < 3 {
			if time.Now().After(deadline) {
				r.close()
				return nil, fmt.Errorf("bench: memberlist members did not all see each other")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return r, nil
}

func (r *mlReplicator) name() string { return "memberlist" }

func (r *mlReplicator) update(k int) error {
	r.dels[0].q.QueueBroadcast(&mlBroadcast{msg: encodeSeq(seqView{Seq: uint64(k), CPU: int64(k % 100), Conn: int64(k % 1000)})})
	return nil
}

func (r *mlReplicator) observers() []*recorder {
	return []*recorder{r.dels[1].rec, r.dels[2].rec}
}

func (r *mlReplicator) close() {
	for _, m := range r.ms {
		_ = m.Shutdown()
	}
}

// serfReplicator sends updates as serf user events.
type serfReplicator struct {
	ss   []*serf.Serf
	recs []*recorder
	done chan struct{}
}

func newSerf(slog *sendLog, opts gossipOptions) (*serfReplicator, error) {
	r := &serfReplicator{done: make(chan struct{})}
	for i := range 3 {
		cfg := serf.DefaultConfig()
		cfg.NodeName = fmt.Sprintf("s%d", i)
		cfg.MemberlistConfig = lanConfig(cfg.NodeName, opts)
		cfg.LogOutput = io.Discard
		ch := make(chan serf.Event, 1024)
		cfg.EventCh = ch
		var rec *recorder
		if i > 0 {
			rec = newRecorder(slog)
		}
		go func() {
			for {
				select {
				case e := <-ch:
					if ue, ok := e.(serf.UserEvent); ok {
						if seq, k := binary.Uvarint(ue.Payload); k > 0 {
							rec.saw(seq)
						}
					}
				case <-r.done:
					return
				}
			}
		}()
		s, err := serf.Create(cfg)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("bench: serf: %w", err)
		}
		r.ss = append(r.ss, s)
		r.recs = append(r.recs, rec)
	}
	m0 := r.ss[0].LocalMember()
	seed := fmt.Sprintf("%s:%d", m0.Addr, m0.Port)
	for _, s := range r.ss[1:] {
		if _, err := s.Join([]string{seed}, true); err != nil {
			r.close()
			return nil, fmt.Errorf("bench: serf join: %w", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range r.ss {
		for s.NumNodes() < 3 {
			if time.Now().After(deadline) {
				r.close()
				return nil, fmt.Errorf("bench: serf members did not all see each other")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return r, nil
}

func (r *serfReplicator) name() string { return "serf" }

func (r *serfReplicator) update(k int) error {
	return r.ss[0].UserEvent("seq", encodeSeq(seqView{Seq: uint64(k), CPU: int64(k % 100), Conn: int64(k % 1000)}), false)
}

func (r *serfReplicator) observers() []*recorder { return r.recs[1:] }

func (r *serfReplicator) close() {
	for _, s := range r.ss {
		_ = s.Shutdown()
	}
	close(r.done)
}
