//go:build tools

// Package tools pins the versions of build-time tools in go.mod.
package main

import (
	_ "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs"
)
