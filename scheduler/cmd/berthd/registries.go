package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/berthsh/terraform-provider-berth/internal/registryauth"
)

// loadRegistries reads --registry-auth: a JSON list of entries
// ({"address", "username", "password"} or {"address", "config_file"}).
// Registry credentials are berthd's, like the engines' (DESIGN.md): the
// provider in remote mode sends none but a container's own registry_auth.
// Without the flag, berthd pulls with no credentials of its own.
func loadRegistries(path string) (*registryauth.Source, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, fmt.Errorf("--registry-auth: %w", err)
	}
	var entries []registryauth.Entry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("--registry-auth %s: not a JSON list of {address, username, password} or {address, config_file}: %w", path, err)
	}
	source, err := registryauth.New(entries)
	if err != nil {
		return nil, fmt.Errorf("--registry-auth %s: %w", path, err)
	}
	return source, nil
}
