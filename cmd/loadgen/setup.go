package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	httpTimeout   = 30 * time.Second // one setup request (a signup hashes a password: it can take a while under load)
	benchPassword = "bench-password-1"
	setupWorkers  = 4 // concurrent signups and room creations
)

var (
	csrfField = regexp.MustCompile(`name="_csrf"\s+value="([^"]+)"`)
	newToken  = regexp.MustCompile(`id="new-token"[^>]*\svalue="([^"]+)"`)
	roomPathR = regexp.MustCompile(`^/rooms/(\d+)$`)
)

// webUser is one signed-in account: its own cookie jar, like one browser.
type webUser struct {
	name string
	base *url.URL
	jar  http.CookieJar
	c    *http.Client
	csrf string // the newest CSRF token seen on a page
}

func newWebUser(base *url.URL, name string) *webUser {
	jar, _ := cookiejar.New(nil)
	return &webUser{
		name: name, base: base, jar: jar,
		c: &http.Client{
			Jar:           jar,
			Timeout:       httpTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (u *webUser) url(path string) string { return u.base.String() + path }

// get fetches a page and remembers its CSRF token.
func (u *webUser) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url(path), nil)
	if err != nil {
		return "", err
	}
	resp, err := u.c.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %w", path, &httpError{Status: resp.StatusCode, Body: string(body)})
	}
	if m := csrfField.FindSubmatch(body); m != nil {
		u.csrf = html.UnescapeString(string(m[1]))
	}
	return string(body), nil
}

// post sends a form with the CSRF token and returns the response (body read) for the caller to check.
func (u *webUser) post(ctx context.Context, path string, form url.Values, hdr map[string]string) (*http.Response, string, error) {
	if u.csrf == "" {
		return nil, "", fmt.Errorf("POST %s: no CSRF token (fetch a page first)", path)
	}
	form.Set("_csrf", u.csrf)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url(path), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := u.c.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, "", fmt.Errorf("POST %s: %w", path, err)
	}
	return resp, string(body), nil
}

// signup creates the account through the app's own form (GET /signup for the CSRF token, then POST /signup).
func (u *webUser) signup(ctx context.Context) error {
	if _, err := u.get(ctx, "/signup"); err != nil {
		return err
	}
	resp, body, err := u.post(ctx, "/signup", url.Values{"username": {u.name}, "password": {benchPassword}}, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("POST /signup %s: %w", u.name, &httpError{Status: resp.StatusCode, Body: body})
	}
	if u.sessionCookie() == "" {
		return fmt.Errorf("POST /signup %s: no sb_session cookie in the answer", u.name)
	}
	// The session changed: fetch a page for a CSRF token that belongs to it.
	_, err = u.get(ctx, "/rooms")
	return err
}

func (u *webUser) sessionCookie() string {
	for _, c := range u.jar.Cookies(u.base) {
		if c.Name == "sb_session" {
			return c.Value
		}
	}
	return ""
}

// cookieHeader is the Cookie header a browser of this user sends on the socket's upgrade request.
func (u *webUser) cookieHeader() string {
	var parts []string
	for _, c := range u.jar.Cookies(u.base) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// createRoom creates an open room and returns its id (from the 303 Location /rooms/<id>).
func (u *webUser) createRoom(ctx context.Context, name string) (int64, error) {
	resp, body, err := u.post(ctx, "/rooms", url.Values{"name": {name}, "kind": {"open"}}, nil)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return 0, fmt.Errorf("POST /rooms %q: %w", name, &httpError{Status: resp.StatusCode, Body: body})
	}
	m := roomPathR.FindStringSubmatch(resp.Header.Get("Location"))
	if m == nil {
		return 0, fmt.Errorf("POST /rooms %q: unexpected Location %q", name, resp.Header.Get("Location"))
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// createToken creates an API token through the settings form; the page shows it once.
func (u *webUser) createToken(ctx context.Context, name string) (string, error) {
	if _, err := u.get(ctx, "/settings/tokens"); err != nil {
		return "", err
	}
	resp, body, err := u.post(ctx, "/settings/tokens", url.Values{"name": {name}}, nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /settings/tokens: %w", &httpError{Status: resp.StatusCode, Body: body})
	}
	if resp.StatusCode == http.StatusSeeOther { // post-redirect-get: the token is shown once on the next GET
		if body, err = u.get(ctx, "/settings/tokens"); err != nil {
			return "", err
		}
	}
	m := newToken.FindStringSubmatch(body)
	if m == nil {
		return "", errors.New(`POST /settings/tokens: no id="new-token" value in the page`)
	}
	return html.UnescapeString(m[1]), nil
}

// postMessage sends a message through the no-JavaScript form path, as htmx would (HX-Request: a fragment back).
func (u *webUser) postMessage(ctx context.Context, room int64, text, clientID string) error {
	path := fmt.Sprintf("/rooms/%d/messages", room)
	resp, body, err := u.post(ctx, path, url.Values{"text": {text}, "client_id": {clientID}}, map[string]string{"HX-Request": "true"})
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("POST %s: %w", path, &httpError{Status: resp.StatusCode, Body: body})
	}
	return nil
}

// signupUsers creates n accounts named b<run>u<i>, a few at a time.
func signupUsers(ctx context.Context, base *url.URL, run string, n int) ([]*webUser, error) {
	users := make([]*webUser, n)
	for i := range users {
		users[i] = newWebUser(base, fmt.Sprintf("b%su%d", run, i))
	}
	err := parallel(ctx, n, setupWorkers, func(ctx context.Context, i int) error { return users[i].signup(ctx) })
	return users, err
}

// createRooms creates the open rooms bench-<run>-<i>; room i is created by its user, who is then its only member
// until its sockets connect.
func createRooms(ctx context.Context, run string, n int, owner func(i int) *webUser) ([]int64, error) {
	ids := make([]int64, n)
	err := parallel(ctx, n, setupWorkers, func(ctx context.Context, i int) error {
		id, err := owner(i).createRoom(ctx, fmt.Sprintf("bench-%s-%d", run, i))
		ids[i] = id
		return err
	})
	return ids, err
}

// parallel runs fn(0..n-1) on at most workers goroutines and returns the first error (the rest are cancelled).
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// waitHealthy polls /healthz until it answers 200 or the timeout passes.
func waitHealthy(ctx context.Context, base *url.URL, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		if healthy(ctx, c, base) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/healthz did not answer 200 within %s", base, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func healthy(ctx context.Context, c *http.Client, base *url.URL) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
