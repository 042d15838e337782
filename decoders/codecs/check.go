package codecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// warnStateful decodes the examples twice over in one reused runtime and
// warns about each example whose output there differs from its output in
// a fresh state (which checkExample saw, and which the daemon gives every
// decode, as The Things Stack and ChirpStack do): the codec keeps state
// between calls, so its author may have tested it in a way that no
// network server runs it.
func warnStateful(c *script.Codec, examples []example, stdout io.Writer) {
	if len(examples) == 0 {
		return
	}
	ins := make([]decoders.Input, 0, 2*len(examples))
	for _, ex := range examples {
		ins = append(ins, ex.in)
	}
	ins = append(ins, ins...)
	outs, errs := c.RunReused(ins)
	for i, ex := range examples {
		fresh := runOutcome(c.Run(ex.in))
		for _, k := range []int{i, len(examples) + i} {
			if reused := runOutcome(outs[k], errs[k]); reused != fresh {
				fmt.Fprintf(stdout, "  WARN  %d %s: codec %s keeps state between calls: decoded after %d other decodes in the same runtime it gives %s, in a fresh one %s; sensorgate decodes every uplink in a fresh state, as The Things Stack and ChirpStack do\n",
					i+1, ex.name, c.File(), k, reused, fresh)
				break
			}
		}
	}
}

// runOutcome renders what Codec.Run returned for comparison and display.
func runOutcome(out script.Output, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return jsonString(map[string]any{"data": out.Data, "warnings": out.Warnings, "normalized": out.Normalized})
}

// checkExample runs one example, compared as the repositories' own test
// harnesses compare (deep equality, numbers as numbers), plus the check
// the daemon makes: normalized output must fit the catalogue.
func checkExample(c *script.Codec, ex example) error {
	out, err := c.Run(ex.in)
	if len(ex.errors) > 0 {
		var rej *script.RejectedError
		switch {
		case errors.As(err, &rej):
			if reflect.DeepEqual(rej.Messages, ex.errors) {
				return nil
			}
			return fmt.Errorf("errors %q, want %q", rej.Messages, ex.errors)
		case err != nil:
			return fmt.Errorf("want errors %q, got: %v", ex.errors, err)
		}
		return fmt.Errorf("want errors %q, got data %s", ex.errors, jsonString(out.Data))
	}
	if err != nil {
		return err
	}
	if got, want := comparableValue(out.Data), comparableValue(ex.data); !reflect.DeepEqual(got, want) {
		return fmt.Errorf("data %s, want %s", jsonString(got), jsonString(want))
	}
	if len(out.Warnings) > 0 || len(ex.warnings) > 0 {
		if !reflect.DeepEqual(out.Warnings, ex.warnings) {
			return fmt.Errorf("warnings %q, want %q", out.Warnings, ex.warnings)
		}
	}
	if ex.normalized != nil {
		got := make([]any, len(out.Normalized))
		for i, m := range out.Normalized {
			got[i] = m
		}
		if g, w := comparableValue(got), comparableValue(ex.normalized); !reflect.DeepEqual(g, w) {
			return fmt.Errorf("normalized %s, want %s", jsonString(g), jsonString(w))
		}
	}
	for _, m := range out.Normalized {
		if _, _, err := decoders.Normalize(m); err != nil {
			return fmt.Errorf("normalized output does not fit the catalogue, the daemon would reject it: %w", err)
		}
	}
	return nil
}

// comparableValue turns every number into float64, so codec output
// compares with examples decoded from YAML (ints) or JSON (floats).
func comparableValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = comparableValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = comparableValue(e)
		}
		return out
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

func jsonString(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(buf.String())
}
