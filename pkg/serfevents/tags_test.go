package serfevents_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/serfevents"
)

func TestStatesTagRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		states map[string]uint32
		want   string
	}{
		{"none", nil, ""},
		{"one", map[string]uint32{"gauges": 1}, "gauges=1"},
		{"sorted", map[string]uint32{"zeta": 4294967295, "alpha": 2, "counter": 1}, "alpha=2,counter=1,zeta=4294967295"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := serfevents.EncodeStates(tt.states)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			back, err := serfevents.DecodeStates(got)
			require.NoError(t, err)
			if tt.states == nil {
				require.Empty(t, back)
			} else {
				require.Equal(t, tt.states, back)
			}
		})
	}
}

func TestStatesTagErrors(t *testing.T) {
	for _, name := range []string{"", "a=b", "a,b", "a b"} {
		_, err := serfevents.EncodeStates(map[string]uint32{name: 1})
		require.ErrorIs(t, err, serfevents.ErrBadStatesTag, "name %q", name)
	}
	for _, tag := range []string{"gauges", "gauges=", "gauges=x", "gauges=-1", "gauges=4294967296", "=1", "a=1,a=2", "a=1,"} {
		_, err := serfevents.DecodeStates(tag)
		require.ErrorIs(t, err, serfevents.ErrBadStatesTag, "tag %q", tag)
	}
}

func TestTagsSizeLimit(t *testing.T) {
	require.Equal(t, 512, serfevents.MaxTagsSize)
	small := map[string]string{serfevents.TagTransport: "127.0.0.1:7000"}
	require.NoError(t, serfevents.CheckTags(small))
	require.Less(t, serfevents.TagsSize(small), 40)
	// The size grows with the content.
	require.Greater(t, serfevents.TagsSize(map[string]string{"k": strings.Repeat("v", 100)}), 100)

	big := map[string]string{"k": strings.Repeat("v", 600)}
	err := serfevents.CheckTags(big)
	var se *serfevents.TagsSizeError
	require.ErrorAs(t, err, &se)
	require.Equal(t, serfevents.MaxTagsSize, se.Limit)
	require.Greater(t, se.Size, 600)
	require.ErrorContains(t, err, "limit is 512")
}

func TestNodeTagsRoundTrip(t *testing.T) {
	nt := serfevents.NodeTags{
		Transport: "10.0.0.1:7000", Raft: "10.0.0.1:7001", RaftRole: serfevents.RaftRoleVoter, Protocol: 1,
		States: map[string]uint32{"gauges": 1, "sessions": 3}, Extra: map[string]string{"dc": "east"},
	}
	tags, err := nt.Tags()
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		serfevents.TagTransport: "10.0.0.1:7000", serfevents.TagRaft: "10.0.0.1:7001",
		serfevents.TagRaftRole: "voter", serfevents.TagProtocol: "1", serfevents.TagStates: "gauges=1,sessions=3",
		"dc": "east",
	}, tags)
	tags[serfevents.TagBoot] = "0011223344556677"
	back, err := serfevents.ParseNodeTags(tags)
	require.NoError(t, err)
	require.Equal(t, nt, back)

	empty, err := serfevents.NodeTags{}.Tags()
	require.NoError(t, err)
	require.Empty(t, empty)

	_, err = serfevents.NodeTags{Extra: map[string]string{serfevents.TagBoot: "x"}}.Tags()
	require.ErrorContains(t, err, "reserved")
	_, err = serfevents.NodeTags{States: map[string]uint32{"a,b": 1}}.Tags()
	require.ErrorIs(t, err, serfevents.ErrBadStatesTag)
	many := map[string]uint32{}
	for i := range 60 {
		many[strings.Repeat("s", 5)+string(rune('A'+i))] = uint32(i)
	}
	_, err = serfevents.NodeTags{States: many}.Tags()
	require.ErrorIs(t, err, serfevents.ErrTagsTooLarge)

	_, err = serfevents.ParseNodeTags(map[string]string{serfevents.TagProtocol: "v1"})
	require.ErrorContains(t, err, serfevents.TagProtocol)
	_, err = serfevents.ParseNodeTags(map[string]string{serfevents.TagStates: "x"})
	require.ErrorIs(t, err, serfevents.ErrBadStatesTag)
}
