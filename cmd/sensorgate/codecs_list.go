package main

import (
	"fmt"
	"io"

	"github.com/sensorgate/sensorgate/decoders/codecs"
)

// codecsList prints every model id a device may name (codecs.List).
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
	models, err := codecs.List(*scripts)
	if err != nil {
		return fmt.Errorf("codecs list: %w", err)
	}
	for _, m := range models {
		fmt.Fprintf(stdout, "%s\t%s\n", m.ID, m.Kind)
	}
	return nil
}
