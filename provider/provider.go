package provider

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/client"
)

var (
	_ provider.Provider                     = (*BerthProvider)(nil)
	_ provider.ProviderWithConfigValidators = (*BerthProvider)(nil)
)

// backendFactory builds the scheduling backend from the provider block's
// engines. Tests substitute a fake; everything else uses embeddedBackend.
type backendFactory func(ctx context.Context, engines []engine.Config, registries backend.Registries) (backend.Backend, error)

// remoteFactory builds the remote backend (berthd) in remote mode.
type remoteFactory func(cfg client.Config) (backend.Backend, error)

// BerthProvider is one provider instance. Terraform starts a fresh process
// (and the test framework a fresh instance) per command, so every piece of
// state lives here, never at package level.
type BerthProvider struct {
	version    string
	newBackend backendFactory
	newRemote  remoteFactory

	// configured is what Configure handed to resources, for the fast
	// paths that answer without the framework (server.go).
	configured atomic.Pointer[providerData]
}

// BerthProviderModel is the provider block.
type BerthProviderModel struct {
	Engines        types.Map    `tfsdk:"engines"`
	EngineTimeout  types.String `tfsdk:"engine_timeout"`
	SchedulerURL   types.String `tfsdk:"scheduler_url"`
	SchedulerToken types.String `tfsdk:"scheduler_token"`
	SchedulerCAPEM types.String `tfsdk:"scheduler_ca_pem"`
	PlacementLease types.String `tfsdk:"placement_lease"`
	RegistryAuth   types.List   `tfsdk:"registry_auth"` // of providerRegistryModel
}

// engineModel is one entry of engines.
type engineModel struct {
	Endpoint types.String `tfsdk:"endpoint"`
	Address  types.String `tfsdk:"address"`
	TLS      types.Object `tfsdk:"tls"`
}

// engineTLSModel is an engine's tls attribute.
type engineTLSModel struct {
	CAPEM   types.String `tfsdk:"ca_pem"`
	CertPEM types.String `tfsdk:"cert_pem"`
	KeyPEM  types.String `tfsdk:"key_pem"`
}

// New returns a constructor of provider instances for providerserver.
func New(version string) func() provider.Provider {
	return newWithBackend(version, embeddedBackend)
}

func newWithBackend(version string, factory backendFactory) func() provider.Provider {
	return func() provider.Provider {
		return &BerthProvider{version: version, newBackend: factory, newRemote: remoteBackend}
	}
}

func embeddedBackend(_ context.Context, engines []engine.Config, registries backend.Registries) (backend.Backend, error) {
	set, err := engine.NewSet(engines)
	if err != nil {
		return nil, err
	}
	return backend.NewEmbedded(set).WithRegistries(registries), nil
}

func remoteBackend(cfg client.Config) (backend.Backend, error) {
	return client.New(cfg)
}

func (p *BerthProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "berth"
	resp.Version = p.version
}

func (p *BerthProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Berth places Docker containers across pools of Docker engines and reserves " +
			"their capacity atomically, so that Terraform's parallel creates never overcommit an engine.",
		Attributes: map[string]schema.Attribute{
			"engine_timeout": schema.StringAttribute{
				MarkdownDescription: "How long Berth waits for an engine to answer one request (a Go duration; default `" +
					engine.DefaultTimeout.String() + "`). An engine that does not answer in time counts as unreachable " +
					"for a few seconds, so a wedged engine fails what needs it quickly and never hangs `terraform plan`. " +
					"Stopping a container gets its `stop_timeout` on top; an image pull must report progress within this time.",
				Optional:   true,
				Validators: []validator.String{positiveDurationValidator()},
			},
			"engines": schema.MapNestedAttribute{
				MarkdownDescription: "Embedded mode: the Docker engines Berth may use, keyed by a name of your choice " +
					"(the names `berth_pool.hosts` refers to). Connection details live here and never in state. " +
					"Set either `engines` or `scheduler_url`.",
				Optional:   true,
				Validators: []validator.Map{mapvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{
					Validators: []validator.Object{tlsOnlyWithTCP{}},
					Attributes: map[string]schema.Attribute{
						"endpoint": schema.StringAttribute{
							MarkdownDescription: "How to reach the engine: `unix:///var/run/docker.sock`, " +
								"`tcp://HOST:PORT` (TLS when `tls` is set) or `ssh://USER@HOST`.",
							Required:   true,
							Validators: []validator.String{endpointValidator()},
						},
						"address": schema.StringAttribute{
							MarkdownDescription: "Where the engine's published ports are reached, a host name or IP " +
								"address, e.g. `10.0.0.11`. Containers report it as `address` and in " +
								"`published_ports`. Defaults to the endpoint's host, and to `127.0.0.1` for a " +
								"`unix://` socket.",
							Optional:   true,
							Validators: []validator.String{domainOrIPValidator()},
						},
						"tls": schema.SingleNestedAttribute{
							MarkdownDescription: "TLS material for a `tcp://` endpoint. The engine's certificate " +
								"is always verified, against `ca_pem` when set.",
							Optional: true,
							Attributes: map[string]schema.Attribute{
								"ca_pem": schema.StringAttribute{
									MarkdownDescription: "PEM of the CA that signed the engine's certificate. " +
										"When unset, the system's roots are used.",
									Optional: true,
								},
								"cert_pem": schema.StringAttribute{
									MarkdownDescription: "PEM of the client certificate; requires `key_pem`.",
									Optional:            true,
									Validators: []validator.String{
										stringvalidator.AlsoRequires(path.MatchRelative().AtParent().AtName("key_pem")),
									},
								},
								"key_pem": schema.StringAttribute{
									MarkdownDescription: "PEM of the client key; requires `cert_pem`.",
									Optional:            true,
									Sensitive:           true,
									Validators: []validator.String{
										stringvalidator.AlsoRequires(path.MatchRelative().AtParent().AtName("cert_pem")),
									},
								},
							},
						},
					},
				},
			},
			"scheduler_url": schema.StringAttribute{
				MarkdownDescription: "Remote mode: berthd's URL, e.g. `https://berthd.internal:8700`; several " +
					"replicas may be listed separated by commas, and a connection failure moves to the next. " +
					"berthd holds the engines and places at plan time, so the plan shows every `host`. " +
					"Defaults to the environment variable `BERTH_SCHEDULER_URL`. Excludes `engines`.",
				Optional:   true,
				Validators: []validator.String{schedulerURLValidator()},
			},
			"scheduler_token": schema.StringAttribute{
				MarkdownDescription: "Remote mode: the bearer token berthd gave this workspace (its role and pools " +
					"bound what it may do). Defaults to the environment variable `BERTH_SCHEDULER_TOKEN`.",
				Optional:  true,
				Sensitive: true,
			},
			"scheduler_ca_pem": schema.StringAttribute{
				MarkdownDescription: "Remote mode: PEM of the CA that signed berthd's certificate, for an " +
					"`https://` URL. When unset, the system's roots are used.",
				Optional:   true,
				Validators: []validator.String{caPEMValidator()},
			},
			"registry_auth": registryAuthAttribute(),
			"placement_lease": schema.StringAttribute{
				MarkdownDescription: "Remote mode: how long berthd holds a plan's placements before the plan " +
					"is applied, as a Go duration between `1s` and `168h`. Default `30m`. An apply after " +
					"expiry takes the same host again when it still fits, and otherwise asks for a new plan.",
				Optional:   true,
				Validators: []validator.String{leaseValidator()},
			},
		},
	}
}

// ConfigValidators keeps the two modes apart.
func (p *BerthProvider) ConfigValidators(context.Context) []provider.ConfigValidator {
	return []provider.ConfigValidator{oneMode{}, registriesEmbeddedOnly{}}
}

// Configure builds the backend once per provider instance. When the engines
// are not known yet (they depend on values computed during apply), it hands
// out providerData without a backend: plan-time checks are skipped and
// operations that need an engine fail with an explanation.
func (p *BerthProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var config BerthProviderModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data := &providerData{}
	resp.ResourceData = data
	resp.DataSourceData = data
	defer p.configured.Store(data)
	if config.Engines.IsNull() {
		p.configureRemote(config, data, &resp.Diagnostics)
		return
	}
	if config.Engines.IsUnknown() {
		return
	}

	var engines map[string]engineModel
	resp.Diagnostics.Append(config.Engines.ElementsAs(ctx, &engines, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	configs, known, diags := engineConfigs(ctx, engines)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if config.EngineTimeout.IsUnknown() {
		known = false
	}
	timeout := durationOrDefault(config.EngineTimeout, engine.DefaultTimeout)
	for i := range configs {
		configs[i].Timeout = timeout
	}
	data.endpoints = make(map[string]string, len(engines))
	for name, e := range engines {
		data.endpoints[name] = e.Endpoint.ValueString()
	}
	registries, registriesKnown, diags := registrySource(ctx, config.RegistryAuth)
	resp.Diagnostics.Append(diags...)
	if !known || !registriesKnown || resp.Diagnostics.HasError() {
		return
	}
	be, err := p.newBackend(ctx, configs, registries)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("engines"), "Cannot set up the Docker engines", err.Error())
		return
	}
	data.backend = be
}

// engineConfigs converts the engines map, sorted by name; known is false
// when some value is not known yet.
func engineConfigs(ctx context.Context, engines map[string]engineModel) ([]engine.Config, bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	names := make([]string, 0, len(engines))
	for name := range engines {
		names = append(names, name)
	}
	sort.Strings(names)
	configs := make([]engine.Config, 0, len(engines))
	known := true
	for _, name := range names {
		e := engines[name]
		if e.Endpoint.IsUnknown() || e.Address.IsUnknown() || e.TLS.IsUnknown() {
			known = false
			continue
		}
		cfg := engine.Config{Name: name, Endpoint: e.Endpoint.ValueString(), Address: e.Address.ValueString()}
		if !e.TLS.IsNull() {
			var tls engineTLSModel
			diags.Append(e.TLS.As(ctx, &tls, basetypes.ObjectAsOptions{})...)
			if tls.CAPEM.IsUnknown() || tls.CertPEM.IsUnknown() || tls.KeyPEM.IsUnknown() {
				known = false
				continue
			}
			cfg.TLS = &engine.TLSConfig{
				CAPEM:   tls.CAPEM.ValueString(),
				CertPEM: tls.CertPEM.ValueString(),
				KeyPEM:  tls.KeyPEM.ValueString(),
			}
		}
		configs = append(configs, cfg)
	}
	return configs, known, diags
}

func (p *BerthProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewPoolResource, NewContainerResource, NewNetworkResource, NewVolumeResource}
}

func (p *BerthProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewPoolDataSource}
}

// providerData is what Configure hands to resources and data sources.
type providerData struct {
	// endpoints maps engine names to endpoints; nil when the engines map
	// itself was unknown at configure time.
	endpoints map[string]string
	// backend is nil when some engine setting was unknown at configure time.
	backend backend.Backend
	// leftovers seen by Read, for ModifyPlan.
	leftovers leftoverMemo
	// networks planned by this instance, for containers that join them.
	networks plannedNetworks
	// images: each tag's digest, resolved once per instance (per apply).
	images imageDigests
	// refreshed holds the ids of containers Read by this instance. A plan
	// refreshes before it plans; the apply process re-plans without
	// reading, and must not change the action the plan chose (planResize).
	refreshed sync.Map
}

// providerDataFrom is the shared body of every Configure method.
func providerDataFrom(raw any) (*providerData, diag.Diagnostics) {
	var diags diag.Diagnostics
	if raw == nil { // Terraform has not configured the provider yet (validate).
		return nil, diags
	}
	data, ok := raw.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("Expected *providerData, got %T. Please report this issue to the provider developers.", raw))
	}
	return data, diags
}

// planBackend returns the backend for plan-time checks, or nil when they
// must be skipped because the provider block is not fully known yet.
func (d *providerData) planBackend() backend.Backend {
	if d == nil {
		return nil
	}
	return d.backend
}

// requireBackend returns the backend for an operation that cannot proceed
// without one.
// getter is what tfsdk.Config, tfsdk.Plan and tfsdk.State have in common.
type getter interface {
	Get(ctx context.Context, target any) diag.Diagnostics
}

// load decodes a request's configuration, plan or state into model and
// returns the backend: the first step of every CRUD method.
func (d *providerData) load(ctx context.Context, from getter, model any) (backend.Backend, diag.Diagnostics) {
	diags := from.Get(ctx, model)
	be, more := d.requireBackend()
	diags.Append(more...)
	return be, diags
}

func (d *providerData) requireBackend() (backend.Backend, diag.Diagnostics) {
	var diags diag.Diagnostics
	if d == nil || d.backend == nil {
		diags.AddError("Berth provider not configured",
			"The provider block's engines or scheduler_url were not known when the provider was configured "+
				"(they depend on values known only after apply). Apply what they depend on first, "+
				"for example with -target, then apply again.")
		return nil, diags
	}
	return d.backend, diags
}

// engineNames lists the provider block's engines for diagnostics; ok is
// false when they are not known.
func (d *providerData) engineNames() ([]string, bool) {
	if d == nil || d.endpoints == nil {
		return nil, false
	}
	names := make([]string, 0, len(d.endpoints))
	for name := range d.endpoints {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, true
}

// quoteList renders names for a diagnostic: "a", "b".
func quoteList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(quoted, ", ")
}

// importID splits an import ID "<pool>/<name>"; example is the command
// the error shows when it is malformed.
func importID(id, example string, diags *diag.Diagnostics) (pool, name string, ok bool) {
	pool, name, ok = strings.Cut(id, "/")
	if !ok || !poolNameRegexp.MatchString(pool) || !containerNameRegexp.MatchString(name) {
		diags.AddError("Invalid import ID", fmt.Sprintf("%q is not <pool>/<name>: use e.g. %s", id, example))
		return "", "", false
	}
	return pool, name, true
}

// importPoolMember starts the state of a resource imported by
// "<pool>/<name>"; its Read finds the rest on the engines.
func importPoolMember(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse, example string) {
	pool, name, ok := importID(req.ID, example, &resp.Diagnostics)
	if !ok {
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("pool"), pool)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
}
