package devices

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadFile reads a devices file: YAML (.yaml, .yml) or CSV (.csv).
func LoadFile(path string) ([]Device, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devices: read devices file: %w", err)
	}
	return parseFile(path, b)
}

// parseFile parses a devices file's content by the file's extension.
func parseFile(path string, b []byte) ([]Device, error) {
	var (
		devs []Device
		err  error
	)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		devs, err = ParseCSV(bytes.NewReader(b))
	case ".yaml", ".yml":
		devs, err = ParseYAML(b)
	default:
		return nil, fmt.Errorf("devices: %s: unknown file type: name it .csv, .yaml or .yml", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return devs, nil
}

// ParseYAML reads a YAML list of devices, or a mapping with a "devices" list.
// Unknown keys are errors, so a typo in a tag block is not silently ignored.
// The bytes are decoded once, strictly, in the shape their first token
// shows: decoding a node tree and re-encoding it to decode strictly (yaml
// nodes have no strict mode) tripled the daemon's start-up CPU with a
// large fleet, and its errors named lines of the re-encoded text.
func ParseYAML(b []byte) ([]Device, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var (
		list []Device
		err  error
	)
	if yamlList(b) {
		err = dec.Decode(&list)
	} else {
		var wrap struct {
			Devices []Device `yaml:"devices"`
		}
		err = dec.Decode(&wrap)
		list = wrap.Devices
	}
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	return list, nil
}

// yamlList reports whether a YAML document's top level is a list: its
// first content (after blank lines, comments, directives and a "---"
// marker) is a "- " entry or a "[" flow sequence.
func yamlList(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		t := bytes.TrimSpace(line)
		if bytes.HasPrefix(t, []byte("---")) {
			t = bytes.TrimSpace(t[3:])
		}
		if len(t) == 0 || t[0] == '#' || t[0] == '%' {
			continue
		}
		return t[0] == '[' || (t[0] == '-' && (len(t) == 1 || t[1] == ' ' || t[1] == '\t'))
	}
	return false
}

// decodeStrict decodes a node with unknown keys as errors: Node.Decode
// has no KnownFields switch, so the node is re-encoded and decoded
// strictly. For one bulk-import row at a time; whole files go through
// ParseYAML.
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	return nil
}

// ParseCSV reads devices from CSV with a header row, in the columns
// ParseBulk describes: dev_eui (required), name, model, tags (key=value
// pairs separated by ';', or by '|' in a ';'-delimited file), tag:KEY and
// var:KEY columns, and the ABP session columns (a row with a dev_addr has
// a session). Empty lines and lines starting with '#' are skipped. Every
// bad row is reported, each with its line.
func ParseCSV(r io.Reader) ([]Device, error) {
	rows, err := parseCSVRows(r)
	if err != nil {
		return nil, err
	}
	devs := make([]Device, 0, len(rows))
	var errs []error
	for _, row := range rows {
		for _, p := range row.Problems {
			errs = append(errs, fmt.Errorf("line %d: %s", row.Line, p))
		}
		devs = append(devs, row.Device)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("devices: csv: %w", errors.Join(errs...))
	}
	if len(devs) == 0 {
		return nil, nil
	}
	return devs, nil
}

func (d *Device) setTag(k, v string) {
	if d.Tags == nil {
		d.Tags = map[string]string{}
	}
	d.Tags[k] = v
}

// csvSession reads a row's session columns; key errors never echo the key.
func csvSession(addr string, get func(string) string) (*Session, error) {
	s := &Session{MACVersion: get("mac_version")}
	var errs []error
	if err := s.DevAddr.UnmarshalText([]byte(addr)); err != nil {
		errs = append(errs, err)
	}
	for _, k := range []struct {
		col string
		key *Key
	}{
		{"nwk_s_key", &s.NwkSKey}, {"s_nwk_s_int_key", &s.SNwkSIntKey}, {"f_nwk_s_int_key", &s.FNwkSIntKey},
		{"nwk_s_enc_key", &s.NwkSEncKey}, {"app_s_key", &s.AppSKey},
	} {
		if err := k.key.UnmarshalText([]byte(get(k.col))); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k.col, err))
		}
	}
	return s, errors.Join(errs...)
}
