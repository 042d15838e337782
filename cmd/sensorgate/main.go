// Command sensorgate is the edge daemon: it takes uplinks from MQTT feeds,
// decodes them and writes normalized points to InfluxDB.
//
// Subcommands: run, validate, simulate, decode, codecs, version. It is the only package
// that imports config and wires the adapters together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/sensorgate/sensorgate/decoders/sandbox"
	"github.com/sensorgate/sensorgate/gateway"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `sensorgate: MQTT and LoRaWAN sensor feeds to normalized InfluxDB time series

Usage:
  sensorgate run -c FILE        run the daemon
  sensorgate validate -c FILE   check a config file; print every problem with its line
  sensorgate simulate [flags]   publish realistic uplinks to a broker (demos, load)
  sensorgate decode (--model NAME | --codec FILE) [--fport N] (--hex H | --base64 B)
                                decode one payload as the daemon would; print JSON
                                {data, normalized, warnings, errors}; --batch: JSON lines
  sensorgate codecs list [-scripts DIR]
                                every model id: built-in decoders and JavaScript codecs
  sensorgate codecs import -to DIR [-from SRC] VENDOR/DEVICE...
                                import device codecs (TTN device repository or ChirpStack
                                device profiles layout) and self-test their examples
  sensorgate devices list|import|export [-c FILE] ...
                                the device registry, as the HTTP API: bulk CSV/YAML
                                import (all or nothing, -dry-run), export, list
  sensorgate deadletters list|replay [-c FILE] [-reason R] [-since T] ...
                                messages that could not become points; replay them
                                through the current pipeline after a fix
  sensorgate backfill [-c FILE] --source S --since T [--until T]
                                fetch uplinks the network server kept (The Things Stack
                                Storage Integration) and write them as the feed would have
  sensorgate backfill [-c FILE] --chirpstack-pg DSN --since T [--until T] [--application ID]
                                write the uplinks ChirpStack's PostgreSQL integration kept
                                while sensorgate did not receive them (same points as live)
  sensorgate redecode [-c FILE] --since T [--until T] [--device EUI ... | --model M | --source S]
                    [--model-override M] [--dry-run]
                                decode stored uplinks again after a decoder fix: replace
                                their decoded points in InfluxDB (--dry-run: print the diff)
  sensorgate healthcheck [-c FILE] [-addr HOST:PORT]
                                exit 0 if the daemon answers GET /healthz, else 1
  sensorgate version            print the version

Run 'sensorgate COMMAND -h' for a command's flags.
`

func main() {
	if sandbox.IsWorker() {
		// Re-executed by the daemon to run JavaScript codecs
		// (decoders/sandbox): nothing else of the daemon starts.
		os.Exit(sandbox.ServeWorker())
	}
	if os.Getenv(pprofEnv) == "" {
		// No heap profiles without the profiling endpoint: sampling one
		// allocation per 512 KB costs a stack walk each, and the
		// profile's tables ~1.5 MB of resident memory in a daemon
		// that aims at 40 MB. Set first, before anything is allocated.
		runtime.MemProfileRate = 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs one subcommand and returns the process exit code: 0 success,
// 1 failure, 2 usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runCommand(ctx, args[1:], stderr)
	case "validate":
		err = validateCommand(args[1:], stdout, stderr)
	case "simulate":
		err = simulateCommand(ctx, args[1:], stdout, stderr)
	case "decode":
		err = decodeCommand(args[1:], os.Stdin, stdout, stderr)
	case "codecs":
		err = codecsCommand(ctx, args[1:], stdout, stderr)
	case "devices":
		err = devicesCommand(ctx, args[1:], stdout, stderr)
	case "deadletters":
		err = deadlettersCommand(ctx, args[1:], stdout, stderr)
	case "backfill":
		err = backfillCommand(ctx, args[1:], stdout, stderr)
	case "redecode":
		err = redecodeCommand(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		err = healthcheckCommand(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "sensorgate %s (InfluxDB schema %d)\n", version, gateway.SchemaVersion)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "sensorgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "sensorgate:", err)
	return 1
}

var errUsage = errors.New("usage error")

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sensorgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// configFlag parses the flags of a command whose only flag is -c, the
// config file, and returns its path.
func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	fs := newFlagSet(name, stderr)
	path := fs.String("c", "/etc/sensorgate/sensorgate.yaml", "config file")
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	return *path, nil
}

// subcommand splits the arguments of a command with subcommands ("name
// sub flags…") and returns the subcommand's flag set, with -c (the config
// file) on it. With no subcommand, or -h, it prints usage and returns no
// flag set, and errUsage when there was no subcommand.
func subcommand(name, usage string, args []string, stderr io.Writer) (sub string, rest []string, fs *flag.FlagSet, path *string, err error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return "", nil, nil, nil, errUsage
		}
		return "", nil, nil, nil, nil
	}
	fs = newFlagSet(name+" "+args[0], stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	path = fs.String("c", "/etc/sensorgate/sensorgate.yaml", "config file")
	return args[0], args[1:], fs, path, nil
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}
