package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Reading back what was written is for the tools that fix history (a
// re-decode reads the raw uplinks and deletes the decoder's points):
// InfluxQL over InfluxDB 1.x's /query, which InfluxDB 1.8 answers for
// both write APIs (a version 2 bucket "db/rp" is the database and
// retention policy). InfluxDB 2.x and 3.x do not take InfluxQL DELETE.

// Series is one series of an InfluxQL answer: timestamps are nanosecond
// integers and numbers json.Number, so integers and floats stay apart.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// MaxQueryBytes bounds one query's answer: callers page with LIMIT or
// time windows, so an answer this large is a mistake, not data.
const MaxQueryBytes = 256 << 20

// ErrQuery marks an InfluxQL statement InfluxDB refused (a syntax error,
// a missing database, no permission), as against an unreachable server.
var ErrQuery = errors.New("influx: query refused")

// Query runs InfluxQL read statements (SELECT, SHOW) against the
// target's database and returns the series of every statement's result,
// in order.
func (s *Client) Query(ctx context.Context, q string) ([]Series, error) {
	return s.query(ctx, http.MethodGet, q)
}

// Exec runs InfluxQL statements that change data (DELETE, DROP), which
// InfluxDB 1.x takes only by POST; several may be joined with ";".
func (s *Client) Exec(ctx context.Context, stmts string) error {
	_, err := s.query(ctx, http.MethodPost, stmts)
	return err
}

func (s *Client) query(ctx context.Context, method, q string) ([]Series, error) {
	u, _ := url.Parse(s.cfg.URL) // checked by Validate
	u = u.JoinPath("query")
	params := url.Values{"db": {s.cfg.DatabaseName()}, "epoch": {"ns"}}
	if rp := s.retentionPolicy(); rp != "" {
		params.Set("rp", rp)
	}
	var body io.Reader
	if method == http.MethodGet {
		params.Set("q", q)
	} else {
		body = strings.NewReader(url.Values{"q": {q}}.Encode())
	}
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("InfluxDB at %s unreachable: %w", s.cfg.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxQueryBytes+1))
	if err != nil {
		return nil, fmt.Errorf("InfluxDB at %s: read the answer: %w", s.cfg.URL, err)
	}
	if len(b) > MaxQueryBytes {
		return nil, fmt.Errorf("%w: the answer exceeds %d bytes: %.200s", ErrQuery, MaxQueryBytes, q)
	}
	var r struct {
		Results []struct {
			Series []Series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	decErr := dec.Decode(&r)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: InfluxDB refuses the credentials for reading %q (HTTP %d: %s): %s", ErrQuery, s.cfg.Target(), resp.StatusCode, firstNonEmpty(r.Error, answerMessage(resp)), s.credentialsHint())
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("InfluxDB at %s answered HTTP %d: %s", s.cfg.URL, resp.StatusCode, firstNonEmpty(r.Error, strings.TrimSpace(string(b))))
	case resp.StatusCode/100 != 2:
		return nil, fmt.Errorf("%w: InfluxDB answered HTTP %d: %s (statement %.200s)", ErrQuery, resp.StatusCode, firstNonEmpty(r.Error, strings.TrimSpace(string(b))), q)
	case decErr != nil:
		return nil, fmt.Errorf("InfluxDB at %s: answer is not InfluxQL JSON (is this InfluxDB 1.x?): %w", s.cfg.URL, decErr)
	case r.Error != "":
		return nil, fmt.Errorf("%w: %s (statement %.200s)", ErrQuery, r.Error, q)
	}
	var out []Series
	for _, res := range r.Results {
		if res.Error != "" {
			return nil, fmt.Errorf("%w: %s (statement %.200s)", ErrQuery, res.Error, q)
		}
		out = append(out, res.Series...)
	}
	return out, nil
}

// retentionPolicy is where reads look: version 1's setting, or the part
// of a 1.8 bucket after "/".
func (s *Client) retentionPolicy() string {
	if s.cfg.Version == V1 {
		return s.cfg.RetentionPolicy
	}
	_, rp, _ := strings.Cut(s.cfg.Bucket, "/")
	return rp
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
