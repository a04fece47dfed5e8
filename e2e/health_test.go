package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// health returns nd's full health report and the HTTP status it came with
// (200 or 503: an unhealthy node answers 503 with the report).
func (c *apiClient) health(ctx context.Context) (agent.Health, int, error) {
	var h agent.Health
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/health", nil)
	if err != nil {
		return h, 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return h, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return h, resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return h, resp.StatusCode, &apiError{Status: resp.StatusCode, Msg: string(b)}
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, resp.StatusCode, fmt.Errorf("HTTP %d: %w: %s", resp.StatusCode, err, b)
	}
	return h, resp.StatusCode, nil
}

// probe returns the HTTP status of a GET of path on nd.
func (c *apiClient) probe(path string) (int, error) {
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// healthyReport says what, if anything, makes h other than a healthy
// report of a node whose every state has peers as its healthy peers, each
// counted once, and whose Raft section names a leader and voters.
func healthyReport(h agent.Health, code int, peers int, voters []string) string {
	if code != http.StatusOK || h.Status != agent.StatusHealthy || !h.Ready {
		return fmt.Sprintf("HTTP %d, %s, ready %v: %+v", code, h.Status, h.Ready, h)
	}
	for _, s := range h.States {
		if s.HealthyPeers != peers || s.StalePeers != 0 || s.FailingPeers != 0 || s.Status != agent.StatusHealthy {
			return fmt.Sprintf("state %+v, want %d healthy peers", s, peers)
		}
	}
	if h.Raft == nil || h.Raft.Leader == "" || !slices.Equal(h.Raft.Voters, voters) {
		return fmt.Sprintf("raft %+v, want a leader and voters %v", h.Raft, voters)
	}
	return ""
}

// TestIdleClusterNeverFlaps: an idle, healthy 3-node cluster with the
// default configuration (no --fast: digests every 500 ms, the load state
// synced every second, a 5 s pull timeout) is polled every 100 ms, each
// node's /v1/health, /v1/health/live and /v1/health/ready, for 10 s (60 s
// with E2E_FULL). Every answer is 200 and healthy, with every peer counted
// once as healthy in every state and the Raft section complete: a view
// is judged against its state's own sync schedule, so one that is
// renewed on schedule never counts as stale.
func TestIdleClusterNeverFlaps(t *testing.T) {
	span := 10 * time.Second
	if full() {
		span = 60 * time.Second
	}
	c := newCluster(t, 3, clusterOpts{extra: func(int) []string {
		return []string{"--fast=false", "--load-interval", time.Duration(agent.DefaultConfig().LoadInterval).String()}
	}})
	c.waitMembers(c.nodes, allAlive(c.nodes), 60*time.Second)
	c.waitLeader(c.nodes, 60*time.Second)
	c.waitReady(c.nodes, 60*time.Second)
	voters := ids(c.nodes)
	for _, nd := range c.nodes {
		eventually(t, nd.id+" reports itself healthy", 60*time.Second, func() (bool, string) {
			h, code, err := nd.api.health(bg())
			if err != nil {
				return false, err.Error()
			}
			why := healthyReport(h, code, 2, voters)
			return why == "", why
		})
	}

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	polls := 0
	for end := time.Now().Add(span); time.Now().Before(end); <-tick.C {
		for _, nd := range c.nodes {
			h, code, err := nd.api.health(bg())
			if err != nil {
				t.Fatalf("poll %d of %s: %v", polls, nd.id, err)
			}
			if why := healthyReport(h, code, 2, voters); why != "" {
				t.Fatalf("poll %d: %s is not healthy on an idle cluster: %s", polls, nd.id, why)
			}
			for _, path := range []string{"/v1/health/live", "/v1/health/ready"} {
				if code, err := nd.api.probe(path); err != nil || code != http.StatusOK {
					t.Fatalf("poll %d: %s %s answered %d (%v)", polls, nd.id, path, code, err)
				}
			}
		}
		polls++
	}
	t.Logf("%d polls of 3 nodes over %s: all healthy", polls, span)
}

// TestHealthOneNodeDown: with one follower of three killed, the two others
// stay live and ready (200) and report themselves degraded with HTTP 200,
// not unhealthy: in every state the killed node is named failing with the
// reason and the other peer healthy, each peer counted once.
func TestHealthOneNodeDown(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	leader := c.node(c.waitLeader(c.nodes, 30*time.Second))
	c.waitReady(c.nodes, 30*time.Second)
	var victim *node
	for _, nd := range c.nodes {
		if nd != leader {
			victim = nd
			break
		}
	}
	c.kill(victim)
	for _, nd := range without(c.nodes, victim) {
		eventually(t, fmt.Sprintf("%s reports %s failing in every state", nd.id, victim.id), 30*time.Second, func() (bool, string) {
			h, code, err := nd.api.health(bg())
			if err != nil {
				return false, err.Error()
			}
			if code != http.StatusOK || h.Status != agent.StatusDegraded || !h.Ready {
				return false, fmt.Sprintf("HTTP %d, %s, ready %v, reasons %v", code, h.Status, h.Ready, h.Reasons)
			}
			if len(h.States) == 0 {
				return false, "no states"
			}
			for _, s := range h.States {
				if s.HealthyPeers+s.StalePeers+s.FailingPeers != 2 {
					return false, fmt.Sprintf("%s counts %d+%d+%d peers, want 2", s.State, s.HealthyPeers, s.StalePeers, s.FailingPeers)
				}
				if s.HealthyPeers != 1 || len(s.Failing) != 1 || s.Failing[0].Node != victim.id || s.Failing[0].Reason == "" || s.Status != agent.StatusDegraded {
					return false, fmt.Sprintf("%+v", s)
				}
			}
			return true, ""
		})
		for _, path := range []string{"/v1/health/live", "/v1/health/ready"} {
			if code, err := nd.api.probe(path); err != nil || code != http.StatusOK {
				t.Fatalf("%s %s answered %d (%v) with one peer down", nd.id, path, code, err)
			}
		}
	}
}
