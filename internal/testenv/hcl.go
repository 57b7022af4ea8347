package testenv

import (
	"fmt"
	"strconv"
	"strings"
)

// ProviderHCL renders a provider "berth" block listing every engine, the TLS
// one with its PEMs inline as heredocs, so that a test configuration needs
// nothing but this block and its resources.
func (e *Env) ProviderHCL() string {
	var b strings.Builder
	b.WriteString("provider \"berth\" {\n  engines = {\n")
	for _, engine := range e.Engines {
		if engine.TLS == nil {
			fmt.Fprintf(&b, "    %s = { endpoint = %s }\n", engine.Name, hclString(engine.Endpoint))
			continue
		}
		fmt.Fprintf(&b, "    %s = {\n      endpoint = %s\n      tls = {\n", engine.Name, hclString(engine.Endpoint))
		writeHeredoc(&b, "ca_pem  ", engine.TLS.CAPEM)
		writeHeredoc(&b, "cert_pem", engine.TLS.CertPEM)
		writeHeredoc(&b, "key_pem ", engine.TLS.KeyPEM)
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

// writeHeredoc writes `name = <<EOT ... EOT`; the closing marker must start
// its own line, so the text always ends with a newline.
func writeHeredoc(b *strings.Builder, name, text string) {
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	fmt.Fprintf(b, "        %s = <<EOT\n%sEOT\n", name, escapeTemplate(text))
}

// hclString quotes s as an HCL string literal. strconv.Quote's escapes are
// a subset of HCL's for the printable text of endpoints.
func hclString(s string) string {
	return escapeTemplate(strconv.Quote(s))
}

// escapeTemplate keeps "${" and "%{" literal: HCL strings and heredocs are
// templates.
func escapeTemplate(s string) string {
	return strings.NewReplacer("${", "$${", "%{", "%%{").Replace(s)
}
