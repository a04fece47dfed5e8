package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/serfevents"
	"github.com/dstate-go/dstate/pkg/transport"
)

// serfGossip is the agent's membership: a serfevents.Membership with the
// conversions the admin API needs.
type serfGossip struct {
	*serfevents.Membership
}

func startGossip(a *Agent) (*serfGossip, error) {
	cfg := a.cfg
	scfg := serfevents.DefaultConfig()
	if cfg.Fast {
		scfg.Timing = serfevents.LocalTiming()
		scfg.JoinRetryInterval = 200 * time.Millisecond
		scfg.ReconnectInterval = 500 * time.Millisecond
	}
	scfg.NodeID = nodeID(cfg)
	scfg.ClusterName = cfg.ClusterName
	scfg.BindAddr = cfg.SerfAddr
	scfg.AdvertiseAddr = cfg.SerfAdvertise
	// No Seeds: Start joins them last (joinSeeds), once everything else
	// is bound and open.
	scfg.SnapshotPath = filepath.Join(cfg.DataDir, "serf.snapshot")
	scfg.KeyFile = cfg.GossipKeyFile
	scfg.Logger = a.log.With("component", "serf")
	role, raftAddr := serfevents.RaftRoleNone, ""
	if a.raft != nil {
		role, raftAddr = serfevents.RaftRoleVoter, a.raft.store.Addr()
	}
	scfg.Tags = map[string]string{
		serfevents.TagTransport: a.tr.Addr(),
		serfevents.TagRaft:      raftAddr,
		serfevents.TagRaftRole:  role,
		serfevents.TagProtocol:  strconv.Itoa(int(transport.ProtocolVersion)),
	}
	if raftAddr == "" {
		delete(scfg.Tags, serfevents.TagRaft)
	}
	m, err := serfevents.New(scfg)
	if err != nil {
		return nil, fmt.Errorf("agent: gossip on %s: %w", cfg.SerfAddr, err)
	}
	return &serfGossip{m}, nil
}

func (g *serfGossip) members() []Member {
	ms := g.Membership.Members()
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		p := m.Protocol
		out = append(out, Member{Name: string(m.ID), Addr: m.Addr, Status: m.Status.String(), Tags: m.Tags,
			Protocol: MemberProtocol{Min: p.Min, Max: p.Max, Cur: p.Cur, DelegateMin: p.DelegateMin, DelegateMax: p.DelegateMax, DelegateCur: p.DelegateCur}})
	}
	return out
}

func (g *serfGossip) join(ctx context.Context, addrs []string) (int, error) {
	return g.Membership.Join(ctx, addrs)
}

func (g *serfGossip) leave(ctx context.Context) error { return g.Membership.Leave(ctx) }

func (g *serfGossip) shutdown() error { return g.Membership.Shutdown() }

func (g *serfGossip) keyring(ctx context.Context) (KeyringStatus, error) {
	r, err := g.Membership.ListKeys(ctx)
	if errors.Is(err, serfevents.ErrNoEncryption) {
		return KeyringStatus{Encrypted: false, Keys: map[string]int{}}, nil
	}
	if err != nil {
		return KeyringStatus{}, err
	}
	st := KeyringStatus{Encrypted: true, Keys: r.Keys, Members: r.Members}
	for k, n := range r.PrimaryKeys {
		if st.Primary == "" || n > r.PrimaryKeys[st.Primary] {
			st.Primary = k
		}
	}
	return st, nil
}

func (g *serfGossip) keyringOp(ctx context.Context, op, key string) error {
	var err error
	switch op {
	case "install":
		_, err = g.Membership.InstallKey(ctx, key)
	case "use":
		_, err = g.Membership.UseKey(ctx, key)
	case "remove":
		_, err = g.Membership.RemoveKey(ctx, key)
	}
	switch {
	case errors.Is(err, serfevents.ErrNoEncryption):
		return fmt.Errorf("%w: keyring %s: gossip encryption is off (start agents with --gossip-key-file)", errNotEnabled, op)
	case err != nil:
		return badRequest{fmt.Errorf("keyring %s: %w", op, err)}
	}
	return nil
}

func nodeID(cfg Config) dstate.NodeID { return dstate.NodeID(cfg.NodeID) }
