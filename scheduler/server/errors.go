package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/berthsh/terraform-provider-berth/scheduler"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// statusOf is the HTTP status of each stable error code.
var statusOf = map[string]int{
	api.CodeBadRequest:            http.StatusBadRequest,
	api.CodeMissingIdempotencyKey: http.StatusBadRequest,
	api.CodeUnauthorized:          http.StatusUnauthorized,
	api.CodeForbidden:             http.StatusForbidden,
	api.CodeNotFound:              http.StatusNotFound,
	api.CodePoolNotFound:          http.StatusNotFound,
	api.CodeLeaseNotFound:         http.StatusNotFound,
	api.CodeContainerNotFound:     http.StatusNotFound,
	api.CodeNetworkNotFound:       http.StatusNotFound,
	api.CodeNetworkInUse:          http.StatusConflict,
	api.CodeVolumeNotFound:        http.StatusNotFound,
	api.CodeMethodNotAllowed:      http.StatusMethodNotAllowed,
	api.CodeInFlight:              http.StatusConflict,
	api.CodeNoFit:                 http.StatusConflict,
	api.CodeLeaseExpired:          http.StatusConflict,
	api.CodeNameInUse:             http.StatusConflict,
	api.CodePoolInUse:             http.StatusConflict,
	api.CodeConflict:              http.StatusConflict,
	api.CodeBodyTooLarge:          http.StatusRequestEntityTooLarge,
	api.CodeIdempotencyKeyReused:  http.StatusUnprocessableEntity,
	api.CodeBackend:               http.StatusInternalServerError,
	api.CodeInternal:              http.StatusInternalServerError,
	api.CodeNotReady:              http.StatusServiceUnavailable,
	api.CodeShuttingDown:          http.StatusServiceUnavailable,
}

func apiError(code, message string) *api.Error {
	return &api.Error{Code: code, Message: message}
}

// errorOf maps an error to its status and stable code. What the backend
// says is kept as the message: it names hosts and explains.
func errorOf(err error) (int, *api.Error) {
	var known *api.Error
	var noFit *scheduler.NoFitError
	var tooLarge *http.MaxBytesError
	var e *api.Error
	switch {
	case errors.As(err, &known):
		e = known
	case errors.As(err, &tooLarge):
		e = apiError(api.CodeBodyTooLarge, fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit))
	case errors.As(err, &noFit):
		e = apiError(api.CodeNoFit, err.Error())
	case errors.Is(err, backend.ErrDuplicateName):
		e = apiError(api.CodeNameInUse, err.Error())
	case errors.Is(err, backend.ErrPoolNotFound):
		e = apiError(api.CodePoolNotFound, err.Error())
	case errors.Is(err, backend.ErrVolumeNotFound):
		e = apiError(api.CodeVolumeNotFound, err.Error())
	case errors.Is(err, backend.ErrPoolInUse):
		e = apiError(api.CodePoolInUse, err.Error())
	case errors.Is(err, backend.ErrNetworkInUse):
		e = apiError(api.CodeNetworkInUse, err.Error())
	case errors.Is(err, backend.ErrLeaseGone):
		e = apiError(api.CodeLeaseExpired, err.Error()+": run terraform plan again")
	case errors.Is(err, scheduler.ErrUnknownHost):
		e = apiError(api.CodeBadRequest, err.Error())
	case errors.Is(err, store.ErrUnavailable):
		e = apiError(api.CodeNotReady, "berthd's store is unavailable, nothing was done: "+err.Error())
	case errors.Is(err, store.ErrFenced):
		e = apiError(api.CodeNotReady, "this berthd lost the leadership, nothing more is written through it: "+err.Error()+"; retry (through another replica)")
	default:
		e = apiError(api.CodeBackend, err.Error())
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return status, e
}

// reply is a handler's answer before it is written.
type reply struct {
	status     int
	body       []byte // JSON, or nil for no body
	retryAfter bool   // the client should retry: in flight, not ready, shutting down
}

func replyOf(status int, v any) reply {
	if v == nil {
		return reply{status: status}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return replyErr(fmt.Errorf("encoding the answer: %w", err))
	}
	return reply{status: status, body: data}
}

func replyErr(err error) reply {
	status, e := errorOf(err)
	r := replyOf(status, e)
	r.retryAfter = e.Code == api.CodeInFlight || e.Code == api.CodeNotReady || e.Code == api.CodeShuttingDown
	return r
}

func (r reply) write(w http.ResponseWriter) {
	if r.retryAfter {
		w.Header().Set(api.HeaderRetryAfter, "1")
	}
	if r.body == nil {
		w.WriteHeader(r.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// decode parses a request body strictly: one JSON value of T, no unknown
// fields, nothing after it. Every failure is a 400.
func decode[T any](body []byte) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, apiError(api.CodeBadRequest, "invalid JSON body: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return v, apiError(api.CodeBadRequest, "invalid JSON body: more than one value")
	}
	return v, nil
}

// readBody reads a request body within the limit (the body-limit
// middleware caps it; this turns the cap into a 413).
func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, apiError(api.CodeBadRequest, "reading the body: "+err.Error())
	}
	return data, nil
}
