package cli

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// readmeExamples are the dstatectl commands of the README's "A 3-node
// cluster by hand" block, the agents left out, as argument lists.
func readmeExamples(t *testing.T) [][]string {
	t.Helper()
	data, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	doc := string(data)
	i := strings.Index(doc, "## A 3-node cluster by hand")
	require.GreaterOrEqual(t, i, 0, "README.md has no section \"A 3-node cluster by hand\"")
	block := doc[i:]
	block = block[strings.Index(block, "```sh")+len("```sh"):]
	block = block[:strings.Index(block, "```")]
	var out [][]string
	for _, line := range strings.Split(block, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "./dstatectl" || f[1] == "agent" {
			continue
		}
		out = append(out, f[1:])
	}
	require.NotEmpty(t, out, "no dstatectl examples found in the README")
	return out
}

// TestReadmeExamplesRun runs the README's dstatectl commands, as written
// (options after arguments included), against a live 3-node cluster: the
// README's admin addresses stand for the agents' real ones.
func TestReadmeExamplesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	examples := readmeExamples(t)
	var agents []*agent.Agent
	for i, id := range []string{"n1", "n2", "n3"} {
		a := startLiveAgent(t, id, func(cfg *agent.Config) {
			cfg.BootstrapExpect = 3
			if i > 0 {
				cfg.Join = []string{agents[0].Addrs().Serf}
			}
		})
		agents = append(agents, a)
	}
	// The README's admin addresses: n1 at the default, n2 and n3 as its
	// agent commands set them.
	addrs := map[string]string{DefaultAddr: agents[0].HTTPAddr(), "127.0.0.1:7390": agents[1].HTTPAddr(), "127.0.0.1:7400": agents[2].HTTPAddr()}
	require.Eventually(t, func() bool {
		st, err := agents[0].RaftStatus(context.Background())
		return err == nil && st.Leader != "" && len(agents[0].Members()) == 3
	}, 30*time.Second, 50*time.Millisecond, "a 3-node cluster with a Raft leader")
	for _, ex := range examples {
		args := append([]string(nil), ex...)
		if args[0] != "--addr" {
			args = append([]string{"--addr", DefaultAddr}, args...)
		}
		real, ok := addrs[args[1]]
		require.True(t, ok, "README example %q talks to %s, which this test does not map", ex, args[1])
		args[1] = real
		var code int
		var out, errOut bytes.Buffer
		require.Eventually(t, func() bool {
			out.Reset()
			errOut.Reset()
			code = Main(append([]string{"dstatectl"}, args...), &out, &errOut)
			return code == 0
		}, 20*time.Second, 100*time.Millisecond, "dstatectl %s: exit %d\n%s%s", strings.Join(ex, " "), code, &out, &errOut)
		t.Logf("dstatectl %s\n%s", strings.Join(ex, " "), out.String())
		if slices.Contains(ex, "get") && slices.Contains(ex, "greeting") {
			require.Contains(t, out.String(), "hello", "the README reads back what it wrote")
		}
	}
}
