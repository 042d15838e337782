package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
)

// tokenFileName is the generated API token's file in state_dir. The daemon
// writes it at first start when http.token is empty and reuses it after;
// the CLI reads it to call the daemon's API.
const tokenFileName = "http.token"

// maxTokenFile bounds what is read of a token file: a token is a line.
const maxTokenFile = 4 << 10

// apiToken is the token the API requires: http.token when the config has
// one, else the one in state_dir/http.token, generated when there is none
// yet. warn is said when the token file's mode lets others read it.
func apiToken(cfg *config.Config, warn func(string)) (string, error) {
	if cfg.HTTP.Token != "" {
		return cfg.HTTP.Token, nil
	}
	path := filepath.Join(cfg.StateDir, tokenFileName)
	tok, err := readTokenFile(path, warn)
	if errors.Is(err, fs.ErrNotExist) {
		return createTokenFile(path, warn)
	}
	return tok, err
}

// clientToken is the token a CLI command sends: http.token, else the
// daemon's generated one. It never creates the file: a missing one means
// the daemon has not started with this state_dir, or this user cannot see
// it, and the message says both.
func clientToken(cfg *config.Config, warn func(string)) (string, error) {
	if cfg.HTTP.Token != "" {
		return cfg.HTTP.Token, nil
	}
	path := filepath.Join(cfg.StateDir, tokenFileName)
	tok, err := readTokenFile(path, warn)
	if err != nil {
		return "", fmt.Errorf("the API token: %w: run this as the daemon's user (the daemon writes the file at its first start), or set http.token in the config", err)
	}
	return tok, nil
}

// readTokenFile reads a token file: one token, surrounding whitespace
// (the line break) not part of it, checked by the API's rule.
func readTokenFile(path string, warn func(string)) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 && warn != nil {
		warn(fmt.Sprintf("API token file %s (mode %04o) can be read by other users, who can then change devices and replay dead letters: chmod 600 it (or delete it, and the daemon generates a new one at its next start)", path, st.Mode().Perm()))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("%s is over %d bytes, not a token: delete it, and the daemon generates a new one at its next start", path, maxTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if err := httpapi.CheckToken(tok); err != nil {
		return "", fmt.Errorf("%s: %w: write one token on one line, or delete the file, and the daemon generates a new one at its next start", path, err)
	}
	return tok, nil
}

// createTokenFile writes a new random token to path with mode 0600. The
// file appears whole or not at all (written aside, then linked into
// place), and an existing one is never replaced: when two starts race, the
// second reads the first's token.
func createTokenFile(path string, warn func(string)) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate the API token: %w", err)
	}
	tok := hex.EncodeToString(raw[:])
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+tokenFileName+"-*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("write the API token into state_dir: %w (is %s writable by the daemon?)", err, dir)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(tok + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write the API token to %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readTokenFile(path, warn)
		}
		return "", fmt.Errorf("put the API token in place at %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the new name survives a crash; a token lost with it is generated again
		d.Close()
	}
	return tok, nil
}
