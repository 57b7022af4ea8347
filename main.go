// Command terraform-provider-berth is the Berth Terraform provider.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

	"github.com/berthsh/terraform-provider-berth/internal/gcpace"
	"github.com/berthsh/terraform-provider-berth/provider"
)

// Documentation: templates/ and examples/ in, docs/ out.
//go:generate go tool tfplugindocs generate --provider-name berth

// version is set by the release build (goreleaser ldflags -X main.version=...).
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()
	quietSDKUnlessLogging()
	gcpace.UnlessSet()

	server, err := provider.NewServer(provider.New(version))()
	if err != nil {
		log.Fatal(err)
	}
	var opts []tf6server.ServeOpt
	if debug {
		opts = append(opts, tf6server.WithManagedDebug())
	}
	if err := tf6server.Serve("registry.terraform.io/berthsh/berth", func() tfprotov6.ProviderServer { return server }, opts...); err != nil {
		log.Fatal(err)
	}
}

// quietSDKUnlessLogging turns the plugin SDK's own logs off unless Terraform
// will show them (TF_LOG or TF_LOG_PROVIDER) or they were asked for
// (TF_LOG_SDK). The SDK logs at trace level by default: several JSON lines
// per RPC, which Terraform parses only to drop. That was about a third of the
// CPU of a plan refreshing 300 containers, in the provider and in Terraform.
// The framework and protocol subsystems are turned off by name too: with
// their level unset they build (and mask) every trace message before the root
// logger drops it, 7% of the provider's CPU in that plan. One asked for by
// name (TF_LOG_SDK_FRAMEWORK=trace) keeps logging.
func quietSDKUnlessLogging() {
	for _, name := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK"} {
		if os.Getenv(name) != "" {
			return
		}
	}
	for _, name := range []string{"TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		if os.Getenv(name) == "" {
			_ = os.Setenv(name, "off")
		}
	}
}
