package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// A pool applied by berthd says so in its records; a provider process in
// embedded mode then refuses to place into it, change it or delete it,
// naming berthd's URL, and berthd refuses a pool it has not applied.
func TestEmbeddedAndBerthdNeverShareAPool(t *testing.T) {
	env := testenv.Require(t)
	const url = "https://berthd.test:8700"
	berthd := newProcess(t, env).ServeAs(url)
	spec := testPool(t, env, berthd, "bk-modes", 4, 34500)
	ctx := context.Background()

	if _, err := berthd.PlanContainer(ctx, webSpec(env, spec.Name, "web-0")); err != nil {
		t.Fatalf("berthd plans into its own pool: %v", err)
	}
	found, err := berthd.ReadPool(ctx, spec.Name)
	if err != nil || found == nil || found.Scheduler != url {
		t.Fatalf("pool record: %+v, %v; want scheduler %q", found, err, url)
	}

	embedded := newProcess(t, env)
	refusals := map[string]error{}
	_, refusals["plan"] = embedded.PlanContainer(ctx, webSpec(env, spec.Name, "web-1"))
	_, refusals["create"] = embedded.CreateContainer(ctx, webSpec(env, spec.Name, "web-1"))
	_, refusals["apply pool"] = embedded.ApplyPool(ctx, spec)
	refusals["delete pool"] = embedded.DeletePool(ctx, spec.Name)
	for op, err := range refusals {
		if err == nil || !strings.Contains(err.Error(), "registered with berthd at "+url) || !strings.Contains(err.Error(), "scheduler_url") {
			t.Errorf("embedded %s: got %v, want a refusal naming %s and scheduler_url", op, err, url)
		}
	}
	for host, containers := range observedUsage(t, berthd, spec.Name, keys(spec.Hosts)) {
		if len(containers) != 0 {
			t.Errorf("the refused create left %d container(s) on %s", len(containers), host)
		}
	}

	other := testPool(t, env, newProcess(t, env), "bk-modes-embedded", 4, 34800)
	_, err = newProcess(t, env).ServeAs(url).PlanContainer(ctx, webSpec(env, other.Name, "web-0"))
	if err == nil || !strings.Contains(err.Error(), "managed in embedded mode") {
		t.Errorf("berthd planning into an embedded pool: got %v, want a refusal", err)
	}
}
