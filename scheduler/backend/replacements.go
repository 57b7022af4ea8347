package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// Replacements created before the old container is destroyed
// (create_before_destroy). Terraform tells such a create nothing about the
// container it replaces, which still holds the name. The plan of the
// replacement leaves a replace mark beside the old container (its engine
// holds it, so the apply process, or any other, sees it); a create, or the
// apply's re-plan, that finds its name held by a marked container retires
// that container (engine.Retire renames it, freeing the Docker name) and
// takes the name. The retired container keeps its capacity in the ledger,
// under a key of its own, until its destroy removes it by id: the
// replacement needs room of its own beside it. A name held by a container
// without a live mark stays refused, whoever asks.

// replaceMarkTTL bounds how long a plan's replace mark lets a create take
// the name: long enough for a saved plan reviewed before it is applied.
const replaceMarkTTL = 24 * time.Hour

// retiredKey is a retired container's key in the ledger: not its name.
func retiredKey(pool, name, id string) string {
	return containerKey(pool, name) + "#retired-" + id
}

// ledgerKey is the key an observed container is held under.
func ledgerKey(c engine.Container) string {
	if c.Retired {
		return retiredKey(c.Pool, c.Name, c.ID)
	}
	return containerKey(c.Pool, c.Name)
}

// markReplaced leaves (or keeps) a replace mark for old on its engine and
// removes its expired ones. Failing to is only a warning: a replacement
// that destroys first needs no mark.
func (b *Embedded) markReplaced(ctx context.Context, old ContainerRef) []string {
	if old.ContainerID == "" {
		return nil
	}
	eng, err := b.engines.Get(old.Host)
	if err == nil {
		err = refreshMark(ctx, eng, old)
	}
	if err != nil {
		return []string{fmt.Sprintf("Container %s/%s on %s could not be marked as being replaced (%v): with create_before_destroy its replacement will be refused the name; plan again once the host answers.",
			old.Pool, old.Name, old.Host, err)}
	}
	return nil
}

func refreshMark(ctx context.Context, eng *engine.Engine, old ContainerRef) error {
	marks, err := eng.ReplaceMarks(ctx, old.Pool, old.ContainerID)
	if err != nil {
		return err
	}
	now := time.Now()
	fresh := false
	for _, m := range marks {
		switch {
		case m.Until.Before(now):
			if err := eng.RemoveReplaceMark(ctx, m); err != nil {
				return err
			}
		case m.Until.After(now.Add(replaceMarkTTL / 2)):
			fresh = true
		}
	}
	if fresh {
		return nil
	}
	return eng.MarkReplaced(ctx, old.Pool, old.Name, old.ContainerID, now.Add(replaceMarkTTL))
}

// replaceMarked reports whether a live replace mark names the container
// that holder is bound to.
func (b *Embedded) replaceMarked(ctx context.Context, pool string, holder scheduler.Reservation) (bool, error) {
	eng, err := b.engines.Get(holder.Host)
	if err != nil {
		return false, err
	}
	marks, err := eng.ReplaceMarks(ctx, pool, holder.ContainerID)
	if err != nil {
		return false, err
	}
	now := time.Now()
	for _, m := range marks {
		if m.Until.After(now) {
			return true, nil
		}
	}
	return false, nil
}

// retireOrRefuse retires the container holder is bound to when a live
// replace mark names it, so that the caller may reserve the name again;
// otherwise the name is taken.
func (b *Embedded) retireOrRefuse(ctx context.Context, ps *poolState, spec ContainerSpec, holder scheduler.Reservation) error {
	marked, err := b.replaceMarked(ctx, spec.Pool, holder)
	switch {
	case err != nil:
		return err
	case !marked:
		return nameInUse(spec, holder)
	}
	return b.retire(ctx, ps, spec, holder)
}

// retire renames holder's container on its engine and moves its
// reservation off the name, keeping its capacity.
func (b *Embedded) retire(ctx context.Context, ps *poolState, spec ContainerSpec, holder scheduler.Reservation) error {
	eng, err := b.engines.Get(holder.Host)
	if err != nil {
		return err
	}
	defer b.reads.changed(holder.Host)
	if err := eng.Retire(ctx, spec.Pool, spec.Name, holder.ContainerID); err != nil {
		return fmt.Errorf("retiring %s/%s (%s) on %s for its replacement: %w", spec.Pool, spec.Name, shortID(holder.ContainerID), holder.Host, err)
	}
	_, err = ps.sched.Rekey(holder.ID, retiredKey(spec.Pool, spec.Name, holder.ContainerID))
	if errors.Is(err, scheduler.ErrReleased) || errors.Is(err, scheduler.ErrNotFound) {
		return nil // deleted meanwhile
	}
	return err
}
