package codecs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultSource is the raw-file view of The Things Network device
// repository, from which single files can be fetched.
const DefaultSource = "https://raw.githubusercontent.com/TheThingsNetwork/lorawan-devices/master"

// Source reads single files of a device repository.
type Source interface {
	// Read returns the file at a slash-separated path in the repository,
	// an error wrapping fs.ErrNotExist if there is none.
	Read(ctx context.Context, path string) ([]byte, error)
	String() string
}

// OpenSource returns the repository at from: an http(s) base URL, each
// download limited to timeout, or a local folder.
func OpenSource(from string, timeout time.Duration) (Source, error) {
	if strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://") {
		return httpSource{base: strings.TrimSuffix(from, "/"), client: &http.Client{Timeout: timeout}}, nil
	}
	info, err := os.Stat(from)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", from)
	}
	return dirSource(from), nil
}

type dirSource string

func (d dirSource) Read(_ context.Context, path string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), filepath.FromSlash(path)))
}

func (d dirSource) String() string { return string(d) }

type httpSource struct {
	base   string
	client *http.Client
}

// maxCodecFile bounds a download; codecs and their metadata are a few
// kilobytes, rarely a few hundred.
const maxCodecFile = 4 << 20

func (h httpSource) Read(ctx context.Context, path string) ([]byte, error) {
	url := h.base + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", url, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCodecFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if len(b) > maxCodecFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a codec file", url, maxCodecFile)
	}
	return b, nil
}

func (h httpSource) String() string { return h.base }
