package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMain points Terraform at an empty CLI configuration when the
// environment names one that does not exist (terraform then warns on every
// command and terraform-plugin-testing treats the noise as failure).
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if cfg := os.Getenv("TF_CLI_CONFIG_FILE"); cfg == "" || !fileExists(cfg) {
		dir, err := os.MkdirTemp("", "berth-tfrc")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		empty := filepath.Join(dir, "terraformrc")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Setenv("TF_CLI_CONFIG_FILE", empty)
	}
	return m.Run()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// diagnostic matches a diagnostic whatever way Terraform wraps its lines:
// each space in pattern matches any run of white space, and "..." anything.
func diagnostic(pattern string) *regexp.Regexp {
	pattern = strings.ReplaceAll(pattern, "...", `.*`)
	return regexp.MustCompile(`(?s)` + strings.ReplaceAll(pattern, " ", `\s+`))
}
