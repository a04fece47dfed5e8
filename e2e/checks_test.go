package e2e

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// memberStatus returns name's status as observer sees it ("" if unknown).
func memberStatus(ms []agent.Member, name string) string {
	for _, m := range ms {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

// waitMembers waits until every observer reports each of want's members
// with the wanted status, and returns how long that took.
func (c *cluster) waitMembers(observers []*node, want map[string]string, timeout time.Duration) time.Duration {
	c.t.Helper()
	return eventually(c.t, fmt.Sprintf("%v report members %v", ids(observers), want), timeout, func() (bool, string) {
		for _, o := range observers {
			ms, err := o.api.members()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", o.id, err)
			}
			for name, st := range want {
				if got := memberStatus(ms, name); got != st {
					return false, fmt.Sprintf("%s sees %s as %q, want %q", o.id, name, got, st)
				}
			}
		}
		return true, ""
	})
}

// allAlive is the want map of waitMembers for nodes all alive.
func allAlive(nodes []*node) map[string]string {
	m := map[string]string{}
	for _, nd := range nodes {
		m[nd.id] = "alive"
	}
	return m
}

// waitLeader waits until every observer names the same Raft leader, one of
// them, and returns it.
func (c *cluster) waitLeader(observers []*node, timeout time.Duration) string {
	c.t.Helper()
	var leader string
	eventually(c.t, fmt.Sprintf("%v agree on a raft leader among them", ids(observers)), timeout, func() (bool, string) {
		leader = ""
		for _, o := range observers {
			st, err := o.api.raft()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", o.id, err)
			}
			if st.Leader == "" || (leader != "" && st.Leader != leader) {
				return false, fmt.Sprintf("%s names leader %q (others %q)", o.id, st.Leader, leader)
			}
			leader = st.Leader
		}
		if !slices.Contains(ids(observers), leader) {
			return false, fmt.Sprintf("leader %q is not one of %v", leader, ids(observers))
		}
		return true, ""
	})
	return leader
}

// waitReady waits until nd has registered durable-kv (Raft elected a
// leader and nd loaded its state).
func (c *cluster) waitReady(nodes []*node, timeout time.Duration) time.Duration {
	c.t.Helper()
	return eventually(c.t, fmt.Sprintf("durable-kv is ready on %v", ids(nodes)), timeout, func() (bool, string) {
		for _, nd := range nodes {
			var states []agent.StateInfo
			if err := nd.api.get(bg(), "/v1/states", nil, &states); err != nil {
				return false, fmt.Sprintf("%s: %v", nd.id, err)
			}
			if !slices.ContainsFunc(states, func(s agent.StateInfo) bool { return s.Name == agent.DurableKVState }) {
				return false, nd.id + " has not registered durable-kv yet"
			}
		}
		return true, ""
	})
}

// views returns state's views as nd holds them, by owner.
func views(nd *node, state string) (map[string]agent.ViewEntry, error) {
	d, err := nd.api.dump(state, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: dump %s: %w", nd.id, state, err)
	}
	m := map[string]agent.ViewEntry{}
	for _, v := range d.Views {
		m[v.Node] = v
	}
	return m, nil
}

// converged reports whether every one of nodes holds, for every one of
// nodes, the owner's own generation and value of state, with nothing
// pending.
func converged(state string, nodes []*node) (bool, string) {
	held := map[string]map[string]agent.ViewEntry{}
	for _, nd := range nodes {
		m, err := views(nd, state)
		if err != nil {
			return false, err.Error()
		}
		held[nd.id] = m
	}
	for _, owner := range nodes {
		self, ok := held[owner.id][owner.id]
		if !ok {
			return false, fmt.Sprintf("%s holds no view of itself in %s", owner.id, state)
		}
		for _, h := range nodes {
			v, ok := held[h.id][owner.id]
			switch {
			case !ok:
				return false, fmt.Sprintf("%s holds no view of %s in %s", h.id, owner.id, state)
			case v.Generation != self.Generation || v.Pending != "":
				return false, fmt.Sprintf("%s holds %s of %s at %s (pending %q), the owner is at %s", h.id, state, owner.id, v.Generation, v.Pending, self.Generation)
			case !reflect.DeepEqual(v.Value, self.Value):
				return false, fmt.Sprintf("%s holds %s of %s = %v, the owner has %v", h.id, state, owner.id, v.Value, self.Value)
			}
		}
	}
	return true, ""
}

// waitConverged waits until every state in states has converged among
// nodes and returns how long it took.
func (c *cluster) waitConverged(nodes []*node, timeout time.Duration, states ...string) time.Duration {
	c.t.Helper()
	return eventually(c.t, fmt.Sprintf("%v converge on %s", ids(nodes), strings.Join(states, ", ")), timeout, func() (bool, string) {
		for _, s := range states {
			if ok, why := converged(s, nodes); !ok {
				return false, why
			}
		}
		return true, ""
	})
}

// kvValue returns key in owner's map as holder holds it.
func kvValue(holder *node, state, owner, key string) (string, bool, error) {
	m, err := views(holder, state)
	if err != nil {
		return "", false, err
	}
	v, ok := m[owner]
	if !ok {
		return "", false, fmt.Errorf("%s holds no view of %s in %s", holder.id, owner, state)
	}
	mv, _ := v.Value.(map[string]any)
	s, ok := mv[key].(string)
	return s, ok, nil
}

// waitValue waits until every holder sees owner's key at value.
func (c *cluster) waitValue(holders []*node, state string, owner *node, key, value string, timeout time.Duration) time.Duration {
	c.t.Helper()
	return eventually(c.t, fmt.Sprintf("%v see %s's %s=%s in %s", ids(holders), owner.id, key, value, state), timeout, func() (bool, string) {
		for _, h := range holders {
			got, _, err := kvValue(h, state, owner.id, key)
			if err != nil {
				return false, err.Error()
			}
			if got != value {
				return false, fmt.Sprintf("%s sees %q", h.id, got)
			}
		}
		return true, ""
	})
}

// mustPut writes key=value to nd's own map, retrying while durable-kv is
// not ready.
func (c *cluster) mustPut(nd *node, state, key, value string) agent.WriteResult {
	c.t.Helper()
	var res agent.WriteResult
	eventually(c.t, fmt.Sprintf("put %s=%s on %s (%s)", key, value, nd.id, state), 20*time.Second, func() (bool, string) {
		var err error
		res, err = nd.api.put(bg(), state, key, value)
		return err == nil, fmt.Sprint(err)
	})
	return res
}
