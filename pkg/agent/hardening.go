package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/internal/certid"
	"github.com/dstate-go/dstate/internal/tokenfile"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// TestLoadState is the in-memory delta kv state an agent started with
// Config.TestLoadRate mutates.
const TestLoadState = "test-load"

// resolveAdminToken fills cfg.AdminToken from AdminTokenFile when unset.
func resolveAdminToken(cfg *Config) error {
	if cfg.AdminToken != "" || cfg.AdminTokenFile == "" {
		return nil
	}
	tok, err := tokenfile.Read(cfg.AdminTokenFile)
	if err != nil {
		return fmt.Errorf("agent: admin_token_file %s: %w", cfg.AdminTokenFile, err)
	}
	cfg.AdminToken = tok
	return nil
}

// loadTLS reads the node's mutual-TLS config and checks that the
// certificate names the node ID, which every peer will require.
func loadTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("agent: tls_cert_file/tls_key_file: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("agent: tls_cert_file %s: %w", cfg.TLSCertFile, err)
	}
	if !certid.Names(leaf, cfg.NodeID) {
		return nil, fmt.Errorf("agent: tls_cert_file %s is for %q %q, not node_id %q: peers would refuse it (issue one with `dstatectl tls cert --node-id %s`)",
			cfg.TLSCertFile, leaf.Subject.CommonName, leaf.DNSNames, cfg.NodeID, cfg.NodeID)
	}
	caPEM, err := os.ReadFile(cfg.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("agent: tls_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("agent: tls_ca_file %s holds no PEM certificate", cfg.TLSCAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}, nil
}

// httpTLS returns the admin API's server TLS config, or nil for plain HTTP.
func httpTLS(cfg Config) (*tls.Config, error) {
	if cfg.HTTPTLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.HTTPTLSCertFile, cfg.HTTPTLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("agent: http_tls_cert_file/http_tls_key_file: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// applyTransportLimits sets the transport's limits from cfg.
func applyTransportLimits(cfg Config, t *transport.Config) {
	if cfg.MaxFrameBytes > 0 {
		t.MaxFrameSize = cfg.MaxFrameBytes
	}
	if cfg.MaxMessageBytes > 0 {
		t.MaxMessageSize = cfg.MaxMessageBytes
		t.MaxFrameSize = min(t.MaxFrameSize, cfg.MaxMessageBytes)
	}
	if cfg.PeerQueueFrames > 0 {
		t.QueueSize = cfg.PeerQueueFrames
	}
	t.LogInterval = time.Duration(cfg.LimitLogInterval)
}

// applyNodeLimits sets the host's decode limits from cfg.
func applyNodeLimits(cfg Config, n *node.Config) {
	n.Limits = dstate.DecodeLimits{
		MaxSnapshot: cfg.MaxSnapshotBytes, MaxDelta: cfg.MaxDeltaBytes,
		MaxNotifications: cfg.MaxFeedNotifications, MaxFeedStates: cfg.MaxFeedStates, MaxFeedPeers: cfg.MaxFeedPeers,
	}
	n.LogInterval = time.Duration(cfg.LimitLogInterval)
}

// maxRequestBytes is the admin API's request body limit.
func (a *Agent) maxRequestBytes() int64 {
	if a.cfg.MaxRequestBytes > 0 {
		return int64(a.cfg.MaxRequestBytes)
	}
	return DefaultMaxRequestBytes
}

// testLoadKeys is the test load's key space: small, so that the load
// measures replication rather than the kv state's copy of its own view,
// which grows with the map.
var testLoadKeys = func() []string {
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	return keys
}()

// loadStats counts the test load generator's work.
type loadStats struct {
	written, refused, behind atomic.Uint64
}

// startTestLoad registers test-load and mutates it TestLoadRate times per
// second over a bounded key space, from several writers, until the agent
// stops or TestLoadFor has passed. Writes the state's actor refuses (a full mailbox) are counted as
// refused; ticks whose writes were not all issued by the next tick are
// counted as behind. Both are backpressure, shown in
// dstate_test_load_total.
func (a *Agent) startTestLoad(ctx context.Context, cfg dstate.StateConfig) error {
	s, err := RegisterDelta(ctx, a, KVDef{StateName: TestLoadState}, node.StateOptions[KV]{Config: cfg, Initial: KV{}})
	if err != nil {
		return fmt.Errorf("agent: register %s: %w", TestLoadState, err)
	}
	a.mu.Lock()
	a.testLoad = s
	a.mu.Unlock()
	const tick = 10 * time.Millisecond
	const writers = 8
	perTick := max(1, a.cfg.TestLoadRate/int(time.Second/tick))
	work := make(chan int, perTick)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := KVChange{Key: testLoadKeys[i%len(testLoadKeys)], Value: strconv.Itoa(i)}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, _, err := s.MutateDelta(ctx, func(m *KV) KVChange {
					if *m == nil {
						*m = KV{}
					}
					applyKV(*m, c)
					return c
				})
				cancel()
				if err != nil {
					a.loadStats.refused.Add(1)
					if !errors.Is(err, dstate.ErrMailboxFull) {
						a.log.Debug("test load: write failed", "err", err)
					}
					continue
				}
				a.loadStats.written.Add(1)
			}
		}()
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		defer wg.Wait()
		defer close(work)
		t := time.NewTicker(tick)
		defer t.Stop()
		var until <-chan time.Time
		if a.cfg.TestLoadFor > 0 {
			end := time.NewTimer(time.Duration(a.cfg.TestLoadFor))
			defer end.Stop()
			until = end.C
		}
		n := 0
		for {
			select {
			case <-a.bgStop:
				return
			case <-until:
				a.log.Info("test load finished", "written", a.loadStats.written.Load(),
					"refused", a.loadStats.refused.Load(), "behind", a.loadStats.behind.Load())
				return
			case <-t.C:
			}
		issue:
			for range perTick {
				select {
				case work <- n:
					n++
				case <-a.bgStop:
					return
				case <-t.C:
					a.loadStats.behind.Add(1)
					break issue
				}
			}
		}
	}()
	return nil
}
