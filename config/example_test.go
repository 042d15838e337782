package config

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders/sandbox"
	"github.com/sensorgate/sensorgate/decoders/script"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/webhook"
)

// exampleEnv sets every variable example.yaml references without a default.
func exampleEnv() map[string]string {
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllSubmatch(Example, -1) {
		env[string(m[1])] = "value-of-" + string(m[1])
	}
	// A connection string is checked for its form.
	if _, ok := env["PG_DSN"]; ok {
		env["PG_DSN"] = "postgres://sensorgate:value-of-password@db.example:5432/sensorgate"
	}
	return env
}

func TestDecoderTimeoutDefault(t *testing.T) {
	if defaultDecoderTimeout != script.DefaultTimeout {
		t.Errorf("decoders.timeout default %s, decoders/script's %s: keep them equal", defaultDecoderTimeout, script.DefaultTimeout)
	}
}

func TestSandboxDefaults(t *testing.T) {
	if defaultWorkerTimeout != sandbox.DefaultCallTimeout || defaultWorkerMemory != sandbox.DefaultMemoryLimit || defaultMaxOutput != sandbox.DefaultMaxOutput {
		t.Errorf("decoders worker_timeout, worker_memory, max_output defaults %v %v %v, decoders/sandbox's %v %v %v: keep them equal",
			defaultWorkerTimeout, defaultWorkerMemory, defaultMaxOutput, sandbox.DefaultCallTimeout, sandbox.DefaultMemoryLimit, sandbox.DefaultMaxOutput)
	}
	var c Config
	c.Decoders.Timeout = time.Second
	c.SetDefaults()
	if d := c.Decoders; d.Sandbox != SandboxWorkers || d.WorkerTimeout != 4*time.Second || d.WorkerMemory != defaultWorkerMemory || d.MaxOutput != defaultMaxOutput {
		t.Errorf("defaults with decoders.timeout 1s: %+v, want workers, 4s, 32 MiB, 256 KiB", d)
	}
}

func TestExampleIsValid(t *testing.T) {
	onDisk, err := os.ReadFile("example.yaml")
	if err != nil || !bytes.Equal(onDisk, Example) {
		t.Fatalf("Example is not example.yaml (%v)", err)
	}
	env := exampleEnv()
	if len(env) == 0 {
		t.Fatal("example.yaml should show ${ENV} expansion for its secrets")
	}
	cfg, err := parse(Example, "example.yaml", envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Influx.Token; got != "value-of-INFLUX_TOKEN" {
		t.Errorf("influx.token = %q, want it from INFLUX_TOKEN", got)
	}
	var formats []string
	for i, s := range cfg.Sources {
		if s.MQTT != nil {
			formats = append(formats, s.MQTT.Format)
		} else {
			formats = append(formats, s.Type)
		}
		if err := s.validateInPackage(); err != nil {
			t.Errorf("sources[%d] is valid here but not for its package: %v", i, err)
		}
	}
	if err := cfg.Influx.Validate(); err != nil {
		t.Errorf("influx is valid here but not for the influx package: %v", err)
	}
	for _, f := range []string{"chirpstack-v4", "tts-v3", "json", "gateway-bridge", "semtech-udp", "http"} {
		if !slices.Contains(formats, f) {
			t.Errorf("example.yaml has no %s source", f)
		}
	}

	// A missing variable is reported, so the test above really expands.
	delete(env, "INFLUX_TOKEN")
	if _, err := parse(Example, "example.yaml", envOf(env)); err == nil || !strings.Contains(err.Error(), "INFLUX_TOKEN is not set") {
		t.Errorf("without INFLUX_TOKEN: %v", err)
	}
}

// structKeys walks the Config type and returns every yaml key path, with
// [] for list items: sources[].json.device_id. A source's keys are those
// of every type's struct (Source decodes itself into one of them).
func structKeys(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t == reflect.TypeFor[Source]() {
		seen := map[string]bool{}
		var keys []string
		structKeys(reflect.TypeFor[mqtt.Config](), prefix, &keys)
		structKeys(reflect.TypeFor[lorawan.Config](), prefix, &keys)
		structKeys(reflect.TypeFor[webhook.Config](), prefix, &keys)
		structKeys(reflect.TypeFor[storageKeys](), prefix, &keys)
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				*out = append(*out, k)
			}
		}
		return
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" && opts == "inline" {
			structKeys(f.Type, prefix, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's rule for untagged fields
		}
		path := joinKey(prefix, name)
		*out = append(*out, path)
		structKeys(f.Type, path, out)
	}
}

// nodeKeys returns the key paths of a YAML tree in the same form.
func nodeKeys(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			nodeKeys(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := joinKey(prefix, n.Content[i].Value)
			out[path] = true
			nodeKeys(n.Content[i+1], path, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			nodeKeys(c, prefix+"[]", out)
		}
	}
}

// TestExampleDocumentsEveryKey fails when a key is added to Config, or to a
// section struct another package owns, without being shown in example.yaml
// and named in one of its comments.
func TestExampleDocumentsEveryKey(t *testing.T) {
	var keys []string
	structKeys(reflect.TypeFor[Config](), "", &keys)
	if len(keys) < 30 {
		t.Fatalf("found only %d keys: the walk is broken: %v", len(keys), keys)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(Example, &doc); err != nil {
		t.Fatal(err)
	}
	inExample := map[string]bool{}
	nodeKeys(&doc, "", inExample)

	var comments strings.Builder
	for _, line := range strings.Split(string(Example), "\n") {
		if _, c, ok := strings.Cut(line, "#"); ok {
			comments.WriteString(c + "\n")
		}
	}
	for _, k := range keys {
		if !inExample[k] {
			t.Errorf("example.yaml does not set %s: add it with a comment (meaning, default, allowed values)", k)
		}
		name := k[strings.LastIndexAny(k, ".]")+1:]
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(comments.String()) {
			t.Errorf("no comment of example.yaml explains %s", k)
		}
	}
}

// TestSchemaMatchesStructs checks that the key schema, built by encoding a
// sample Config, knows exactly the keys of the structs: an omitempty tag or
// a nested list would otherwise hide keys and make valid files fail.
func TestSchemaMatchesStructs(t *testing.T) {
	var keys []string
	structKeys(reflect.TypeFor[Config](), "", &keys)
	s, err := schema()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	nodeKeys(s, "", known)
	for _, k := range keys {
		if !known[k] {
			t.Errorf("schema lacks %s", k)
		}
		delete(known, k)
	}
	for k := range known {
		t.Errorf("schema has %s, which no struct field has", k)
	}
}
