package backend

import (
	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Embedded runs the scheduler core inside the provider process.
type Embedded struct {
	engines *engine.Set
}

// NewEmbedded returns the embedded backend over the provider block's engines.
func NewEmbedded(engines *engine.Set) *Embedded {
	return &Embedded{engines: engines}
}
