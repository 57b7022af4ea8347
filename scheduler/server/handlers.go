package server

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
)

// params is what a handler may read of its request. Mutating handlers run
// detached from the request, so they get copies, never the request.
type params struct {
	pool, id string
	query    url.Values
	body     []byte
}

type handler func(ctx context.Context, p params) (any, error)

// admit checks readiness and the token, and reads the body.
func (s *Server) admit(r *http.Request, need Role) (*http.Request, params, error) {
	if !s.ready.Load() {
		return r, params{}, apiError(api.CodeNotReady, "berthd is still rebuilding its ledger from the engines")
	}
	id, err := s.authenticate(r)
	if err != nil {
		return r, params{}, err
	}
	infoOf(r.Context()).token = id.Name
	r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
	if err := allow(r.Context(), need, ""); err != nil {
		return r, params{}, err
	}
	body, err := readBody(r)
	if err != nil {
		return r, params{}, err
	}
	return r, params{pool: r.PathValue("pool"), id: r.PathValue("id"), query: r.URL.Query(), body: body}, nil
}

// query serves a route that changes nothing: GETs and the read-only POSTs.
// Every role may read; pool scopes are checked by the handler.
func (s *Server) query(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, p, err := s.admit(r, RoleRead)
		if err != nil {
			replyErr(err).write(w)
			return
		}
		v, err := h(r.Context(), p)
		if err != nil {
			replyErr(err).write(w)
			return
		}
		replyOf(http.StatusOK, v).write(w)
	})
}

// command serves a mutating route through the idempotency records.
func (s *Server) command(need Role, success int, recordStart bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, p, err := s.admit(r, need)
		if err != nil {
			replyErr(err).write(w)
			return
		}
		key := r.Header.Get(api.HeaderIdempotencyKey)
		if key == "" || len(key) > api.MaxIdempotencyKeyLen {
			replyErr(apiError(api.CodeMissingIdempotencyKey, "mutating requests need an Idempotency-Key header (1 to 200 characters)")).write(w)
			return
		}
		answer, replay := s.idem.do(r.Context(), idemCall{
			scope:       identityOf(r.Context()).Name + "\x00" + key,
			digest:      digestOf(r, p.body),
			recordStart: recordStart,
			run: func(ctx context.Context) reply {
				v, err := h(ctx, p)
				if err != nil {
					return replyErr(err)
				}
				return replyOf(success, v)
			},
		})
		if replay {
			w.Header().Set(api.HeaderReplay, "true")
		}
		answer.write(w)
	})
}
