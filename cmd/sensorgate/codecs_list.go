package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sensorgate/sensorgate/decoders"
)

// codecsList prints every model id a device may name: the built-in
// decoders and, with -scripts, the JavaScript codecs of that folder, which
// replace a built-in decoder of the same id as they do in the daemon.
func codecsList(args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("codecs list", stderr)
	scripts := flags.String("scripts", "", "folder of JavaScript codecs, one <model-id>.js per model (as decoders.scripts)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "sensorgate codecs list: unexpected argument %q\n", flags.Arg(0))
		return errUsage
	}
	kinds := map[string]string{}
	for _, m := range decoders.NewRegistry().Models() {
		kinds[m] = "native"
	}
	if *scripts != "" {
		if _, err := os.Stat(*scripts); err != nil {
			return fmt.Errorf("codecs list: the scripts folder: %w", err)
		}
		files, err := filepath.Glob(filepath.Join(*scripts, "*.js"))
		if err != nil {
			return fmt.Errorf("codecs list: the scripts folder: %w", err)
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
	models := make([]string, 0, len(kinds))
	for m := range kinds {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		fmt.Fprintf(stdout, "%s\t%s\n", m, kinds[m])
	}
	return nil
}
