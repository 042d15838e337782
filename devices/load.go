package devices

import (
	"bytes"
	"encoding/csv"
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
	var devs []Device
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
func ParseYAML(b []byte) ([]Device, error) {
	var list []Device
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var node yaml.Node
	if err := dec.Decode(&node); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("devices: %w", err)
	}
	root := &node
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.MappingNode {
		var wrap struct {
			Devices []Device `yaml:"devices"`
		}
		if err := decodeStrict(root, &wrap); err != nil {
			return nil, err
		}
		return wrap.Devices, nil
	}
	if err := decodeStrict(root, &list); err != nil {
		return nil, err
	}
	return list, nil
}

func decodeStrict(n *yaml.Node, v any) error {
	// Node.Decode has no KnownFields switch; re-encode and decode strictly.
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

// ParseCSV reads devices from CSV with a header row. Columns: dev_eui
// (required), name, model, tags (key=value pairs separated by ';'), and any
// column named tag:KEY or var:KEY for a single tag or decoder variable.
// An ABP session comes from the optional columns dev_addr, mac_version,
// nwk_s_key, s_nwk_s_int_key, f_nwk_s_int_key, nwk_s_enc_key and
// app_s_key; a row with a dev_addr has a session.
// Empty lines and lines starting with '#' are skipped.
func ParseCSV(r io.Reader) ([]Device, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("devices: csv header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	if _, ok := col["dev_eui"]; !ok {
		return nil, fmt.Errorf("devices: csv header has no dev_eui column (have %s)", strings.Join(header, ","))
	}
	var devs []Device
	var errs []error
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("devices: csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		var d Device
		if d.EUI, err = ParseEUI(get("dev_eui")); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			continue
		}
		if d.EUI.IsZero() {
			errs = append(errs, fmt.Errorf("line %d: dev_eui is all zeros: give the device's real EUI", line))
			continue
		}
		d.Name, d.Model = get("name"), get("model")
		if addr := get("dev_addr"); addr != "" {
			if d.Session, err = csvSession(addr, get); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %w", line, err))
				continue
			}
		}
		if t := get("tags"); t != "" {
			for _, kv := range strings.Split(t, ";") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || strings.TrimSpace(k) == "" {
					errs = append(errs, fmt.Errorf("line %d: tag %q is not key=value", line, kv))
					continue
				}
				d.setTag(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
		for i, h := range header {
			h = strings.TrimSpace(h)
			if i >= len(rec) || rec[i] == "" {
				continue
			}
			if k, ok := strings.CutPrefix(h, "tag:"); ok {
				d.setTag(k, strings.TrimSpace(rec[i]))
			} else if k, ok := strings.CutPrefix(h, "var:"); ok {
				if d.Variables == nil {
					d.Variables = map[string]string{}
				}
				d.Variables[k] = strings.TrimSpace(rec[i])
			}
		}
		devs = append(devs, d)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("devices: csv: %w", errors.Join(errs...))
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
