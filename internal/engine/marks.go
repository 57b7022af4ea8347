package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
)

// Berth keeps what Docker cannot put on a container (pool records, resize
// markers, replace marks) as small labelled volumes on the engine: Docker
// keeps them and their labels, and lists filter on the labels. Each is
// named prefix-<random>, so two processes writing at once never collide.

// LabelMarkOf names the container a resize marker or replace mark is
// about, so that deleting the container removes both kinds in one list.
const LabelMarkOf = "sh.berth.mark-of"

// createMarkVolume creates one labelled volume named prefix-<random>; what
// names the write in errors.
func (e *Engine) createMarkVolume(ctx context.Context, what, prefix string, labels map[string]string) (volume.Volume, error) {
	unique := make([]byte, 4)
	if _, err := rand.Read(unique); err != nil {
		return volume.Volume{}, fmt.Errorf("engine %s: %s: %w", e.name, what, err)
	}
	name := prefix + "-" + hex.EncodeToString(unique)
	var created volume.Volume
	err := e.do(ctx, what+" "+name, 0, func(ctx context.Context) (err error) {
		created, err = e.api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: "local", Labels: labels})
		return err
	})
	if err != nil {
		return volume.Volume{}, e.fail(what+" "+name, err)
	}
	return created, nil
}

// ForgetMarks removes the resize markers and replace marks of container id,
// once it is gone.
func (e *Engine) ForgetMarks(ctx context.Context, id string) error {
	listed, err := e.listVolumes(ctx, "marks of container "+shortID(id), filters.NewArgs(filters.Arg("label", LabelMarkOf+"="+id)))
	if err != nil {
		return err
	}
	for _, v := range listed {
		if err := e.removeVolume(ctx, "mark", v.Name); err != nil {
			return err
		}
	}
	return nil
}
