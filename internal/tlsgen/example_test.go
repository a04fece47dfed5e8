package tlsgen_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/dstate-go/dstate/internal/tlsgen"
)

// A CA and a node certificate that names its node.
func Example() {
	ca, err := tlsgen.NewCA("example CA", 0)
	if err != nil {
		panic(err)
	}
	certPEM, _, err := ca.Issue("n1", tlsgen.IssueOptions{})
	if err != nil {
		panic(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err = cert.Verify(x509.VerifyOptions{DNSName: "n1", Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	fmt.Println("node:", cert.URIs)
	fmt.Println("CN:", cert.Subject.CommonName)
	fmt.Println("DNS:", cert.DNSNames)
	fmt.Println("IP:", cert.IPAddresses)
	fmt.Println("verifies for n1:", err == nil)
	// Output:
	// node: [dstate://node/n1]
	// CN: n1
	// DNS: [n1 localhost]
	// IP: [127.0.0.1 ::1]
	// verifies for n1: true
}
