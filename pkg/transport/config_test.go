package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config { return Config{NodeID: "a", BindAddr: "127.0.0.1:0"} }
	tests := []struct {
		name      string
		mutate    func(*Config)
		wantField string // "" means valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"defaults", func(c *Config) { *c = DefaultConfig(); c.NodeID = "a" }, ""},
		{"empty node id", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"long node id", func(c *Config) { c.NodeID = dstate.NodeID(strings.Repeat("x", MaxIDLen+1)) }, "NodeID"},
		{"long cluster name", func(c *Config) { c.ClusterName = strings.Repeat("x", MaxIDLen+1) }, "ClusterName"},
		{"empty bind addr", func(c *Config) { c.BindAddr = "" }, "BindAddr"},
		{"bind addr without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "BindAddr"},
		{"bad advertise addr", func(c *Config) { c.AdvertiseAddr = "nohost" }, "AdvertiseAddr"},
		{"negative max frame size", func(c *Config) { c.MaxFrameSize = -1 }, "MaxFrameSize"},
		{"huge max frame size", func(c *Config) { c.MaxFrameSize = maxFrameSizeLimit + 1 }, "MaxFrameSize"},
		{"negative max message size", func(c *Config) { c.MaxMessageSize = -1 }, "MaxMessageSize"},
		{"message limit below the frame limit", func(c *Config) { c.MaxFrameSize, c.MaxMessageSize = 100, 99 }, "MaxMessageSize"},
		{"negative queue size", func(c *Config) { c.QueueSize = -1 }, "QueueSize"},
		{"negative dial timeout", func(c *Config) { c.DialTimeout = -time.Second }, "DialTimeout"},
		{"negative handshake timeout", func(c *Config) { c.HandshakeTimeout = -time.Second }, "HandshakeTimeout"},
		{"negative write timeout", func(c *Config) { c.WriteTimeout = -time.Second }, "WriteTimeout"},
		{"negative idle timeout", func(c *Config) { c.IdleTimeout = -time.Second }, "IdleTimeout"},
		{"negative keepalive interval", func(c *Config) { c.KeepaliveInterval = -time.Second }, "KeepaliveInterval"},
		{"keepalive not under half the idle timeout", func(c *Config) { c.IdleTimeout, c.KeepaliveInterval = time.Second, 500*time.Millisecond }, "KeepaliveInterval"},
		{"keepalive over the default idle timeout", func(c *Config) { c.KeepaliveInterval = DefaultIdleTimeout }, "KeepaliveInterval"},
		{"tiny idle timeout", func(c *Config) { c.IdleTimeout = 1 }, "KeepaliveInterval"},
		{"negative read timeout", func(c *Config) { c.ReadTimeout = -time.Second }, "ReadTimeout"},
		{"negative max conns", func(c *Config) { c.MaxConns = -1 }, "MaxConns"},
		{"negative max conns per host", func(c *Config) { c.MaxConnsPerHost = -1 }, "MaxConnsPerHost"},
		{"negative reassembly budget", func(c *Config) { c.MaxReassemblySize = -1 }, "MaxReassemblySize"},
		{"reassembly budget below the message limit", func(c *Config) { c.MaxMessageSize, c.MaxReassemblySize = 2<<20, 1<<20 }, "MaxReassemblySize"},
		{"reassembly budget below the default message limit", func(c *Config) { c.MaxReassemblySize = DefaultMaxMessageSize - 1 }, "MaxReassemblySize"},
		{"reassembly budget equal to the message limit", func(c *Config) { c.MaxFrameSize, c.MaxMessageSize, c.MaxReassemblySize = 1<<20, 8<<20, 8<<20 }, ""},
		{"negative backoff min", func(c *Config) { c.ReconnectBackoffMin = -time.Second }, "ReconnectBackoffMin"},
		{"negative backoff max", func(c *Config) { c.ReconnectBackoffMax = -time.Second }, "ReconnectBackoffMax"},
		{"backoff max below min", func(c *Config) { c.ReconnectBackoffMin, c.ReconnectBackoffMax = time.Second, time.Millisecond }, "ReconnectBackoffMax"},
		{"backoff min above default max", func(c *Config) { c.ReconnectBackoffMin = time.Minute }, ""},
		{"tls without certificate", func(c *Config) { c.TLS = &tls.Config{} }, "TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			var cerr *ConfigError
			require.ErrorAs(t, err, &cerr)
			require.Equal(t, tt.wantField, cerr.Field)
			_, err = New(c)
			require.ErrorAs(t, err, &cerr, "New validates too")
		})
	}
}

func TestNewFillsDefaultsWithoutChangingTheCallersConfig(t *testing.T) {
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{{}}}
	cfg := Config{NodeID: "a", BindAddr: "127.0.0.1:0", TLS: tlsCfg}
	before := cfg
	tr, err := New(cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, tr.Close(context.Background())) }()

	require.Equal(t, before.MaxFrameSize, cfg.MaxFrameSize)
	require.Equal(t, before.QueueSize, cfg.QueueSize)
	require.Nil(t, cfg.Logger)
	require.Same(t, tlsCfg, cfg.TLS)
	require.Empty(t, tlsCfg.ServerName)

	require.Equal(t, DefaultMaxFrameSize, tr.cfg.MaxFrameSize)
	require.Equal(t, DefaultQueueSize, tr.cfg.QueueSize)
	require.Equal(t, DefaultDialTimeout, tr.cfg.DialTimeout)
	require.Equal(t, DefaultHandshakeTimeout, tr.cfg.HandshakeTimeout)
	require.Equal(t, DefaultWriteTimeout, tr.cfg.WriteTimeout)
	require.Equal(t, DefaultIdleTimeout, tr.cfg.IdleTimeout)
	require.Equal(t, DefaultIdleTimeout/3, tr.cfg.KeepaliveInterval)
	require.Equal(t, DefaultReadTimeout, tr.cfg.ReadTimeout)
	require.Equal(t, DefaultMaxConns, tr.cfg.MaxConns)
	require.Equal(t, DefaultMaxConnsPerHost, tr.cfg.MaxConnsPerHost)
	require.Equal(t, DefaultMaxReassemblySize, tr.cfg.MaxReassemblySize, "the budget holds two messages of the largest size")
	require.Equal(t, 2*DefaultMaxMessageSize, tr.cfg.MaxReassemblySize)
	require.Equal(t, DefaultReconnectBackoffMin, tr.cfg.ReconnectBackoffMin)
	require.Equal(t, DefaultReconnectBackoffMax, tr.cfg.ReconnectBackoffMax)
	require.NotSame(t, tlsCfg, tr.cfg.TLS, "the TLS config is cloned")
	require.NotEqual(t, "127.0.0.1:0", tr.Addr(), "the listener is bound by New")
}

func TestAdvertiseAddr(t *testing.T) {
	tr, err := New(Config{NodeID: "a", BindAddr: "127.0.0.1:0", AdvertiseAddr: "node-a.example:7946"})
	require.NoError(t, err)
	defer func() { require.NoError(t, tr.Close(context.Background())) }()
	require.Equal(t, "node-a.example:7946", tr.Addr())
}

func TestNewReportsListenError(t *testing.T) {
	a, err := New(Config{NodeID: "a", BindAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer func() { require.NoError(t, a.Close(context.Background())) }()
	_, err = New(Config{NodeID: "b", BindAddr: a.Addr()})
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrInvalidConfig))
}
