package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

var (
	_ datasource.DataSource              = (*PoolDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*PoolDataSource)(nil)
)

// NewPoolDataSource is the data "berth_pool" constructor.
func NewPoolDataSource() datasource.DataSource {
	return &PoolDataSource{}
}

// PoolDataSource reports a pool's capacity and usage per host.
type PoolDataSource struct {
	data *providerData
}

// PoolDataSourceModel is data "berth_pool".
type PoolDataSourceModel struct {
	Name     types.String              `tfsdk:"name"`
	Strategy types.String              `tfsdk:"strategy"`
	Hosts    map[string]hostUsageModel `tfsdk:"hosts"`
}

// hostUsageModel is one host of the data source. CPU is in CPUs and memory
// in bytes, like berth_pool's discovered_* attributes.
type hostUsageModel struct {
	Labels         map[string]string `tfsdk:"labels"`
	CPU            types.Float64     `tfsdk:"cpu"`
	Memory         types.Int64       `tfsdk:"memory"`
	CPUReserved    types.Float64     `tfsdk:"cpu_reserved"`
	MemoryReserved types.Int64       `tfsdk:"memory_reserved"`
	CPUFree        types.Float64     `tfsdk:"cpu_free"`
	MemoryFree     types.Int64       `tfsdk:"memory_free"`
	Containers     types.Int64       `tfsdk:"containers"`
	MaxContainers  types.Int64       `tfsdk:"max_containers"`
	Healthy        types.Bool        `tfsdk:"healthy"`
	Volumes        types.Int64       `tfsdk:"volumes"`
	Disk           types.Int64       `tfsdk:"disk"`
	DiskReserved   types.Int64       `tfsdk:"disk_reserved"`
	DiskFree       types.Int64       `tfsdk:"disk_free"`
	GPUs           types.Int64       `tfsdk:"gpus"`
	GPUsReserved   types.Int64       `tfsdk:"gpus_reserved"`
	GPUsFree       types.Int64       `tfsdk:"gpus_free"`
	GPUIDsHeld     []string          `tfsdk:"gpu_ids_held"`
}

func (d *PoolDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pool"
}

func (d *PoolDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(description string) schema.Attribute {
		return schema.Float64Attribute{MarkdownDescription: description, Computed: true}
	}
	count := func(description string) schema.Attribute {
		return schema.Int64Attribute{MarkdownDescription: description, Computed: true}
	}
	bytes := func(description string) schema.Attribute {
		return schema.Int64Attribute{MarkdownDescription: description + ", in bytes.", Computed: true}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Capacity and usage of a pool, per host, as the engines report them now. " +
			"CPU is in CPUs, memory in bytes.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "The pool's name.",
				Required:            true,
				Validators:          []validator.String{poolNameValidator()},
			},
			"strategy": schema.StringAttribute{
				MarkdownDescription: "The pool's placement strategy.",
				Computed:            true,
			},
			"hosts": schema.MapNestedAttribute{
				MarkdownDescription: "Member hosts, keyed by engine name.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"labels": schema.MapAttribute{
							MarkdownDescription: "The host's labels.",
							ElementType:         types.StringType,
							Computed:            true,
						},
						"cpu":             computed("Schedulable CPUs."),
						"memory":          bytes("Schedulable memory"),
						"cpu_reserved":    computed("CPUs reserved by Berth containers."),
						"memory_reserved": bytes("Memory reserved by Berth containers"),
						"cpu_free":        computed("CPUs still free for new containers."),
						"memory_free":     bytes("Memory still free for new containers"),
						"containers": schema.Int64Attribute{
							MarkdownDescription: "Berth containers of the pool on the host.",
							Computed:            true,
						},
						"max_containers": schema.Int64Attribute{
							MarkdownDescription: "Most containers the host may run; 0 means unlimited.",
							Computed:            true,
						},
						"healthy": schema.BoolAttribute{
							MarkdownDescription: "Whether the engine answered.",
							Computed:            true,
						},
						"volumes":       count("Berth volumes of the pool on the host."),
						"disk":          bytes("Declared volume space (0: disk is not accounted on this host)"),
						"disk_reserved": bytes("Volume space held by the sizes of Berth volumes"),
						"disk_free":     bytes("Volume space left for new volumes' sizes (0 when disk is not accounted)"),
						"gpus":          count("Declared GPUs."),
						"gpus_reserved": count("GPUs held by Berth containers."),
						"gpus_free":     count("GPUs no container holds."),
						"gpu_ids_held": schema.ListAttribute{
							MarkdownDescription: "Of the host's declared `gpu_ids`, the ones containers hold; empty when the GPUs are not named.",
							ElementType:         types.StringType,
							Computed:            true,
						},
					},
				},
			},
		},
	}
}

func (d *PoolDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	d.data = data
}

func (d *PoolDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var config PoolDataSourceModel
	be, diags := d.data.load(ctx, req.Config, &config)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	usage, err := be.PoolUsage(ctx, config.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read pool %q", config.Name.ValueString()), err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, poolUsageModel(config.Name, usage))...)
}

func poolUsageModel(name types.String, usage backend.PoolUsage) PoolDataSourceModel {
	cpus := func(milli int64) types.Float64 { return types.Float64Value(float64(milli) / 1000) }
	m := PoolDataSourceModel{
		Name:     name,
		Strategy: types.StringValue(usage.Strategy),
		Hosts:    make(map[string]hostUsageModel, len(usage.Hosts)),
	}
	for _, h := range usage.Hosts {
		labels := h.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		m.Hosts[h.Name] = hostUsageModel{
			Labels:         labels,
			CPU:            cpus(h.Capacity.MilliCPU),
			Memory:         types.Int64Value(h.Capacity.MemoryBytes),
			CPUReserved:    cpus(h.Reserved.MilliCPU),
			MemoryReserved: types.Int64Value(h.Reserved.MemoryBytes),
			CPUFree:        cpus(h.Free.MilliCPU),
			MemoryFree:     types.Int64Value(h.Free.MemoryBytes),
			Containers:     types.Int64Value(int64(h.Containers)),
			MaxContainers:  types.Int64Value(int64(h.MaxContainers)),
			Healthy:        types.BoolValue(h.Healthy),
			Volumes:        types.Int64Value(int64(h.Volumes)),
			Disk:           types.Int64Value(h.DiskBytes),
			DiskReserved:   types.Int64Value(h.DiskReserved),
			DiskFree:       types.Int64Value(h.DiskFree),
			GPUs:           types.Int64Value(int64(h.GPUs)),
			GPUsReserved:   types.Int64Value(int64(h.GPUsReserved)),
			GPUsFree:       types.Int64Value(int64(h.GPUsFree)),
			GPUIDsHeld:     append([]string{}, h.GPUIDsHeld...),
		}
	}
	return m
}
