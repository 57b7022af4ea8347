package provider

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The examples under examples/ are what users copy from the registry page.
// They must be formatted, and each set of files that belongs together must
// pass `terraform validate` with the real provider binary: the reference
// examples (provider, every resource and data source) as one configuration,
// so that one example's container refers to another's pool, and every
// complete stack on its own.

// exampleSets lists the configurations to validate, as globs under
// examples/, relative to the provider package.
var exampleSets = map[string][]string{
	"reference": {
		"../examples/provider/*.tf",
		"../examples/resources/*/resource.tf",
		"../examples/data-sources/*/data-source.tf",
	},
	"quickstart": {"../examples/quickstart/*.tf"},
	"three-tier": {"../examples/three-tier/*.tf"},
}

func TestAccExamplesAreFormattedAndValid(t *testing.T) {
	env := accEnv(t)
	ws := newCLIWorkspace(t, env, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	if out, err := ws.run(ctx, "fmt", "-check", "-recursive", "-diff", absPath(t, "../examples")); err != nil {
		t.Fatalf("examples/ is not formatted (run `terraform fmt -recursive examples`): %v\n%s", err, out)
	}

	for name, globs := range exampleSets {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copied := 0
			for _, glob := range globs {
				files, err := filepath.Glob(glob)
				if err != nil {
					t.Fatal(err)
				}
				for _, file := range files {
					copyExample(t, file, dir)
					copied++
				}
			}
			if copied == 0 {
				t.Fatalf("no example files match %v", globs)
			}
			cmd := exec.CommandContext(ctx, env.TerraformPath, "validate", "-no-color")
			cmd.Dir = dir
			cmd.Env = ws.command(ctx).Env
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "The configuration is valid") {
				t.Fatalf("terraform validate of %v: %v\n%s", globs, err, out)
			}
		})
	}
}

// copyExample copies one example file into dir, under a name that keeps
// files of different examples apart (every resource example is resource.tf).
func copyExample(t *testing.T, file, dir string) {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ReplaceAll(strings.TrimPrefix(filepath.ToSlash(file), "../examples/"), "/", "_")
	if err := os.WriteFile(filepath.Join(dir, name), text, 0o600); err != nil {
		t.Fatal(err)
	}
}

func absPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
