package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/reference"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/internal/registryauth"
)

// providerRegistryModel is one entry of the provider block's registry_auth.
type providerRegistryModel struct {
	Address    types.String `tfsdk:"address"`
	Username   types.String `tfsdk:"username"`
	Password   types.String `tfsdk:"password"`
	ConfigFile types.String `tfsdk:"config_file"`
}

// registryAuthAttribute is the provider block's registry_auth: the
// credentials Berth pulls with when a container gives none of its own.
func registryAuthAttribute() schema.Attribute {
	sibling := func(name string) path.Expression { return path.MatchRelative().AtParent().AtName(name) }
	return schema.ListNestedAttribute{
		MarkdownDescription: "Embedded mode: credentials for private registries, one entry per registry, used for " +
			"every image of that registry (looking up its digest and pulling it) unless the container sets its " +
			"own `registry_auth`. An entry gives `username` and `password`, or else reads them from a Docker " +
			"config file (`config_file`), including its `credsStore` and `credHelpers` (the `docker-credential-*` " +
			"programs on PATH), as `docker login` leaves them. In remote mode berthd holds registry credentials, " +
			"as it holds the engines' (`berthd serve --registry-auth registries.json`, a JSON list of the same " +
			"entries): this attribute is refused there.",
		Optional:   true,
		Validators: []validator.List{listvalidator.SizeAtLeast(1)},
		NestedObject: schema.NestedAttributeObject{
			Attributes: map[string]schema.Attribute{
				"address": schema.StringAttribute{
					MarkdownDescription: "The registry as image references name it, e.g. `registry.example.com:5000` " +
						"(a scheme such as `https://` is ignored); `docker.io` for Docker Hub.",
					Required:   true,
					Validators: []validator.String{registryAddressValidator()},
				},
				"username": schema.StringAttribute{
					MarkdownDescription: "User name; requires `password`. Excludes `config_file`.",
					Optional:            true,
					Validators: []validator.String{
						stringvalidator.LengthAtLeast(1),
						stringvalidator.AlsoRequires(sibling("password")),
						stringvalidator.ConflictsWith(sibling("config_file")),
					},
				},
				"password": schema.StringAttribute{
					MarkdownDescription: "Password or token; requires `username`. Kept out of state and logs.",
					Optional:            true,
					Sensitive:           true,
					Validators: []validator.String{
						stringvalidator.LengthAtLeast(1),
						stringvalidator.AlsoRequires(sibling("username")),
					},
				},
				"config_file": schema.StringAttribute{
					MarkdownDescription: "Docker config file to read this registry's credentials from, read when the " +
						"provider is configured (`~/` is the home directory). When neither `username` nor " +
						"`config_file` is set, the docker CLI's file is read: `$DOCKER_CONFIG/config.json`, else " +
						"`~/.docker/config.json`.",
					Optional:   true,
					Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
				},
			},
		},
	}
}

// registryAddressValidator accepts what can stand as the registry part of
// an image reference.
func registryAddressValidator() validator.String {
	return stringCheck{
		summary: "Invalid registry address",
		hint:    "Give the registry's host, with its port if any, e.g. registry.example.com:5000 or 127.0.0.1:5000.",
		check: func(address string) error {
			host := registryauth.Host(address)
			if host == "" {
				return errors.New("it is empty")
			}
			named, err := reference.ParseNormalizedNamed(host + "/image")
			if err != nil || reference.Domain(named) != host {
				return fmt.Errorf("%q is not a registry host", address)
			}
			return nil
		},
	}
}

// registrySource builds the provider block's credentials; nil when it has
// none. known is false while some entry is unknown.
func registrySource(ctx context.Context, list types.List) (*registryauth.Source, bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	if list.IsNull() {
		return nil, true, diags
	}
	if list.IsUnknown() {
		return nil, false, diags
	}
	var models []providerRegistryModel
	diags.Append(list.ElementsAs(ctx, &models, false)...)
	entries := make([]registryauth.Entry, 0, len(models))
	for _, m := range models {
		for _, v := range []types.String{m.Address, m.Username, m.Password, m.ConfigFile} {
			if v.IsUnknown() {
				return nil, false, diags
			}
		}
		entries = append(entries, registryauth.Entry{
			Address: m.Address.ValueString(), Username: m.Username.ValueString(),
			Password: m.Password.ValueString(), ConfigFile: m.ConfigFile.ValueString(),
		})
	}
	source, err := registryauth.New(entries)
	if err != nil {
		diags.AddAttributeError(path.Root("registry_auth"), "Invalid registry_auth", err.Error())
	}
	return source, true, diags
}

// registriesEmbeddedOnly refuses provider-level registry credentials in
// remote mode: there berthd pulls, with its own (--registry-auth), so that
// pipelines need not hold them.
type registriesEmbeddedOnly struct{}

func (registriesEmbeddedOnly) Description(context.Context) string {
	return "registry_auth belongs to embedded mode; berthd has its own"
}

func (v registriesEmbeddedOnly) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (registriesEmbeddedOnly) ValidateProvider(ctx context.Context, req provider.ValidateConfigRequest, resp *provider.ValidateConfigResponse) {
	var engines types.Map
	var registries types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("engines"), &engines)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("registry_auth"), &registries)...)
	if resp.Diagnostics.HasError() || !engines.IsNull() || registries.IsNull() {
		return
	}
	resp.Diagnostics.AddAttributeError(path.Root("registry_auth"), "registry_auth needs engines",
		"In remote mode berthd looks up and pulls images, with registry credentials of its own, as it holds the "+
			"engines' credentials: give them to berthd (berthd serve --registry-auth registries.json, a JSON list "+
			"of {address, username, password} or {address, config_file}) and remove registry_auth here. A "+
			"container's own registry_auth is still sent with its create.")
}
