package simdemo

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// Nodes is the size of the demo cluster.
const Nodes = 5

// maxTables bounds the step-by-step tables printed while one phase
// converges; later steps show only in the converged table.
const maxTables = 4

// settleTicks bounds each phase; the demo fails rather than loop.
const settleTicks = 400

// crashed is the node the demo crashes and restarts.
const crashed dstate.NodeID = "n3"

// Run prints the demo for seed to w. It returns an error only when w fails
// or the simulated cluster does not converge within its bounds (which the
// protocol should make impossible).
func Run(w io.Writer, seed uint64) error {
	d := &demo{w: w}
	faults := dstatetest.Faults{Drop: 0.2, Reorder: 0.3, Duplicate: 0.1}
	cfg := dstatetest.DefaultSimStateConfig()
	cfg.SyncStrategy.PeriodicFullSync = time.Second
	c, err := dstatetest.NewExampleSimCluster(dstatetest.SimConfig{
		Seed: seed, Nodes: Nodes, States: dstatetest.SimCounter, CounterConfig: cfg, Faults: faults,
	})
	if err != nil {
		return err
	}
	d.c = c
	d.printf("dstate demo: %d simulated nodes replicating a counter, seed %d\n", Nodes, seed)
	d.printf("network: %s (1 tick = %s, periodic full sync every %s)\n", faults, dstatetest.DefaultSimTick, cfg.SyncStrategy.PeriodicFullSync)
	d.printf("each cell is the row node's view of the column node: generation (vINCARNATION:AGE) = count\n")
	d.printf("  * behind the owner   ~ owner is down (last known view)   - no view   . node is down\n")

	d.section("1. Five nodes start and exchange snapshots")
	d.table()
	if err := d.converge(); err != nil {
		return err
	}

	d.section("2. Every node counts; the changes spread over the lossy network")
	for i, id := range c.Live() {
		for range i + 1 {
			if _, err := c.MutateCounter(id, dstate.Default, func(x *dstatetest.Counter) { x.Count += 10 }); err != nil {
				return err
			}
		}
	}
	d.printf("n1 counted once, n2 twice, ... n5 five times (10 each)\n")
	d.table()
	if err := d.converge(); err != nil {
		return err
	}

	d.section(fmt.Sprintf("3. %s crashes; the others keep its last view, which goes stale", crashed))
	oldGen := c.Counter(crashed).Generation()
	if err := c.Crash(crashed); err != nil {
		return err
	}
	for _, id := range c.Live() {
		if _, err := c.MutateCounter(id, dstate.Default, func(x *dstatetest.Counter) { x.Count++ }); err != nil {
			return err
		}
	}
	d.printf("the running nodes count once more\n")
	if err := d.converge(); err != nil {
		return err
	}
	c.Run(15)
	q, err := c.Query("n1", "counter", time.Second)
	if err != nil {
		return err
	}
	d.printf("%s later, n1's query with max staleness 1s reports stale peers %v\n", 15*dstatetest.DefaultSimTick, q.Stale)
	d.table()

	d.section(fmt.Sprintf("4. %s restarts empty with a new incarnation", crashed))
	if err := c.Restart(crashed); err != nil {
		return err
	}
	newGen := c.Counter(crashed).Generation()
	d.printf("%s was at %s and is now at %s: a larger incarnation wins even at age 0\n", crashed, oldGen, newGen)
	d.table()
	if err := d.converge(); err != nil {
		return err
	}

	d.section("Final views")
	d.dump()
	s := c.Stats()
	d.printf("\nnetwork: %d sent, %d delivered, %d dropped, %d duplicated, %d reordered, %d lost to a down node\n",
		s.Sent, s.Delivered, s.Dropped, s.Duplicated, s.Reordered, s.Lost)
	d.printf("ticks: %d, trace hash: %#016x\n", c.Tick(), c.TraceHash())
	return d.err
}

// demo holds the cluster and the first write error.
type demo struct {
	w   io.Writer
	c   *dstatetest.SimCluster
	err error
}

func (d *demo) printf(format string, args ...any) {
	if d.err != nil {
		return
	}
	_, d.err = fmt.Fprintf(d.w, format, args...)
}

func (d *demo) section(title string) {
	d.printf("\n== %s ==\n", title)
}

// converge steps until the cluster converged, printing the table after
// each of the first steps that changed a view.
func (d *demo) converge() error {
	shown := 0
	last := d.signature()
	for i := 0; i < settleTicks; i++ {
		if d.c.Converged() {
			d.printf("converged at tick %d\n", d.c.Tick())
			d.table()
			return d.err
		}
		d.c.Step()
		if sig := d.signature(); sig != last && shown < maxTables && !d.c.Converged() {
			d.table()
			last = sig
			shown++
		}
	}
	return d.c.CheckConverged()
}

// signature identifies the cells of the table, to skip unchanged ones.
func (d *demo) signature() string {
	var b strings.Builder
	for _, obs := range d.c.Nodes() {
		for _, own := range d.c.Nodes() {
			b.WriteString(cell(d.c, obs, own))
			b.WriteByte('|')
		}
	}
	return b.String()
}

// table prints every node's view of every node.
func (d *demo) table() {
	if d.err != nil {
		return
	}
	c := d.c
	nodes := c.Nodes()
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "tick %d\t", c.Tick())
	for _, own := range nodes {
		fmt.Fprintf(tw, "%s\t", own)
	}
	fmt.Fprintln(tw)
	for _, obs := range nodes {
		fmt.Fprintf(tw, "%s\t", label(c, obs))
		for _, own := range nodes {
			fmt.Fprintf(tw, "%s\t", cell(c, obs, own))
		}
		fmt.Fprintln(tw)
	}
	d.err = tw.Flush()
}

func label(c *dstatetest.SimCluster, id dstate.NodeID) string {
	if st := c.Status(id); st != dstatetest.SimUp {
		return fmt.Sprintf("%s (%s)", id, st)
	}
	return string(id)
}

// cell formats obs's view of own with its markers.
func cell(c *dstatetest.SimCluster, obs, own dstate.NodeID) string {
	if c.Status(obs) != dstatetest.SimUp {
		return "."
	}
	v, ok := c.View(obs, own, "counter")
	if !ok {
		return "-"
	}
	s := fmt.Sprintf("%s = %s", v.Generation, v.Value)
	if v.Generation.IsZero() {
		s = "(joining)"
	}
	switch {
	case c.Status(own) != dstatetest.SimUp:
		s += " ~"
	case v.Generation != c.Counter(own).Generation():
		s += " *"
	}
	return s
}

// dump prints every view of every running node, one line each.
func (d *demo) dump() {
	if d.err != nil {
		return
	}
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBSERVER\tOWNER\tGENERATION\tCOUNT\tPENDING\t")
	for _, v := range d.c.Views() {
		pending := "-"
		if !v.Pending.IsZero() {
			pending = v.Pending.String()
		}
		owner := string(v.Owner)
		if v.Owner == v.Observer {
			owner += " (own)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", v.Observer, owner, v.Generation, strings.TrimSpace(v.Value), pending)
	}
	d.err = tw.Flush()
}
