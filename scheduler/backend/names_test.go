package backend

import (
	"errors"
	"testing"
)

func TestNameClaimsTellReplanFromSecondResource(t *testing.T) {
	names := newNameClaims()
	web := ContainerSpec{Pool: "dc1", Name: "web", Image: "app:1", Resources: Resources{MilliCPU: 100, MemoryBytes: 16 << 20}}
	if err := names.plan("r1", web); err != nil {
		t.Fatalf("first plan: %v", err)
	}
	// The same resource planned again (the apply walk in the same instance).
	if err := names.plan("r1", web); err != nil {
		t.Fatalf("same spec planned again: %v", err)
	}
	other := web
	other.Resources.MemoryBytes = 32 << 20
	if err := names.plan("r1", other); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("another spec on the same reservation: got %v, want ErrDuplicateName", err)
	}
	// A new reservation (after a release) is planned afresh.
	if err := names.plan("r2", other); err != nil {
		t.Fatalf("new reservation: %v", err)
	}

	if err := names.create("r1", web); err != nil {
		t.Fatalf("first create: %v", err)
	}
	if err := names.create("r1", web); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("second create of one reservation: got %v, want ErrDuplicateName", err)
	}
}
