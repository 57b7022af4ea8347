package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

var (
	_ resource.Resource                = (*ContainerResource)(nil)
	_ resource.ResourceWithConfigure   = (*ContainerResource)(nil)
	_ resource.ResourceWithImportState = (*ContainerResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*ContainerResource)(nil)
)

// Defaults of berth_container.
const (
	defaultCPU           = 0.25
	defaultMemory        = "128MiB"
	defaultRestart       = "unless-stopped"
	defaultStopTimeout   = "10s"
	defaultCreateTimeout = 5 * time.Minute
	defaultUpdateTimeout = 5 * time.Minute
	defaultDeleteTimeout = 2 * time.Minute
)

// NewContainerResource is the berth_container constructor.
func NewContainerResource() resource.Resource {
	return &ContainerResource{}
}

// ContainerResource is berth_container: one container that Berth places on
// a host of a pool.
type ContainerResource struct {
	data *providerData
}

func (r *ContainerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_container"
}

func (r *ContainerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

func (r *ContainerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan ContainerResourceModel
	be, diags := r.data.load(ctx, req.Plan, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	spec, diags := plan.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	spec.RepoDigest, err = r.data.images.resolve(ctx, be, backend.ImageRequest{
		Pool: spec.Pool, Host: spec.Host, Image: spec.Image, RegistryAuth: spec.RegistryAuth,
	})
	if err != nil {
		addContainerError(&resp.Diagnostics, fmt.Sprintf("Cannot create container %s", plan.ID.ValueString()), err)
		if giver, ok := be.(leaseGiver); ok {
			// Best effort: a lease not given back still expires.
			_ = giver.GiveBack(ctx, spec.Pool, spec.Name)
		}
		return
	}
	created, err := be.CreateContainer(ctx, spec)
	if err != nil {
		addContainerError(&resp.Diagnostics, fmt.Sprintf("Cannot create container %s", plan.ID.ValueString()), err)
		if created.Ref.ContainerID != "" {
			// Left on an engine that stopped answering: tracked, tainted by
			// Terraform, replaced by the next apply; never leaked.
			resp.Diagnostics.Append(resp.Private.SetKey(ctx, leftoverKey, []byte("true"))...)
			resp.Diagnostics.Append(plan.observe(ctx, created)...)
			resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		}
		return
	}
	wantRunning := plan.Running.ValueBool()
	resp.Diagnostics.Append(plan.observe(ctx, created)...)
	if !wantRunning {
		// Created, started once (so a broken image fails the create), then
		// stopped as configured.
		resp.Diagnostics.Append(r.stop(ctx, be, created, &plan)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// Read observes the container and never changes anything on the engine.
func (r *ContainerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state ContainerResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	observed, err := be.ReadContainer(ctx, state.ref())
	if err != nil {
		// Its engine does not answer: keep what state knows, so that one
		// dead host does not fail every plan (lost = true on the pool host
		// writes it off).
		resp.Diagnostics.AddWarning(fmt.Sprintf("Container %s kept as last known: host %s does not answer", state.ID.ValueString(), state.Host.ValueString()),
			fmt.Sprintf("%v. The container is kept in state unchanged. If the host is gone for good, set lost = true on hosts.%s of pool %s to forget its containers and re-create them elsewhere.",
				err, state.Host.ValueString(), state.Pool.ValueString()))
		return
	}
	if observed == nil { // removed out of band: plan a re-create
		resp.State.RemoveResource(ctx)
		return
	}
	addSkippedWarnings(&resp.Diagnostics, observed.Warnings)
	if r.data != nil {
		r.data.refreshed.Store(state.ID.ValueString(), true)
	}
	if left, diags := req.Private.GetKey(ctx, leftoverKey); len(left) > 0 && r.data != nil {
		r.data.leftovers.remember(state.ID.ValueString(), state.ref())
	} else {
		resp.Diagnostics.Append(diags...)
	}
	read := state
	resp.Diagnostics.Append(state.observe(ctx, *observed)...)
	if !reflect.DeepEqual(read, state) { // else resp.State holds it already
		resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
	}
}

// Update resizes in place and starts or stops the container; everything
// else either replaces the container or lives only in state.
func (r *ContainerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state ContainerResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	be, diags := r.data.load(ctx, req.Plan, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// Only what an operation changes is taken from its result: every other
	// computed value was planned from state and must come out the same.
	current := state.current()
	resize := func() bool {
		want := plan.resources()
		if want == current.Resources {
			return true
		}
		resized, err := be.ResizeContainer(ctx, current, want)
		if err != nil {
			resp.Diagnostics.AddError(fmt.Sprintf("Cannot resize container %s", state.ID.ValueString()), err.Error())
			return false
		}
		current.Resources = resized.Resources
		current.Ref.Resources = resized.Resources
		plan.CPU = cpuValue(plan.CPU, resized.Resources.MilliCPU)
		plan.Memory = memoryValue(plan.Memory, resized.Resources.MemoryBytes)
		return true
	}
	reconfigure := func() bool {
		limits, restart := plan.limits(), plan.Restart.ValueString()
		if limits == current.Limits && restart == current.Restart {
			return true
		}
		reconfigured, err := be.ReconfigureContainer(ctx, current, limits, restart)
		if err != nil {
			resp.Diagnostics.AddError(fmt.Sprintf("Cannot update container %s", state.ID.ValueString()), err.Error())
			return false
		}
		current.Limits, current.Restart = reconfigured.Limits, reconfigured.Restart
		return true
	}
	// Docker refuses a memory limit below the memory reservation at every
	// step: a new limit that holds the old reservation goes first, otherwise
	// the reservation shrinks first.
	steps := []func() bool{reconfigure, resize}
	if newCap := plan.limits().MemoryBytes; newCap > 0 && newCap < current.Resources.MemoryBytes {
		steps = []func() bool{resize, reconfigure}
	}
	for _, step := range steps {
		if !step() {
			return
		}
	}
	switch {
	case plan.Running.ValueBool() && !state.Running.ValueBool():
		started, err := be.StartContainer(ctx, current, !plan.Healthcheck.IsNull())
		if err != nil {
			resp.Diagnostics.AddError(fmt.Sprintf("Cannot start container %s", state.ID.ValueString()), err.Error())
			return
		}
		plan.Running = types.BoolValue(started.Running)
		plan.IPAddress = types.StringValue(started.IPAddress)
		plan.observeNetworks(ctx, started.NetworkAddresses, &resp.Diagnostics)
	case !plan.Running.ValueBool() && state.Running.ValueBool():
		resp.Diagnostics.Append(r.stop(ctx, be, current, &plan)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// stop stops the container and records that in model.
func (r *ContainerResource) stop(ctx context.Context, be backend.Backend, current backend.ContainerState, model *ContainerResourceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	stopped, err := be.StopContainer(ctx, current, model.stopTimeout())
	if err != nil {
		diags.AddError(fmt.Sprintf("Cannot stop container %s", model.ID.ValueString()), err.Error())
		return diags
	}
	model.Running = types.BoolValue(stopped.Running)
	model.IPAddress = types.StringValue(stopped.IPAddress)
	model.observeNetworks(ctx, stopped.NetworkAddresses, &diags)
	return diags
}

func (r *ContainerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state ContainerResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := state.stopTimeout()
	if err := be.DeleteContainer(ctx, state.ref(), stop); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot delete container %s", state.ID.ValueString()), err.Error())
	}
}

// ImportState takes "<pool>/<name>" and rebuilds the whole state from the
// container's labels.
func (r *ContainerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	pool, name, ok := importID(req.ID, "terraform import berth_container.web dc1/web-3", &resp.Diagnostics)
	if !ok {
		return
	}
	be, diags := r.data.requireBackend()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	found, err := be.FindContainer(ctx, pool, name)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot look up container %s", req.ID), err.Error())
		return
	}
	if found == nil {
		resp.Diagnostics.AddError("Container not found",
			fmt.Sprintf("No Berth container named %q in pool %q on the provider's engines.", name, pool))
		return
	}
	model, diags := importedModel(ctx, *found)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, model)...)
}

// ModifyPlan makes the id known, keeps equivalent spellings of cpu and
// memory, checks at plan time that a new container fits (the error explains
// why it does not), and turns a resize that no longer fits its host into a
// replacement, with a warning saying why.
func (r *ContainerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() { // destroy
		r.planDestroy(ctx, req, resp)
		return
	}
	if req.Plan.Raw.Equal(req.State.Raw) {
		// Unchanged, as most containers of a plan are: nothing to check, and
		// decoding the model twice was most of this method's cost.
		return
	}
	var plan ContainerResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if isKnown(plan.Pool) && isKnown(plan.Name) {
		plan.ID = types.StringValue(plan.Pool.ValueString() + "/" + plan.Name.ValueString())
	}
	var state *ContainerResourceModel
	if !req.State.Raw.IsNull() {
		state = &ContainerResourceModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
		plan.keepEquivalentSizes(*state)
		if plan.Running.ValueBool() != state.Running.ValueBool() {
			plan.IPAddress = types.StringUnknown() // a restarted container may get a new address; a stopped one has none
			plan.NetworkAddresses = types.MapUnknown(types.StringType)
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
	checkLimits(plan, &resp.Diagnostics)

	be := r.data.planBackend()
	if be == nil || !req.Config.Raw.IsFullyKnown() || resp.Diagnostics.HasError() {
		return
	}
	switch {
	case state == nil:
		r.planCreate(ctx, be, plan, req, resp)
	case plan.replacesExisting(*state):
		resp.Diagnostics.Append(markReplacement(ctx, resp, *state)...)
	case !plan.Constraints.Equal(state.Constraints) && !constraintsHold(ctx, be, plan, *state, &resp.Diagnostics):
		resp.RequiresReplace.Append(path.Root("constraints"))
		resp.Diagnostics.Append(markReplacement(ctx, resp, *state)...)
	case plan.resources() != state.resources():
		r.planResize(ctx, be, plan, *state, resp)
	}
}

// checkLimits refuses a limit below the reservation: Docker would cap the
// container under what the scheduler keeps for it.
func checkLimits(plan ContainerResourceModel, diags *diag.Diagnostics) {
	res, lim := plan.resources(), plan.limits()
	if lim.MilliCPU > 0 && res.MilliCPU > 0 && lim.MilliCPU < res.MilliCPU {
		diags.AddAttributeError(path.Root("cpu_limit"), "CPU limit below the reservation",
			fmt.Sprintf("cpu_limit = %g is less than cpu = %g: set cpu_limit to at least cpu, or remove it to cap at cpu.",
				plan.CPULimit.ValueFloat64(), plan.CPU.ValueFloat64()))
	}
	if lim.MemoryBytes > 0 && res.MemoryBytes > 0 && lim.MemoryBytes < res.MemoryBytes {
		diags.AddAttributeError(path.Root("memory_limit"), "Memory limit below the reservation",
			fmt.Sprintf("memory_limit = %q is less than memory = %q: set memory_limit to at least memory, or remove it to cap at memory.",
				plan.MemoryLimit.ValueString(), plan.Memory.ValueString()))
	}
}

// constraintsHold reports whether the container's host satisfies every
// requirement of the edited constraints, so that the edit needs no
// replacement; when it does not, a warning names the rule.
func constraintsHold(ctx context.Context, be backend.Backend, plan, state ContainerResourceModel, diags *diag.Diagnostics) bool {
	var rules []string
	diags.Append(plan.Constraints.ElementsAs(ctx, &rules, false)...)
	pool, err := be.ReadPool(ctx, state.Pool.ValueString())
	if err != nil || pool == nil {
		return false // cannot tell: re-placing is always correct
	}
	host := state.Host.ValueString()
	labels := pool.Spec.Hosts[host].Labels
	for _, text := range rules {
		rule, err := scheduler.ParseConstraint(text)
		if err != nil || (!rule.Soft && !rule.Matches(host, labels)) {
			diags.AddWarning(fmt.Sprintf("Container %s will be replaced to meet its constraints", state.ID.ValueString()),
				fmt.Sprintf("Its host %q does not satisfy %q; the container will be re-created on a host that does.", host, text))
			return false
		}
	}
	return true
}

// leaseGiver is a backend that holds a plan's placement until the create
// (berthd's leases): a create that fails before it reaches the backend
// gives the placement back at once.
type leaseGiver interface {
	GiveBack(ctx context.Context, pool, name string) error
}

// destroyPlanner is a backend that can give a destroyed container's room
// back at plan time (the embedded one; berthd's leases work differently).
type destroyPlanner interface {
	PlanDestroy(old backend.ContainerRef)
}

// planDestroy gives the container's capacity back to creates planned in
// the same plan: destroying a and creating b in one go fits where a was.
func (r *ContainerResource) planDestroy(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	planner, ok := r.data.planBackend().(destroyPlanner)
	if !ok || req.State.Raw.IsNull() {
		return
	}
	var state ContainerResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	planner.PlanDestroy(state.ref())
}

// replacesKey is the private-state key through which the plan of a
// replacement's destroy half tells its create half (which Terraform plans
// with no prior state) which container it replaces.
const replacesKey = "replaces"

func markReplacement(ctx context.Context, resp *resource.ModifyPlanResponse, state ContainerResourceModel) diag.Diagnostics {
	ref, err := json.Marshal(state.ref())
	if err != nil {
		var diags diag.Diagnostics
		diags.AddError("Cannot record the replaced container", err.Error())
		return diags
	}
	return resp.Private.SetKey(ctx, replacesKey, ref)
}

// replacedContainer reads what markReplacement recorded; ok is false for a
// plain create.
func replacedContainer(ctx context.Context, req resource.ModifyPlanRequest) (ref backend.ContainerRef, ok bool, diags diag.Diagnostics) {
	if req.Private == nil {
		return ref, false, diags
	}
	raw, diags := req.Private.GetKey(ctx, replacesKey)
	if len(raw) == 0 || diags.HasError() {
		return ref, false, diags
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		diags.AddError("Cannot read the replaced container", err.Error())
		return ref, false, diags
	}
	return ref, true, diags
}

func (r *ContainerResource) planCreate(ctx context.Context, be backend.Backend, plan ContainerResourceModel, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	spec, diags := plan.spec(ctx)
	resp.Diagnostics.Append(diags...)
	old, replacing, diags := replacedContainer(ctx, req)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !replacing && r.data != nil {
		old, replacing = r.data.leftovers.take(plan.ID.ValueString())
	}
	host, diags := placeByAddress(ctx, be, &r.data.networks, spec)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec.Host = host
	// The marker has served its purpose; keep it out of the new state.
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, replacesKey, nil)...)
	var result backend.PlanResult
	var err error
	if replacing {
		result, err = be.PlanReplacement(ctx, old, spec)
	} else {
		result, err = be.PlanContainer(ctx, spec)
	}
	if err != nil {
		addContainerError(&resp.Diagnostics, fmt.Sprintf("Container %s does not fit", plan.ID.ValueString()), err)
		return
	}
	addSkippedWarnings(&resp.Diagnostics, result.Warnings)
	if result.Host != "" {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("host"), result.Host)...)
	}
}

// addSkippedWarnings reports containers an engine skipped for malformed
// labels: they are not counted, which the user should know and fix.
func addSkippedWarnings(diags *diag.Diagnostics, warnings []string) {
	for _, w := range warnings {
		diags.AddWarning("Container with malformed Berth labels skipped", w)
	}
}

// addContainerError files a plan or create error; a name taken in the pool
// is an error on the name attribute.
func addContainerError(diags *diag.Diagnostics, summary string, err error) {
	if errors.Is(err, backend.ErrDuplicateName) {
		diags.AddAttributeError(path.Root("name"), "Duplicate container name", err.Error())
		return
	}
	// The engine refused one of the container's settings: point at it.
	var refused *engine.RefusedError
	if errors.As(err, &refused) && refused.Setting != "" {
		diags.AddAttributeError(path.Root(refused.Setting), summary, err.Error())
		return
	}
	diags.AddError(summary, err.Error())
}

func (r *ContainerResource) planResize(ctx context.Context, be backend.Backend, plan, state ContainerResourceModel, resp *resource.ModifyPlanResponse) {
	fits, reason, err := be.PlanResize(ctx, state.current(), plan.resources())
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot check the resize of container %s", state.ID.ValueString()), err.Error())
		return
	}
	if fits {
		return
	}
	if _, planning := r.data.refreshed.Load(state.ID.ValueString()); !planning {
		// Re-planned by the apply process (which reads nothing first), after
		// the plan chose an in-place update: turning it into a replacement
		// now would be an inconsistent final plan, so fail with the reason.
		// (A plan run with -refresh=false lands here too.)
		resp.Diagnostics.AddError(fmt.Sprintf("Container %s cannot be resized in place any more", state.ID.ValueString()),
			fmt.Sprintf("The new size no longer fits on host %q: %s. Something else took that capacity since the plan; "+
				"plan again (with refresh) to have the container replaced where it fits.", state.Host.ValueString(), reason))
		return
	}
	for _, p := range []struct {
		name    string
		changed bool
	}{{"cpu", !plan.CPU.Equal(state.CPU)}, {"memory", !plan.Memory.Equal(state.Memory)}} {
		if p.changed {
			resp.RequiresReplace.Append(path.Root(p.name))
		}
	}
	resp.Diagnostics.Append(markReplacement(ctx, resp, state)...)
	resp.Diagnostics.AddWarning(fmt.Sprintf("Container %s will be replaced to resize it", state.ID.ValueString()),
		fmt.Sprintf("The new size does not fit on host %q: %s. The container will be re-created where it fits.",
			state.Host.ValueString(), reason))
}
