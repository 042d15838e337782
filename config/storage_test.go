package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/gateway/ttsstorage"
)

// ttsBase is a minimal valid file with one tts-v3 source.
const ttsBase = `influx:
  url: http://127.0.0.1:8086
  bucket: sensors
sources:
  - name: tts
    type: mqtt
    format: tts-v3
    broker: ssl://eu1.cloud.thethings.network:8883
    topics: ["v3/city@ttn/devices/+/up"]
    qos: 0
`

const secretKey = "NNSXS.KEYIDFORTESTS.THESECRETPARTOFTHEKEY"

// TestStorageSettings: the storage key of a tts-v3 source, ${ENV}
// expanded, defaults filled, and where it is wrong each problem at its key.
func TestStorageSettings(t *testing.T) {
	good := ttsBase + `    storage:
      url: https://eu1.cloud.thethings.network
      api_key: "${TTS_STORAGE_KEY}"
      application_id: city
`
	cfg, err := parseString(good, map[string]string{"TTS_STORAGE_KEY": secretKey})
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Sources[0].Storage
	if st == nil || st.APIKey.Secret() != secretKey || st.ApplicationID != "city" || st.PageSize != ttsstorage.DefaultPageSize ||
		st.RequestInterval != time.Second || st.Timeout != 30*time.Second || st.Delay != 10*time.Second {
		t.Fatalf("storage %+v", st)
	}

	tests := []struct {
		name, src string
		path, msg string
	}{
		{"no api key", ttsBase + "    storage: {url: https://x.example, application_id: city}\n", "sources[0].storage.api_key", "required"},
		{"no url", ttsBase + "    storage: {api_key: k, application_id: city}\n", "sources[0].storage.url", "required"},
		{"url with credentials", ttsBase + "    storage: {url: \"https://u:p@x.example\", api_key: k, application_id: city}\n", "sources[0].storage.url", "credentials"},
		{"tenant in the id", ttsBase + "    storage: {url: https://x.example, api_key: k, application_id: city@ttn}\n", "sources[0].storage.application_id", "without @tenant"},
		{"page too large", ttsBase + "    storage: {url: https://x.example, api_key: k, application_id: city, page_size: 5000}\n", "sources[0].storage.page_size", "1 to 1000"},
		{"unknown key", ttsBase + "    storage: {url: https://x.example, api_key: k, application_id: city, limit: 5}\n", "sources[0].storage.limit", "unknown"},
		{"qos 1", strings.Replace(ttsBase, "qos: 0", "qos: 1", 1) + "    storage: {url: https://x.example, api_key: k, application_id: city}\n", "sources[0].storage", "qos: 0"},
		{"not a tts source", base + "    storage: {url: https://x.example, api_key: k, application_id: city}\n", "sources[0].storage", "format tts-v3"},
		{"a masked key", ttsBase + "    storage: {url: https://x.example, api_key: \"NNSXS.ABC.***\", application_id: city}\n", "sources[0].storage.api_key", "masked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(tc.src, nil)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			found := false
			for _, p := range problemsOf(t, err) {
				if p.Path == tc.path && strings.Contains(p.Msg, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("problems %v: want %s: …%s…", err, tc.path, tc.msg)
			}
		})
	}
}

// TestStorageKeyMasked: every text form of a loaded config shows the API
// key's id at most, never its secret; a literal key in a readable file is
// warned about.
func TestStorageKeyMasked(t *testing.T) {
	src := ttsBase + "    storage: {url: https://x.example, api_key: " + secretKey + ", application_id: city}\n"
	cfg, err := parseString(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Sources[0].Storage
	y, _ := yaml.Marshal(cfg)
	j, _ := json.Marshal(st)
	for what, text := range map[string]string{
		"yaml": string(y), "json": string(j),
		"%v": fmt.Sprintf("%v", *st), "%+v": fmt.Sprintf("%+v", st), "%#v": fmt.Sprintf("%#v", st), "%s": fmt.Sprintf("%s", st.APIKey),
	} {
		if strings.Contains(text, "THESECRETPART") {
			t.Errorf("%s shows the key: %s", what, text)
		}
		if !strings.Contains(text, "NNSXS.KEYIDFORTESTS.***") {
			t.Errorf("%s does not name the key by its id: %s", what, text)
		}
	}
	path := filepath.Join(t.TempDir(), "sensorgate.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := FileWarnings(path); len(w) != 1 || !strings.Contains(w[0], "sources[0].storage.api_key") {
		t.Errorf("warnings %q: want one naming sources[0].storage.api_key", w)
	}
}
