package codecs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sensorgate/sensorgate/decoders"
)

// Model is one model id a device may name and what decodes it.
type Model struct {
	ID   string
	Kind string // "native", or "script <file>", which may add " (replaces the native decoder)"
}

// List returns every model id a device may name, sorted: the built-in
// decoders and, when scripts is not empty, the JavaScript codecs of that
// folder, which replace a built-in decoder of the same id as they do in
// the daemon.
func List(scripts string) ([]Model, error) {
	kinds := map[string]string{}
	for _, m := range decoders.NewRegistry().Models() {
		kinds[m] = "native"
	}
	if scripts != "" {
		if _, err := os.Stat(scripts); err != nil {
			return nil, fmt.Errorf("the scripts folder: %w", err)
		}
		files, err := filepath.Glob(filepath.Join(scripts, "*.js"))
		if err != nil {
			return nil, fmt.Errorf("the scripts folder: %w", err)
		}
		for _, f := range files {
			m := strings.TrimSuffix(filepath.Base(f), ".js")
			if kinds[m] == "native" {
				kinds[m] = "script " + f + " (replaces the native decoder)"
			} else {
				kinds[m] = "script " + f
			}
		}
	}
	models := make([]Model, 0, len(kinds))
	for m, k := range kinds {
		models = append(models, Model{ID: m, Kind: k})
	}
	sort.Slice(models, func(i, j int) bool { return models[i].ID < models[j].ID })
	return models, nil
}
