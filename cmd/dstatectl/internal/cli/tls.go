package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/internal/tlsgen"
)

func tlsCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "tls",
		Usage:     "make the certificates for mutual TLS between the nodes of a cluster",
		UsageText: "dstatectl [global options] tls command [command options]",
		Description: "Makes an ECDSA P-256 certificate authority (ca) and, signed by it, one certificate per\n" +
			"node (cert) for the agent's --tls-cert-file, --tls-key-file and --tls-ca-file. A node\n" +
			"certificate names its node ID as the URI SAN dstate://node/<id>, which peers check (DNS\n" +
			"names never count), and serves as both server and client certificate. Private keys are\n" +
			"written with mode 0600; existing files are kept unless --force is given. Meant for test\n" +
			"clusters, demos and small deployments: the CA key is a plain file, and there is no\n" +
			"revocation.\n\n" +
			"Example:\n" +
			"   dstatectl tls ca --out certs\n" +
			"   dstatectl tls cert --ca-dir certs --node-id n1",
		Subcommands: []*ucli.Command{tlsCACommand(), tlsCertCommand()},
		Action:      groupAction,
	}
}

// Flags of tls ca and tls cert.
const (
	flagOut      = "out"
	flagCAName   = "name"
	flagValidity = "validity"
	flagForce    = "force"
	flagCADir    = "ca-dir"
	flagNodeID   = "node-id"
	flagDNS      = "dns"
	flagIP       = "ip"
)

func tlsCACommand() *ucli.Command {
	return &ucli.Command{
		Name:      "ca",
		Usage:     "make a certificate authority: ca.pem and ca-key.pem",
		UsageText: "dstatectl [global options] tls ca --out DIR [--name NAME] [--validity DURATION] [--force]",
		Description: "Writes a new self-signed CA certificate to DIR/ca.pem and its private key to\n" +
			"DIR/ca-key.pem, creating DIR (mode 0700) when missing. Every node gets ca.pem as\n" +
			"--tls-ca-file; ca-key.pem signs node certificates (tls cert) and belongs on no node.\n" +
			"DURATION is a Go duration (8760h) or a number of days (30d) or years (10y).\n\n" +
			"Example:\n" +
			"   dstatectl tls ca --out certs --name \"prod CA\" --validity 5y",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: flagOut, Usage: "`DIR` to write ca.pem and ca-key.pem to (required)"},
			&ucli.StringFlag{Name: flagCAName, Value: tlsgen.DefaultCAName, Usage: "`NAME` of the CA (its CommonName)"},
			&ucli.StringFlag{Name: flagValidity, Value: "10y", Usage: "how long the CA is valid: a `DURATION`"},
			&ucli.BoolFlag{Name: flagForce, Usage: "overwrite existing files"},
		},
		Action: runTLSCA,
	}
}

func tlsCertCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "cert",
		Usage: "issue a node certificate signed by the CA: <id>.pem and <id>-key.pem",
		UsageText: "dstatectl [global options] tls cert --ca-dir DIR --node-id ID [--out DIR]\n" +
			"   [--dns NAME]... [--ip ADDR]... [--validity DURATION] [--force]",
		Description: "Issues a certificate for the node ID, signed by the CA in --ca-dir (its ca.pem and\n" +
			"ca-key.pem), and writes it to <out>/<id>.pem and its private key to <out>/<id>-key.pem.\n" +
			"The certificate names the node as the URI SAN dstate://node/<id>, the identity peers\n" +
			"check; the node ID is also its CommonName and first DNS name. --dns and --ip add the\n" +
			"names and addresses peers dial the node by. Without either the certificate names\n" +
			"127.0.0.1, ::1 and localhost. DURATION is a Go duration (8760h) or a number of days\n" +
			"(30d) or years (1y); it must end before the CA expires.\n\n" +
			"Example:\n" +
			"   dstatectl tls cert --ca-dir certs --node-id n1 --dns n1.internal --ip 10.0.0.5",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: flagCADir, Usage: "`DIR` holding ca.pem and ca-key.pem (required)"},
			&ucli.StringFlag{Name: flagNodeID, Usage: "`ID` of the node, as its agent's --node-id (required)"},
			&ucli.StringFlag{Name: flagOut, Usage: "`DIR` to write the certificate and key to (default: --ca-dir)"},
			&ucli.StringSliceFlag{Name: flagDNS, Usage: "DNS `NAME` to add (repeatable)"},
			&ucli.StringSliceFlag{Name: flagIP, Usage: "IP `ADDR` to add (repeatable)"},
			&ucli.StringFlag{Name: flagValidity, Value: "1y", Usage: "how long the certificate is valid: a `DURATION`"},
			&ucli.BoolFlag{Name: flagForce, Usage: "overwrite existing files"},
		},
		Action: runTLSCert,
	}
}

// tlsFiles is what tls ca and tls cert report with --format json.
type tlsFiles struct {
	CertFile  string    `json:"cert_file"`
	KeyFile   string    `json:"key_file"`
	CAFile    string    `json:"ca_file"`
	Subject   string    `json:"subject"`
	URIs      []string  `json:"uris,omitempty"`
	DNSNames  []string  `json:"dns_names,omitempty"`
	IPs       []string  `json:"ip_addresses,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

func runTLSCA(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	name := cmdName(c)
	out := c.String(flagOut)
	if out == "" {
		return usageErrorf("%s: --out DIR is required (see '%s --help')", name, helpName(c))
	}
	validity, err := parseValidity(c.String(flagValidity))
	if err != nil {
		return usageErrorf("%s: --validity: %v", name, err)
	}
	if strings.TrimSpace(c.String(flagCAName)) == "" {
		return usageErrorf("%s: --name must not be empty", name)
	}
	ca, err := tlsgen.NewCA(c.String(flagCAName), validity)
	if err != nil {
		return tlsError(name, err)
	}
	certFile, keyFile, err := ca.WriteFiles(out, c.Bool(flagForce))
	if err != nil {
		return tlsError(name, err)
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, tlsFiles{CertFile: certFile, KeyFile: keyFile, CAFile: certFile,
			Subject: ca.Cert.Subject.CommonName, NotBefore: ca.Cert.NotBefore.UTC(), NotAfter: ca.Cert.NotAfter.UTC()})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "wrote %s (CA certificate: give it to every node as --tls-ca-file)\n", certFile)
	fmt.Fprintf(w, "wrote %s (CA key: it signs node certificates; keep it off the nodes)\n", keyFile)
	fmt.Fprintf(w, "CA %q valid until %s\n", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func runTLSCert(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	name := cmdName(c)
	caDir, nodeID := c.String(flagCADir), c.String(flagNodeID)
	switch {
	case caDir == "":
		return usageErrorf("%s: --ca-dir DIR is required (make one with dstatectl tls ca --out DIR)", name)
	case nodeID == "":
		return usageErrorf("%s: --node-id ID is required (see '%s --help')", name, helpName(c))
	}
	if err := tlsgen.ValidateNodeID(nodeID); err != nil {
		return usageErrorf("%s: --node-id: %s", name, strings.TrimPrefix(err.Error(), "tlsgen: "))
	}
	validity, err := parseValidity(c.String(flagValidity))
	if err != nil {
		return usageErrorf("%s: --validity: %v", name, err)
	}
	opts := tlsgen.IssueOptions{Validity: validity}
	for _, d := range c.StringSlice(flagDNS) {
		if d = strings.TrimSpace(d); d == "" {
			return usageErrorf("%s: --dns: empty name", name)
		}
		opts.DNSNames = append(opts.DNSNames, d)
	}
	for _, s := range c.StringSlice(flagIP) {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return usageErrorf("%s: --ip: %q is not an IP address", name, s)
		}
		opts.IPs = append(opts.IPs, ip)
	}
	if st, err := os.Stat(caDir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: CA directory %s does not exist (make it with dstatectl tls ca --out %s)", name, caDir, caDir)
		}
		return fmt.Errorf("%s: CA directory %s: %v", name, caDir, unwrapPathError(err))
	} else if !st.IsDir() {
		return fmt.Errorf("%s: --ca-dir %s is not a directory", name, caDir)
	}
	ca, err := tlsgen.LoadCADir(caDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %s (is %s a CA directory made by dstatectl tls ca?)", name, strings.TrimPrefix(err.Error(), "tlsgen: "), caDir)
		}
		return tlsError(name, err)
	}
	out := c.String(flagOut)
	if out == "" {
		out = caDir
	}
	certFile, keyFile, err := ca.IssueFiles(out, nodeID, opts, c.Bool(flagForce))
	if err != nil {
		return tlsError(name, err)
	}
	cert, err := tlsgen.ParseCertFile(certFile)
	if err != nil {
		return tlsError(name, err)
	}
	caFile := filepath.Join(caDir, tlsgen.CACertFile)
	var ips, uris []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	for _, u := range cert.URIs {
		uris = append(uris, u.String())
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, tlsFiles{CertFile: certFile, KeyFile: keyFile, CAFile: caFile,
			Subject: cert.Subject.CommonName, URIs: uris, DNSNames: cert.DNSNames, IPs: ips,
			NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC()})
	}
	w := c.App.Writer
	names := "URI " + strings.Join(uris, ", ") + "; DNS " + strings.Join(cert.DNSNames, ", ")
	if len(ips) > 0 {
		names += "; IP " + strings.Join(ips, ", ")
	}
	fmt.Fprintf(w, "wrote %s (certificate of %s: %s)\n", certFile, nodeID, names)
	fmt.Fprintf(w, "wrote %s (private key of %s)\n", keyFile, nodeID)
	fmt.Fprintf(w, "signed by %q, valid until %s\n", ca.Cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "use: dstatectl agent --node-id %s --tls-cert-file %s --tls-key-file %s --tls-ca-file %s ...\n",
		nodeID, certFile, keyFile, caFile)
	return nil
}

// tlsError turns a tlsgen error into the command's: a file that exists
// asks for --force, a bad name or validity is a usage error.
func tlsError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "tlsgen: ")
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s: %s (pass --force to overwrite)", name, msg)
	case errors.Is(err, tlsgen.ErrBadName), errors.Is(err, tlsgen.ErrBadNodeID), errors.Is(err, tlsgen.ErrValidity):
		return usageErrorf("%s: %s", name, msg)
	}
	return fmt.Errorf("%s: %s", name, msg)
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseValidity reads a positive Go duration or a whole number of days
// ("30d") or years ("10y", 365 days each).
func parseValidity(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	const day = 24 * time.Hour
	const limit = 100 * 365 * day
	for _, u := range []struct {
		suffix, name string
		unit         time.Duration
	}{{"d", "days", day}, {"y", "years", 365 * day}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("%q is not a positive whole number of %s", s, u.name)
			}
			if n > int64(limit/u.unit) {
				return 0, fmt.Errorf("%q is longer than 100 years", s)
			}
			return time.Duration(n) * u.unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 8760h, 30d or 1y)", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", s)
	}
	if d > limit {
		return 0, fmt.Errorf("%q is longer than 100 years", s)
	}
	return d, nil
}
