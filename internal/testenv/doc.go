// Package testenv gives tests the local Docker engines that engines.sh
// starts: where they are, how to reach them, and how to write a provider
// block for them.
//
// `make engines-up` (or `bash internal/testenv/engines.sh up`) starts the
// engines and writes engines.env and engines.json in BERTH_ENGINES_DIR
// (/tmp/berth-engines by default); Load reads the environment variables of
// engines.env when they are set, and engines.json otherwise. Tests that need
// engines call Require, which fails (it never skips) when they are missing,
// so an acceptance run cannot pass without having exercised real engines.
package testenv
