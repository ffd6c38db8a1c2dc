// The reference provisioner's "very fast helper" case for `npm run bench` (bench/reference.ts):
// a compiled helper that signs the node's CSR itself with a local CA and answers with a fixed
// configuration naming the node. Standard library only, one process per node as the reference
// runs every helper.
//
// Usage: fast-helper CA_CERT_PEM CA_KEY_PEM < request.json > reply.json
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"
)

type request struct {
	Identity string `json:"identity"`
	CSR      *struct {
		CSR    string `json:"csr"`
		SSLDir string `json:"ssldir"`
	} `json:"csr"`
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "fast-helper: "+format+"\n", a...)
	os.Exit(1)
}

func pemBlock(file string) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		fail("%s", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		fail("%s: no PEM block", file)
	}
	return block.Bytes
}

func caKey(der []byte) crypto.Signer {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k.(crypto.Signer)
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k
	}
	k, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		fail("CA key: not PKCS#8, SEC1 or PKCS#1")
	}
	return k
}

func sign(csrPEM string, identity string, caCert *x509.Certificate, key crypto.Signer) string {
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		fail("%s: CSR is not PEM", identity)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		fail("%s: %s", identity, err)
	}
	if err := csr.CheckSignature(); err != nil {
		fail("%s: CSR signature: %s", identity, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		fail("%s", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: identity},
		DNSNames:     []string{identity},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, csr.PublicKey, key)
	if err != nil {
		fail("%s: %s", identity, err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: fast-helper CA_CERT_PEM CA_KEY_PEM")
	}
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fail("request: %s", err)
	}
	if req.Identity == "" || req.CSR == nil || req.CSR.CSR == "" {
		fail("request without identity or CSR")
	}
	caDER := pemBlock(os.Args[1])
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		fail("CA certificate: %s", err)
	}
	ssl := req.CSR.SSLDir
	if ssl == "" {
		ssl = "/etc/choria/ssl"
	}
	reply := map[string]any{
		"defer":       false,
		"msg":         "configured by the fast helper",
		"certificate": sign(req.CSR.CSR, req.Identity, caCert, caKey(pemBlock(os.Args[2]))),
		"ca":          string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		"ssldir":      ssl,
		"configuration": map[string]string{
			"identity":                         req.Identity,
			"plugin.choria.server.provision":   "false",
			"plugin.choria.middleware_hosts":   "nats://broker.choria.local:4222",
			"loglevel":                         "info",
			"plugin.security.provider":         "file",
			"plugin.security.file.certificate": ssl + "/certificate.pem",
			"plugin.security.file.key":         ssl + "/private.pem",
			"plugin.security.file.ca":          ssl + "/ca.pem",
		},
	}
	if err := json.NewEncoder(os.Stdout).Encode(reply); err != nil {
		fail("%s", err)
	}
}
