package serfevents_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/serfevents"
)

func TestConfigValidateNamesTheField(t *testing.T) {
	valid := serfevents.LocalConfig()
	valid.NodeID = "n1"
	require.NoError(t, valid.Validate())
	zero := serfevents.Config{NodeID: "n1"}
	require.NoError(t, zero.Validate(), "zero fields take defaults")

	tests := []struct {
		field  string
		mutate func(*serfevents.Config)
	}{
		{"NodeID", func(c *serfevents.Config) { c.NodeID = "" }},
		{"ClusterName", func(c *serfevents.Config) { c.ClusterName = strings.Repeat("c", 256) }},
		{"BindAddr", func(c *serfevents.Config) { c.BindAddr = "127.0.0.1" }},
		{"BindAddr", func(c *serfevents.Config) { c.BindAddr = "localhost:7946" }},
		{"BindAddr", func(c *serfevents.Config) { c.BindAddr = "127.0.0.1:70000" }},
		{"AdvertiseAddr", func(c *serfevents.Config) { c.AdvertiseAddr = "127.0.0.1:0" }},
		{"AdvertiseAddr", func(c *serfevents.Config) { c.AdvertiseAddr = "example.com:7946" }},
		{"Tags", func(c *serfevents.Config) { c.Tags = map[string]string{serfevents.TagBoot: "x"} }},
		{"Tags", func(c *serfevents.Config) { c.Tags = map[string]string{"x": strings.Repeat("y", 600)} }},
		{"Seeds[1]", func(c *serfevents.Config) { c.Seeds = []string{"127.0.0.1:1", "nope"} }},
		{"ReconnectTimeout", func(c *serfevents.Config) { c.ReconnectTimeout = -time.Second }},
		{"Timing.ProbeInterval", func(c *serfevents.Config) { c.Timing.ProbeInterval = -1 }},
		{"Timing.ProbeTimeout", func(c *serfevents.Config) { c.Timing.ProbeTimeout = c.Timing.ProbeInterval }},
		{"Timing.SuspicionMult", func(c *serfevents.Config) { c.Timing.SuspicionMult = -1 }},
		{"QueueSize", func(c *serfevents.Config) { c.QueueSize = -1 }},
		{"JoinMaxAttempts", func(c *serfevents.Config) { c.JoinMaxAttempts = -1 }},
		{"Keys", func(c *serfevents.Config) { c.Keys = []string{"a"}; c.KeyFile = "/k" }},
		{"Keys[0]", func(c *serfevents.Config) { c.Keys = []string{"bm90IGEga2V5"} }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			c := valid
			c.Tags = map[string]string{}
			tt.mutate(&c)
			before := c
			err := c.Validate()
			var ce *serfevents.ConfigError
			require.ErrorAs(t, err, &ce)
			require.ErrorIs(t, err, serfevents.ErrInvalidConfig)
			require.Equal(t, tt.field, ce.Field, "error: %v", err)
			require.Equal(t, before, c, "Validate changes nothing")
			_, err = serfevents.New(c)
			require.True(t, errors.As(err, &ce), "New validates: %v", err)
		})
	}
}

func TestNewDoesNotChangeTheCallersConfig(t *testing.T) {
	skipShort(t)
	cfg := serfevents.Config{NodeID: "n1", BindAddr: "127.0.0.1:0", Tags: map[string]string{"a": "b"},
		Seeds: []string{"127.0.0.1:1"}, JoinMaxAttempts: 1, Timing: serfevents.LocalTiming(), Logger: testLogger()}
	before := cfg
	tags := map[string]string{"a": "b"}
	m := start(t, cfg)
	require.Equal(t, before.Timing, cfg.Timing)
	require.Equal(t, before.BindAddr, cfg.BindAddr)
	require.Equal(t, tags, cfg.Tags)
	require.Equal(t, []string{"127.0.0.1:1"}, cfg.Seeds)
	require.Zero(t, cfg.QueueSize)
	require.Equal(t, tags, m.Tags())
	require.NotEqual(t, "127.0.0.1:0", m.LocalNode().Addr, "port 0 picked a real port")
	eventually(t, "the one join attempt failed", func() bool { return m.Stats().LastJoinError != "" })
	require.Equal(t, int64(1), m.Stats().JoinAttempts)
	require.False(t, m.Stats().Joined)
}

func TestFailureDetectionTime(t *testing.T) {
	local := serfevents.LocalTiming()
	// 3 probe intervals + probe timeout + 3 × (2 × 200ms) of suspicion.
	require.Equal(t, 3*200*time.Millisecond+100*time.Millisecond+3*2*200*time.Millisecond, local.FailureDetectionTime(3))
	require.Greater(t, serfevents.LANTiming().FailureDetectionTime(3), local.FailureDetectionTime(3))
	require.Equal(t, serfevents.LANTiming().FailureDetectionTime(5), serfevents.Timing{}.FailureDetectionTime(5))
}
