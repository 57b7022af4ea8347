package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
)

// Role is what a token may do; each role includes the ones below it.
type Role int

// Roles, weakest first.
const (
	RoleRead   Role = iota + 1 // usage and status
	RoleDeploy                 // leases and containers in its pools
	RoleAdmin                  // pools and everything
)

var roleNames = map[string]Role{"read": RoleRead, "deploy": RoleDeploy, "admin": RoleAdmin}

func (r Role) String() string {
	for name, role := range roleNames {
		if role == r {
			return name
		}
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Identity is an authenticated token.
type Identity struct {
	Name  string
	Role  Role
	Pools []string // nil: every pool
}

// mayUse reports whether the identity may act with role on pool ("" for
// no particular pool).
func (id *Identity) mayUse(role Role, pool string) bool {
	if id.Role < role {
		return false
	}
	return id.Role == RoleAdmin || pool == "" || id.Pools == nil || slices.Contains(id.Pools, pool)
}

// Tokens authenticates bearer tokens against their sha256 digests.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	id     Identity
}

// tokenFileEntry is one line of tokens.json.
type tokenFileEntry struct {
	Name   string   `json:"name"`
	SHA256 string   `json:"sha256"`
	Role   string   `json:"role"`
	Pools  []string `json:"pools"`
}

// LoadTokens reads a tokens.json file: only digests, never tokens.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var file []tokenFileEntry
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("tokens: %s: %w (want [{\"name\": ..., \"sha256\": ..., \"role\": \"admin|deploy|read\", \"pools\": [...]}])", path, err)
	}
	t := &Tokens{}
	seen := map[string]bool{}
	var errs []error
	for i, e := range file {
		digest, err := hex.DecodeString(e.SHA256)
		role, known := roleNames[e.Role]
		switch {
		case e.Name == "":
			errs = append(errs, fmt.Errorf("entry %d has no name", i))
		case seen[e.Name]:
			errs = append(errs, fmt.Errorf("token name %q appears twice", e.Name))
		case err != nil || len(digest) != sha256.Size:
			errs = append(errs, fmt.Errorf("token %q: sha256 must be 64 hex digits (the digest of the token, never the token)", e.Name))
		case !known:
			errs = append(errs, fmt.Errorf("token %q: role %q is not admin, deploy or read", e.Name, e.Role))
		default:
			seen[e.Name] = true
			entry := tokenEntry{id: Identity{Name: e.Name, Role: role}}
			if len(e.Pools) > 0 {
				entry.id.Pools = slices.Clone(e.Pools)
			}
			copy(entry.digest[:], digest)
			t.entries = append(t.entries, entry)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tokens: %s: %w", path, err)
	}
	if len(t.entries) == 0 {
		return nil, fmt.Errorf("tokens: %s lists no token", path)
	}
	return t, nil
}

// AdminToken is the single admin of a berthd started without --tokens.
func AdminToken(token string) (*Tokens, error) {
	if len(token) < 16 {
		return nil, errors.New("BERTHD_ADMIN_TOKEN must be at least 16 characters")
	}
	return &Tokens{entries: []tokenEntry{{digest: sha256.Sum256([]byte(token)), id: Identity{Name: "admin", Role: RoleAdmin}}}}, nil
}

// Authenticate finds the token's identity. Every entry is compared, in
// constant time, so timing tells nothing about which digests exist.
func (t *Tokens) Authenticate(token string) (*Identity, bool) {
	digest := sha256.Sum256([]byte(token))
	var found *Identity
	for i := range t.entries {
		if subtle.ConstantTimeCompare(digest[:], t.entries[i].digest[:]) == 1 {
			found = &t.entries[i].id
		}
	}
	return found, found != nil
}

type identityKey struct{}

// identityOf is the request's authenticated identity.
func identityOf(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}

// authenticate admits requests with a known bearer token. The 401 says
// nothing about pools or tokens.
func (s *Server) authenticate(r *http.Request) (*Identity, error) {
	header := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return nil, apiError(api.CodeUnauthorized, "missing or malformed Authorization: Bearer <token>")
	}
	id, ok := s.tokens.Authenticate(token)
	if !ok {
		return nil, apiError(api.CodeUnauthorized, "invalid token")
	}
	return id, nil
}

// allow fails with 403 unless the identity may act with role on pool.
func allow(ctx context.Context, role Role, pool string) error {
	id := identityOf(ctx)
	if id == nil {
		return apiError(api.CodeUnauthorized, "missing or malformed Authorization: Bearer <token>")
	}
	if !id.mayUse(role, pool) {
		if pool == "" {
			return apiError(api.CodeForbidden, fmt.Sprintf("token %q (role %s) may not do this: it needs role %s", id.Name, id.Role, role))
		}
		return apiError(api.CodeForbidden, fmt.Sprintf("token %q (role %s) may not act on pool %q with role %s", id.Name, id.Role, pool, role))
	}
	return nil
}
