package backend

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// ErrDuplicateName marks errors about a container name that is already
// taken in its pool, by a container or by another resource of the plan.
var ErrDuplicateName = errors.New("duplicate container name")

// nameClaims tells the same resource planned or created again from a
// second resource that uses the same name in the same pool.
//
// The ledger is idempotent by container key (pool/name), so both would
// otherwise share one reservation. Terraform plans a resource again in the
// same provider instance when the plan and apply walks share it (-debug,
// reattach), and then always with the same configuration: a different spec
// fingerprint on the same reservation can only be another resource. Two
// resources with identical settings cannot be told apart at plan; their
// creates can, since Terraform creates each resource once per process.
type nameClaims struct {
	mu      sync.Mutex
	planned map[string][sha256.Size]byte // reservation id -> spec fingerprint
	created map[string]bool              // reservation ids a create has claimed
}

func newNameClaims() *nameClaims {
	return &nameClaims{planned: map[string][sha256.Size]byte{}, created: map[string]bool{}}
}

// plan records that spec planned the reservation; it fails when another
// spec planned it already.
func (n *nameClaims) plan(reservationID string, spec ContainerSpec) error {
	fingerprint, err := specFingerprint(spec)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if prior, ok := n.planned[reservationID]; ok && prior != fingerprint {
		return duplicateName(spec, "with different settings")
	}
	n.planned[reservationID] = fingerprint
	return nil
}

// create claims the reservation for a create. Reservation ids are never
// reused and Terraform creates a resource once per process, so a second
// claim is a second resource.
func (n *nameClaims) create(reservationID string, spec ContainerSpec) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.created[reservationID] {
		return duplicateName(spec, "in the same apply")
	}
	n.created[reservationID] = true
	return nil
}

func duplicateName(spec ContainerSpec, how string) error {
	return fmt.Errorf("%w: pool %s: two resources declare a container named %s, %s; names are unique within a pool: rename one of them",
		ErrDuplicateName, spec.Pool, spec.Name, how)
}

// specFingerprint digests everything a configuration sets. Credentials are
// part of it only as a digest, in memory.
func specFingerprint(spec ContainerSpec) ([sha256.Size]byte, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("fingerprinting %s/%s: %w", spec.Pool, spec.Name, err)
	}
	return sha256.Sum256(data), nil
}
