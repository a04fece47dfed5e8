package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one scenario measured.
type Result struct {
	Scenario string  `json:"scenario"`
	Summary  string  `json:"summary"`
	Machine  Machine `json:"machine"`
	// Command is the command line that produced the result, when known.
	Command string   `json:"command,omitempty"`
	Params  []Param  `json:"params"`
	Metrics []Metric `json:"metrics"`
	Notes   []string `json:"notes,omitempty"`
	// Elapsed is the scenario's wall time, setup included.
	Elapsed Duration `json:"elapsed"`
}

// Param is one input of a scenario.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Metric is one figure. Target is empty when the project set none; Met is
// nil then.
type Metric struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

// Machine describes where a result was measured.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Date       string `json:"date"`
	// GOGC is the collector's setting during the run: a percentage or
	// "off" (see runtime/debug.SetGCPercent).
	GOGC string `json:"gogc"`
	// MemoryLimit is the runtime's soft memory limit in bytes during the
	// run (runtime/debug.SetMemoryLimit), or 0 if none is set.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
}

// Duration marshals as a string such as "1.5s".
type Duration time.Duration

// MarshalJSON writes the duration as its String form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ThisMachine describes the running machine now.
func ThisMachine() Machine {
	return Machine{
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		GOGC: gcSetting(), MemoryLimit: memoryLimit(),
	}
}

// gcSetting returns the collector's current GOGC setting ("off" or a
// percentage). The runtime offers no read-only query, so it sets the same
// value back.
func gcSetting() string {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	if p < 0 {
		return "off"
	}
	return strconv.Itoa(p)
}

// memoryLimit returns the runtime's soft memory limit, or 0 if there is
// none (the runtime's default, math.MaxInt64).
func memoryLimit() int64 {
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		return l
	}
	return 0
}

// cpuModel reads the model name from /proc/cpuinfo (Linux); empty elsewhere.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func newResult(scenario, summary string) *Result {
	return &Result{Scenario: scenario, Summary: summary, Machine: ThisMachine()}
}

func (r *Result) param(name string, format string, args ...any) {
	r.Params = append(r.Params, Param{Name: name, Value: fmt.Sprintf(format, args...)})
}

// metric adds a figure without a target.
func (r *Result) metric(name string, v float64, unit string) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit})
}

// atMost adds a figure whose target is an upper bound.
func (r *Result) atMost(name string, v float64, unit string, limit float64) {
	met := v <= limit
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit, Target: "≤ " + formatValue(limit), Met: &met})
}

// atLeast adds a figure whose target is a lower bound.
func (r *Result) atLeast(name string, v float64, unit string, limit float64) {
	met := v >= limit
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit, Target: "≥ " + formatValue(limit), Met: &met})
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Get returns the value of the named metric.
func (r *Result) Get(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// formatValue prints a figure with about four significant digits and
// thousands separators for large values.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return group(fmt.Sprintf("%.0f", v))
	case math.Abs(v) >= 1000:
		return group(fmt.Sprintf("%.0f", v))
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// group inserts thousands separators into an integer string.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// WriteTable prints the result for people: a header, the parameters, the
// figures with their targets, and the notes.
func (r *Result) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "== %s: %s\n", r.Scenario, r.Summary)
	m := r.Machine
	gc := "GOGC " + orUnknown(m.GOGC)
	if m.MemoryLimit > 0 {
		gc += fmt.Sprintf(", memory limit %d MiB", m.MemoryLimit>>20)
	}
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d) %s, %s %s/%s (%s), %s; took %s\n",
		m.CPUs, m.GOMAXPROCS, orUnknown(m.CPUModel), m.GoVersion, m.OS, m.Arch, gc, m.Date, time.Duration(r.Elapsed).Round(time.Millisecond))
	if r.Command != "" {
		fmt.Fprintf(w, "command: %s\n", r.Command)
	}
	if len(r.Params) > 0 {
		parts := make([]string, len(r.Params))
		for i, p := range r.Params {
			parts[i] = p.Name + "=" + p.Value
		}
		fmt.Fprintf(w, "params: %s\n", strings.Join(parts, " "))
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tVALUE\tUNIT\tTARGET\tMET")
	for _, x := range r.Metrics {
		met := "-"
		if x.Met != nil {
			met = "no"
			if *x.Met {
				met = "yes"
			}
		}
		target := x.Target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Name, formatValue(x.Value), x.Unit, target, met)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	_, err := fmt.Fprintln(w)
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "(cpu model unknown)"
	}
	return s
}

// WriteJSON writes results as an indented JSON array.
func WriteJSON(w io.Writer, results []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}
