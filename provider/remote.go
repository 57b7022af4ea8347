package provider

import (
	"os"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler/client"
)

// Environment variables of remote mode, read when the provider block leaves
// the attribute unset (CI pipelines keep the token out of the config).
const (
	envSchedulerURL   = "BERTH_SCHEDULER_URL"
	envSchedulerToken = "BERTH_SCHEDULER_TOKEN"
)

// configureRemote sets up remote mode: berthd holds the engines, so the
// provider block names no engine and pool hosts are checked by berthd.
func (p *BerthProvider) configureRemote(config BerthProviderModel, data *providerData, diags *diag.Diagnostics) {
	cfg, known, more := remoteConfig(config, os.Getenv)
	diags.Append(more...)
	if !known || diags.HasError() {
		return
	}
	cfg.UserAgent = "terraform-provider-berth/" + p.version
	be, err := p.newRemote(cfg)
	if err != nil {
		diags.AddAttributeError(path.Root("scheduler_url"), "Cannot set up the berthd client", err.Error())
		return
	}
	data.backend = be
}

// remoteConfig reads the remote-mode attributes, falling back to the
// environment; known is false when a value is not known yet.
func remoteConfig(config BerthProviderModel, getenv func(string) string) (client.Config, bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	cfg := client.Config{Lease: client.DefaultLease}
	for _, v := range []types.String{config.SchedulerURL, config.SchedulerToken, config.SchedulerCAPEM, config.PlacementLease} {
		if v.IsUnknown() {
			return cfg, false, diags
		}
	}
	urls := config.SchedulerURL.ValueString()
	if config.SchedulerURL.IsNull() {
		urls = getenv(envSchedulerURL)
	}
	if urls == "" {
		diags.AddError("No engines and no berthd",
			"The provider block needs either engines (embedded mode: the provider talks to the Docker engines) "+
				"or scheduler_url (remote mode: berthd holds the engines), or the environment variable "+
				envSchedulerURL+" set to berthd's URL.")
		return cfg, false, diags
	}
	var err error
	if cfg.URLs, err = client.ParseURLs(urls); err != nil {
		diags.AddAttributeError(path.Root("scheduler_url"), "Invalid scheduler_url",
			"The berthd URL from "+sourceOf(config.SchedulerURL, envSchedulerURL)+" is invalid: "+err.Error()+
				`. Use e.g. "https://berthd.internal:8700", several separated by commas.`)
		return cfg, false, diags
	}
	cfg.Token = config.SchedulerToken.ValueString()
	if config.SchedulerToken.IsNull() {
		cfg.Token = getenv(envSchedulerToken)
	}
	cfg.CAPEM = config.SchedulerCAPEM.ValueString()
	if !config.PlacementLease.IsNull() {
		// Already validated; the validator's message names the fix.
		if cfg.Lease, err = client.ParseLease(config.PlacementLease.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("placement_lease"), "Invalid placement_lease", err.Error())
			return cfg, false, diags
		}
	}
	return cfg, true, diags
}

// sourceOf says where a value came from, for diagnostics.
func sourceOf(v types.String, env string) string {
	if v.IsNull() {
		return "the environment variable " + env
	}
	return "scheduler_url"
}
