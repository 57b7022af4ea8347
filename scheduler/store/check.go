package store

import (
	"errors"
	"fmt"
)

// validate rejects ops no implementation can write.
func validate(ops []Op) error {
	if len(ops) == 0 {
		return errors.New("store: commit with no writes")
	}
	for _, op := range ops {
		if op.Bucket == "" || op.Key == "" {
			return fmt.Errorf("store: write needs a bucket and a key (got %q/%q)", op.Bucket, op.Key)
		}
		if op.Expect < Absent {
			return fmt.Errorf("store: %s/%s: expected revision %d is invalid", op.Bucket, op.Key, op.Expect)
		}
	}
	return nil
}

// expectation checks op's guard against the key's current revision.
func expectation(op Op, revision int64, exists bool) error {
	switch {
	case op.Expect == 0:
		return nil
	case op.Expect == Absent && exists:
		return fmt.Errorf("%w: %s/%s exists (revision %d)", ErrConflict, op.Bucket, op.Key, revision)
	case op.Expect > 0 && (!exists || revision != op.Expect):
		return fmt.Errorf("%w: %s/%s is at revision %d, not %d", ErrConflict, op.Bucket, op.Key, revision, op.Expect)
	}
	return nil
}
