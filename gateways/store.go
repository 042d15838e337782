package gateways

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/devices"
)

// Limits of an operator's gateway entry: names and tags are labels, and
// tag values become InfluxDB tag values.
const (
	maxTags     = 32
	maxLabelLen = 128
)

// Store keeps the configured gateways: the gateways file's, with the
// changes made through the API on top. The API's changes are saved to a
// state file (the whole set of them, rewritten and renamed into place),
// so they survive a restart; an entry the API changed wins over the
// file's, and one it deleted stays deleted.
type Store struct {
	mu        sync.Mutex
	table     *Table
	file      []Gateway
	overrides map[devices.EUI]*Gateway // nil value: deleted through the API
	statePath string
}

// stateFile is the saved overrides.
type stateFile struct {
	Set     []Gateway     `yaml:"set"`
	Deleted []devices.EUI `yaml:"deleted"`
}

// Open loads the gateways file (path "" for none) and the API's saved
// changes (statePath, "" to keep them in memory only) into table.
func Open(table *Table, path, statePath string) (*Store, error) {
	s := &Store{table: table, overrides: map[devices.EUI]*Gateway{}, statePath: statePath}
	if path != "" {
		gws, err := LoadFile(path)
		if err != nil {
			return nil, err
		}
		s.file = gws
	}
	if statePath != "" {
		b, err := os.ReadFile(statePath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("gateways: read the API's saved changes: %w", err)
		default:
			var st stateFile
			if err := yaml.Unmarshal(b, &st); err != nil {
				return nil, fmt.Errorf("gateways: %s: %w: fix or remove the file (it holds changes made through the API)", statePath, err)
			}
			for _, g := range st.Set {
				g := g
				s.overrides[g.ID] = &g
			}
			for _, id := range st.Deleted {
				s.overrides[id] = nil
			}
		}
	}
	s.apply()
	return s, nil
}

// LoadFile reads a gateways file: YAML, a list of {id, name, tags} or a
// mapping with gateways: that list.
func LoadFile(path string) ([]Gateway, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateways: %w", err)
	}
	var list []Gateway
	if err := yaml.Unmarshal(b, &list); err != nil {
		var doc struct {
			Gateways []Gateway `yaml:"gateways"`
		}
		if err2 := yaml.Unmarshal(b, &doc); err2 != nil {
			return nil, fmt.Errorf("gateways: %s: want a list of {id, name, tags} or gateways: that list: %w", path, err)
		}
		list = doc.Gateways
	}
	seen := map[devices.EUI]bool{}
	for i, g := range list {
		if err := Check(g); err != nil {
			return nil, fmt.Errorf("gateways: %s: entry %d: %w", path, i+1, err)
		}
		if seen[g.ID] {
			return nil, fmt.Errorf("gateways: %s: entry %d: gateway %s is listed twice", path, i+1, g.ID)
		}
		seen[g.ID] = true
	}
	return list, nil
}

// Check says what is wrong with an entry, nil if nothing.
func Check(g Gateway) error {
	if g.ID.IsZero() {
		return errors.New("id missing: give the gateway EUI, 16 hex digits")
	}
	if err := checkLabel("name", g.Name, true); err != nil {
		return err
	}
	if len(g.Tags) > maxTags {
		return fmt.Errorf("%d tags: at most %d", len(g.Tags), maxTags)
	}
	for k, v := range g.Tags {
		if err := checkLabel("tag key", k, false); err != nil {
			return err
		}
		if err := checkLabel("tag "+k, v, false); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(what, s string, empty bool) error {
	switch {
	case s == "" && !empty:
		return fmt.Errorf("%s is empty", what)
	case len(s) > maxLabelLen:
		return fmt.Errorf("%s is %d bytes: at most %d", what, len(s), maxLabelLen)
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return fmt.Errorf("%s %q holds a control character or invalid UTF-8", what, s)
		}
	}
	return nil
}

// apply hands the file's entries with the overrides on top to the table;
// s.mu is held or s is not shared yet.
func (s *Store) apply() {
	var gws []Gateway
	for _, g := range s.file {
		if _, over := s.overrides[g.ID]; !over {
			gws = append(gws, g)
		}
	}
	for _, g := range s.overrides {
		if g != nil {
			gws = append(gws, *g)
		}
	}
	s.table.Configure(gws)
}

// Set configures a gateway through the API and saves the change.
func (s *Store) Set(g Gateway) (created bool, err error) {
	if err := Check(g); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g.Tags = cloneTags(g.Tags)
	prev, had := s.overrides[g.ID]
	s.overrides[g.ID] = &g
	if err := s.save(); err != nil {
		s.restore(g.ID, prev, had)
		return false, err
	}
	_, _, known := s.table.Lookup(g.ID)
	s.apply()
	return !known, nil
}

// Delete removes a gateway's configuration through the API and saves the
// change; ok is false when it had none.
func (s *Store) Delete(id devices.EUI) (ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, known := s.table.Lookup(id); !known {
		return false, nil
	}
	prev, had := s.overrides[id]
	s.overrides[id] = nil
	if err := s.save(); err != nil {
		s.restore(id, prev, had)
		return false, err
	}
	s.apply()
	return true, nil
}

func (s *Store) restore(id devices.EUI, prev *Gateway, had bool) {
	if had {
		s.overrides[id] = prev
	} else {
		delete(s.overrides, id)
	}
}

// save writes the overrides to the state file; s.mu is held.
func (s *Store) save() error {
	if s.statePath == "" {
		return nil
	}
	var st stateFile
	for id, g := range s.overrides {
		if g == nil {
			st.Deleted = append(st.Deleted, id)
		} else {
			st.Set = append(st.Set, *g)
		}
	}
	sort.Slice(st.Set, func(i, j int) bool { return compareEUI(st.Set[i].ID, st.Set[j].ID) < 0 })
	sort.Slice(st.Deleted, func(i, j int) bool { return compareEUI(st.Deleted[i], st.Deleted[j]) < 0 })
	b, err := yaml.Marshal(st)
	if err != nil {
		return fmt.Errorf("gateways: encode the API's changes: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.statePath), ".gateways-*")
	if err != nil {
		return fmt.Errorf("gateways: save the API's changes: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.statePath)
	}
	if err != nil {
		return fmt.Errorf("gateways: save the API's changes to %s: %w", s.statePath, err)
	}
	return nil
}
