package e2e

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// netControl cuts, thins and delays the links between a cluster's nodes
// (node i of the cluster is index i). The network lab implements it where
// the test can build one (Linux, root, iproute2 and nftables).
type netControl interface {
	// partition cuts every node of a off from every node of b, both ways.
	partition(a, b []int)
	// oneWay drops every packet from node from to the nodes to.
	oneWay(from int, to []int)
	// loss drops pct % of the packets every node receives.
	loss(pct int)
	// canDelay reports whether delay works (a delaying link is in place).
	canDelay() bool
	// delay holds every packet for d ± jitter.
	delay(d, jitter time.Duration)
	// heal removes every network fault.
	heal()
}

// nemesisDelay and nemesisJitter are the delay fault's figures: small
// enough for --fast's Raft leader lease, large enough to reorder packets.
const (
	nemesisDelay  = 15 * time.Millisecond
	nemesisJitter = 10 * time.Millisecond
)

// index returns nd's index in the cluster.
func (n *nemesis) index(nd *node) int { return slices.Index(n.c.nodes, nd) }

// netFault marks a network fault in effect and returns its heal.
func (n *nemesis) netFault() func() {
	n.netBusy = true
	return func() {
		n.net.heal()
		n.netBusy = false
	}
}

// currentLeader returns the node of nodes that reports itself Raft
// leader now (one pass, no waiting), or nil.
func currentLeader(nodes []*node) *node {
	for _, nd := range nodes {
		if st, err := raftStatus(nd, time.Second); err == nil && st.State == "Leader" {
			return nd
		}
	}
	return nil
}

// partitionFault cuts a minority of the running nodes (up to the budget
// of unavailable nodes; half the time holding the Raft leader) off from
// the rest, both ways, with nftables rules in every namespace: gossip,
// Raft and the state transport together.
type partitionFault struct{}

func (partitionFault) kind() string { return "partition" }

func (partitionFault) inject(n *nemesis) (*activeFault, bool) {
	cands := n.available()
	if n.net == nil || n.netBusy || n.spare() < 1 || len(cands) < 2 {
		return nil, false
	}
	size := 1 + n.r.IntN(min(n.spare(), len(cands)-1))
	n.r.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	if n.r.IntN(2) == 0 {
		if l := currentLeader(cands); l != nil {
			i := slices.Index(cands, l)
			cands[0], cands[i] = cands[i], cands[0]
		}
	}
	minority := cands[:size]
	var a, b []int
	for i, nd := range n.c.nodes {
		if slices.Contains(minority, nd) {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	var rest []*node
	for _, i := range b {
		rest = append(rest, n.c.nodes[i])
	}
	n.net.partition(a, b)
	return &activeFault{kind: "partition", desc: fmt.Sprintf("partition %v | %v", ids(minority), ids(rest)),
		takes: slices.Clone(minority), heal: n.netFault()}, true
}

// oneWayFault drops every packet one running node sends to the others:
// it hears them, they do not hear it.
type oneWayFault struct{}

func (oneWayFault) kind() string { return "one-way" }

func (oneWayFault) inject(n *nemesis) (*activeFault, bool) {
	cands := n.available()
	if n.net == nil || n.netBusy || !n.budget() || len(cands) == 0 {
		return nil, false
	}
	nd := n.pick(cands)
	var to []int
	for i, o := range n.c.nodes {
		if o != nd {
			to = append(to, i)
		}
	}
	n.net.oneWay(n.index(nd), to)
	return &activeFault{kind: "one-way", desc: "drop every packet " + nd.id + " sends (it still hears the others)",
		takes: []*node{nd}, heal: n.netFault()}, true
}

// lossFault drops 10 % or 30 % of the packets every node receives.
type lossFault struct{}

func (lossFault) kind() string { return "loss" }

func (lossFault) inject(n *nemesis) (*activeFault, bool) {
	if n.net == nil || n.netBusy {
		return nil, false
	}
	pct := []int{10, 30}[n.r.IntN(2)]
	n.net.loss(pct)
	return &activeFault{kind: "loss", desc: fmt.Sprintf("%d %% packet loss on every node", pct), heal: n.netFault()}, true
}

// delayFault holds every packet for nemesisDelay ± nemesisJitter.
type delayFault struct{}

func (delayFault) kind() string { return "delay" }

func (delayFault) inject(n *nemesis) (*activeFault, bool) {
	if n.net == nil || n.netBusy || !n.net.canDelay() {
		return nil, false
	}
	n.net.delay(nemesisDelay, nemesisJitter)
	return &activeFault{kind: "delay", desc: fmt.Sprintf("%s ± %s delay on every packet", nemesisDelay, nemesisJitter), heal: n.netFault()}, true
}

// faultKinds lists the kinds the nemesis draws, for the log.
func (n *nemesis) faultKinds() string {
	var out []string
	for _, f := range n.faults {
		out = append(out, f.kind())
	}
	return strings.Join(out, ", ")
}
