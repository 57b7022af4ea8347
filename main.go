// Command terraform-provider-berth is the Berth Terraform provider.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/berthsh/terraform-provider-berth/provider"
)

// Documentation: templates/ and examples/ in, docs/ out.
//go:generate go run github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs generate --provider-name berth

// version is set by the release build (goreleaser ldflags -X main.version=...).
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: "registry.terraform.io/berthsh/berth",
		Debug:   debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}
