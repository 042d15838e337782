package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sensorgate/sensorgate/decoders/codecs"
)

const codecsUsage = `Usage: sensorgate codecs list [-scripts DIR]
       sensorgate codecs import -to DIR [-from SRC] [-firmware VERSION] [-force] VENDOR/DEVICE...

list prints every model id a device may name, built-in ("native") or a
JavaScript codec in DIR, which replaces a built-in one of the same id.

Imports the JavaScript codecs of the named devices, one device at a time,
into DIR (the decoders.scripts folder), as DIR/<vendor>-<device>.js: the
device's model id is then "<vendor>-<device>". A running daemon picks the
files up within seconds.

SRC is a local checkout or an http(s) base URL of either
  - The Things Network device repository: vendor/<vendor>/<device>.yaml
    names a codec id per firmware version and region; the codec's
    vendor/<vendor>/<codec-id>.yaml names the .js file and its examples;
  - ChirpStack device profiles: vendors/<vendor>/devices/<device>.toml names
    the codec file in vendors/<vendor>/codecs/, whose examples are
    test_decode_<codec>.json beside it.
Only the files of the named devices are read.

Each codec is compiled and run on its bundled examples; every example is
reported PASS or FAIL. A codec is written only if all its examples pass
(a codec without examples is written, reported as untested); -force writes
it despite failures. A codec that does not compile is never written. The
command exits 1 if any device failed, even with -force.

Flags:
`

// codecsCommand implements "sensorgate codecs".
func codecsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, codecsUsage)
		return errUsage
	}
	switch args[0] {
	case "import":
		return codecsImport(ctx, args[1:], stdout, stderr)
	case "list":
		return codecsList(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, codecsUsage)
		return nil
	}
	fmt.Fprintf(stderr, "sensorgate codecs: unknown subcommand %q\n\n%s", args[0], codecsUsage)
	return errUsage
}

func codecsImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("codecs import", stderr)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), codecsUsage)
		flags.PrintDefaults()
	}
	to := flags.String("to", "", "folder to write the codecs to, the decoders.scripts folder (required)")
	from := flags.String("from", codecs.DefaultSource, "device repository: a local folder or an http(s) base URL")
	firmware := flags.String("firmware", "", "firmware version whose codec to import, when a device's versions use different codecs")
	force := flags.Bool("force", false, "write codecs even if some of their examples fail")
	timeout := flags.Duration("timeout", 30*time.Second, "time limit of each download")
	models, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	switch {
	case *to == "":
		fmt.Fprintln(stderr, "sensorgate codecs import: -to is required")
		return errUsage
	case len(models) == 0:
		fmt.Fprintln(stderr, "sensorgate codecs import: name at least one VENDOR/DEVICE")
		return errUsage
	}
	for _, m := range models {
		if _, _, err := codecs.SplitModel(m); err != nil {
			fmt.Fprintln(stderr, "sensorgate codecs import:", err)
			return errUsage
		}
	}
	src, err := codecs.OpenSource(*from, *timeout)
	if err != nil {
		return fmt.Errorf("codecs import: -from: %w", err)
	}
	im := codecs.Importer{Source: src, Dir: *to, Firmware: *firmware, Force: *force, Report: stdout}
	if err := im.Import(ctx, models); err != nil {
		return fmt.Errorf("codecs import: %w", err)
	}
	return nil
}
