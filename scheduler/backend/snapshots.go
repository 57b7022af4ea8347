package backend

import (
	"context"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// snapshots batches reads: refreshing N containers on one engine costs one
// list call, shared by every Read of the process until this process changes
// something on that engine. Terraform refreshes all resources before it
// plans, so one snapshot per engine serves a whole refresh.
type snapshots struct {
	engines *engine.Set
	byHost  *onceMap[map[string]engine.Container] // container ID -> container
}

func newSnapshots(engines *engine.Set) *snapshots {
	return &snapshots{engines: engines, byHost: newOnceMap[map[string]engine.Container]()}
}

// get returns the host's Berth containers, listing them at most once per snapshot.
func (s *snapshots) get(ctx context.Context, host string) (map[string]engine.Container, error) {
	return s.byHost.do(ctx, host, func() (map[string]engine.Container, error) {
		eng, err := s.engines.Get(host)
		if err != nil {
			return nil, err
		}
		listed, err := eng.ListContainers(ctx, "")
		if err != nil {
			return nil, err
		}
		byID := make(map[string]engine.Container, len(listed))
		for _, c := range listed {
			byID[c.ID] = c
		}
		return byID, nil
	})
}

// changed drops the host's snapshot after this process changed something there.
func (s *snapshots) changed(host string) {
	s.byHost.forget(host)
}

// imageCache remembers which images this process saw on which engine, so
// that parallel creates of one image check or pull it once per engine.
type imageCache struct {
	present *onceMap[struct{}] // by host + "\x00" + image
}

func newImageCache() *imageCache {
	return &imageCache{present: newOnceMap[struct{}]()}
}

func (c *imageCache) ensure(ctx context.Context, eng *engine.Engine, image string, auth *engine.RegistryAuth) error {
	_, err := c.present.do(ctx, eng.Name()+"\x00"+image, func() (struct{}, error) {
		return struct{}{}, eng.EnsureImage(ctx, image, auth)
	})
	return err
}
