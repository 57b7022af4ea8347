package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Retry policy. Waits grow exponentially with full jitter between
// retryWaitMin and retryWaitMax; retryMax bounds a request that never
// succeeds (about a minute and a half), the caller's deadline bounds the rest.
const (
	retryMax     = 20
	retryWaitMin = 100 * time.Millisecond
	retryWaitMax = 5 * time.Second
	// attemptTimeout bounds one attempt, so that a response lost in the
	// network becomes a retry; a repeat with the same Idempotency-Key waits
	// on the first attempt's operation instead of starting another.
	attemptTimeout = 2 * time.Minute
	// errorBodyLimit caps how much of an error answer is read.
	errorBodyLimit = 64 << 10
)

// Error is an answer of berthd other than success: its stable code and its
// message, which is what the user needs to read.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (berthd: %s, HTTP %d)", e.Message, e.Code, e.Status)
}

// Unwrap maps berthd's codes onto the backend's sentinel errors, so the
// provider treats both backends' errors alike.
func (e *Error) Unwrap() error {
	switch e.Code {
	case api.CodeNameInUse:
		return backend.ErrDuplicateName
	case api.CodePoolNotFound:
		return backend.ErrPoolNotFound
	case api.CodeNetworkInUse:
		return backend.ErrNetworkInUse
	}
	return nil
}

// transport sends requests to berthd. It remembers which URL answered last
// and starts there; a connection failure moves the next attempt to the
// next URL.
type transport struct {
	urls   []string
	active atomic.Int64 // index into urls of the last URL that answered
	token  string
	agent  string
	http   *retryablehttp.Client
}

func newTransport(cfg Config) (*transport, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("no berthd URL")
	}
	base := cleanhttp.DefaultPooledClient()
	base.Timeout = attemptTimeout
	if cfg.CAPEM != "" {
		roots, err := CertPool(cfg.CAPEM)
		if err != nil {
			return nil, fmt.Errorf("scheduler_ca_pem: %w", err)
		}
		transport, ok := base.Transport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("unexpected HTTP transport %T", base.Transport)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimRight(u, "/")
	}
	t := &transport{urls: urls, token: cfg.Token, agent: cfg.UserAgent}
	t.http = &retryablehttp.Client{
		HTTPClient:   base,
		Logger:       nil,
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		RetryMax:     retryMax,
		CheckRetry:   t.checkRetry,
		Backoff:      jitteredBackoff,
		ErrorHandler: t.giveUp,
		PrepareRetry: t.prepareRetry,
	}
	return t, nil
}

// attempt is the per-request state shared by checkRetry and prepareRetry.
type attempt struct {
	url      int  // index of the URL being tried
	failover bool // the last attempt did not reach berthd
}

type attemptKey struct{}

// do sends one logical request: JSON in, JSON out. key is the
// Idempotency-Key of a mutating request ("" for reads); the same key is
// sent on every retry, so berthd does the work once.
func (t *transport) do(ctx context.Context, method, path, key string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	state := &attempt{url: int(t.active.Load())}
	ctx = context.WithValue(ctx, attemptKey{}, state)
	req, err := retryablehttp.NewRequestWithContext(ctx, method, t.urls[state.url]+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	if t.agent != "" {
		req.Header.Set("User-Agent", t.agent)
	}
	if key != "" {
		req.Header.Set(api.HeaderIdempotencyKey, key)
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	t.active.Store(int64(state.url))
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("berthd %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// checkRetry retries what is safe to repeat and nothing else: connection
// errors (on the next URL), 429, 502/503/504 and 409 for a request still
// in flight. Other 4xx and 5xx are berthd's final word.
func (t *transport) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		retry, _ := retryablehttp.DefaultRetryPolicy(ctx, nil, err)
		if state, ok := ctx.Value(attemptKey{}).(*attempt); ok && retry {
			state.failover = true
		}
		return retry, nil
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, nil
	case http.StatusConflict:
		return peekCode(resp) == api.CodeInFlight, nil
	}
	return false, nil
}

// prepareRetry points the next attempt at the next URL when the last one
// did not reach berthd.
func (t *transport) prepareRetry(req *http.Request) error {
	state, ok := req.Context().Value(attemptKey{}).(*attempt)
	if !ok || !state.failover || len(t.urls) == 1 {
		return nil
	}
	state.failover = false
	state.url = (state.url + 1) % len(t.urls)
	next, err := url.Parse(t.urls[state.url] + strings.TrimPrefix(req.URL.RequestURI(), basePath(req.URL, t.urls)))
	if err != nil {
		return err
	}
	req.URL = next
	req.Host = next.Host
	return nil
}

// basePath is the path prefix of whichever configured URL u starts with.
func basePath(u *url.URL, urls []string) string {
	for _, raw := range urls {
		base, err := url.Parse(raw)
		if err == nil && base.Host == u.Host && strings.HasPrefix(u.Path, base.Path) {
			return base.Path
		}
	}
	return ""
}

// giveUp keeps berthd's last answer, so the caller decodes its message;
// when berthd never answered, it says where it was looked for.
func (t *transport) giveUp(resp *http.Response, err error, tries int) (*http.Response, error) {
	if resp != nil && err == nil {
		return resp, nil
	}
	if resp != nil {
		_ = resp.Body.Close()
	}
	return nil, fmt.Errorf("berthd did not answer at %s after %d attempt(s): %w", strings.Join(t.urls, ", "), tries, err)
}

// jitteredBackoff waits per Retry-After when berthd sends it, and
// otherwise exponentially with full jitter, so clients that failed
// together do not retry together.
func jitteredBackoff(lo, hi time.Duration, n int, resp *http.Response) time.Duration {
	if resp != nil {
		if s, err := strconv.Atoi(resp.Header.Get(api.HeaderRetryAfter)); err == nil && s >= 0 {
			return min(time.Duration(s)*time.Second, hi)
		}
	}
	ceiling := hi
	if n < 32 && lo<<n < hi {
		ceiling = lo << n
	}
	return ceiling/2 + mathrand.N(ceiling/2+1)
}

// peekCode reads the error code of an answer and leaves its body readable.
func peekCode(resp *http.Response) string {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(raw, &e)
	return e.Code
}

// decodeError turns an error answer into *Error, keeping whatever text
// berthd (or a proxy in front of it) sent when it is not berthd's JSON.
func decodeError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	var body api.Error
	err := json.Unmarshal(raw, &body)
	e := &Error{Status: resp.StatusCode, Code: body.Code, Message: body.Message}
	if err != nil || e.Message == "" {
		e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		e.Message = strings.TrimSpace(string(raw))
		if e.Message == "" {
			e.Message = resp.Status
		}
	}
	return e
}

// newKey is a fresh Idempotency-Key for one logical operation.
func newKey(op string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return op + "-" + hex.EncodeToString(b)
}
