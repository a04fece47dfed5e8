package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// Output formats of --format.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// outputFormat returns the validated --format; a value other than table or
// json is a usage error.
func outputFormat(c *ucli.Context) (string, error) {
	f := c.String(flagFormat)
	switch f {
	case formatTable, formatJSON:
		return f, nil
	case "":
		return formatTable, nil
	}
	return "", usageErrorf("--format: unknown format %q (want table or json)", f)
}

// writeJSON writes v indented, with a final newline, keys in the order of
// the API types: the stable form for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns for people.
type table struct {
	tw *tabwriter.Writer
}

// newTable starts a table on w with the given column headers.
func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(headers) > 0 {
		t.row(headers...)
	}
	return t
}

// row adds one row; cells must not contain tabs or newlines.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// flush writes the aligned table.
func (t *table) flush() error { return t.tw.Flush() }

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// yesNo shows a bool for people.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// agoMs shows a duration in milliseconds as a rounded age, e.g. "1.2s ago".
func agoMs(ms int64) string {
	if ms < 0 {
		return "-"
	}
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return d.String() + " ago"
	case d < time.Minute:
		return d.Round(100*time.Millisecond).String() + " ago"
	default:
		return d.Round(time.Second).String() + " ago"
	}
}

// compactJSON shows an arbitrary value on one line.
func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
