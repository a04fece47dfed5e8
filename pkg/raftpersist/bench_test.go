package raftpersist

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// BenchmarkSave measures acknowledged saves per second on a 3-node
// loopback cluster (fsync on) with 128-byte states, 8×GOMAXPROCS
// concurrent savers each on its own key:
//
//   - group/leader, group/follower: Save with group commit (the default),
//     called on the leader or on a follower (forwarded);
//
//   - single/leader, single/follower: Save with DisableGroupCommit;
//
//   - raw-apply/leader: raft.Apply of the same one-save command on the
//     leader, waiting for each future (the baseline without this package).
//
//     go test -run '^$' -bench BenchmarkSave -benchtime 3s ./pkg/raftpersist/
func BenchmarkSave(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 128)
	for _, mode := range []string{"group", "single"} {
		for _, where := range []string{"leader", "follower"} {
			b.Run(mode+"/"+where, func(b *testing.B) {
				c := newCluster(b, 3, func(_ int, cfg *Config) {
					cfg.DisableGroupCommit = mode == "single"
					anyOwner(0, cfg)
					cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
				})
				s := c.node(c.leader())
				if where == "follower" {
					s = c.node(c.follower())
				}
				var worker atomic.Int64
				b.SetParallelism(benchParallelism)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					p := stateOfNode(s, "bench", dstate.NodeID(fmt.Sprint("w", worker.Add(1))))
					ctx := context.Background()
					for age := uint64(1); pb.Next(); age++ {
						if err := p.Save(ctx, obj(1, age, string(payload)), nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
			})
		}
	}
	b.Run("raw-apply/leader", func(b *testing.B) {
		c := newCluster(b, 3, func(_ int, cfg *Config) {
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		})
		r := c.node(c.leader()).Raft()
		var worker atomic.Int64
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			node := dstate.NodeID(fmt.Sprint("w", worker.Add(1)))
			for age := uint64(1); pb.Next(); age++ {
				cmd := encodeSaveCommand([]*dstate.StoredEnvelope{{State: "bench", Node: node, Generation: dstate.Generation{Incarnation: 1, Age: age}, StorageVersion: 1, Data: payload}})
				f := r.Apply(cmd, 0)
				if err := f.Error(); err != nil {
					b.Error(err)
					return
				}
				if ar := f.Response().(*applyResponse); ar.err != nil || ar.results[0].fenced {
					b.Errorf("apply: %v %+v", ar.err, ar.results)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
	})
}

// benchParallelism is the number of savers per GOMAXPROCS (DSTATE_BENCH_PAR).
var benchParallelism = func() int {
	if n, err := strconv.Atoi(os.Getenv("DSTATE_BENCH_PAR")); err == nil && n > 0 {
		return n
	}
	return 8
}()
