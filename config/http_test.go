package config

import (
	"testing"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
)

// The defaults config documents are the ones the packages apply when a
// Config is built in code.
func TestHTTPAndHealthDefaults(t *testing.T) {
	if defaultMaxBodyBytes != httpapi.DefaultMaxBodyBytes {
		t.Errorf("http.max_body_bytes default %d, httpapi's %d: keep them equal", defaultMaxBodyBytes, httpapi.DefaultMaxBodyBytes)
	}
	if defaultMaxImportBytes != httpapi.DefaultMaxImportBytes {
		t.Errorf("http.max_import_bytes default %d, httpapi's %d: keep them equal", defaultMaxImportBytes, httpapi.DefaultMaxImportBytes)
	}
	if defaultSilentFactor != devices.DefaultSilentFactor {
		t.Errorf("devices.silent_factor default %d, devices' %d: keep them equal", defaultSilentFactor, devices.DefaultSilentFactor)
	}
	if defaultMaxUnknown != devices.DefaultMaxUnknown || defaultUnknownMaxSeries != devices.DefaultUnknownMaxSeries ||
		defaultUnknownSeriesPerMinute != devices.DefaultUnknownSeriesPerMinute {
		t.Errorf("devices.max_unknown, unknown_max_series, unknown_series_per_minute defaults %d, %d, %d; devices' %d, %d, %d: keep them equal",
			defaultMaxUnknown, defaultUnknownMaxSeries, defaultUnknownSeriesPerMinute,
			devices.DefaultMaxUnknown, devices.DefaultUnknownMaxSeries, devices.DefaultUnknownSeriesPerMinute)
	}
	var c Config
	c.SetDefaults()
	if c.HTTP.MaxBodyBytes != defaultMaxBodyBytes || c.Devices.HealthInterval != defaultHealthInterval || c.Devices.SilentFactor != defaultSilentFactor {
		t.Errorf("SetDefaults: %+v %+v", c.HTTP, c.Devices)
	}
}

// http.token is checked by the rule the API applies to it, so a token that
// validates is one the daemon starts with.
func TestTokenRuleIsTheAPIs(t *testing.T) {
	for _, tok := range []string{"s3cret-token", "Zm9v+/=~!#$%&'*", " lead", "trail ", "trail\n", "in side", "tab\t", "ctl\x01", "del\x7f", "grüße"} {
		c := Config{HTTP: HTTPConfig{Token: tok}}
		c.SetDefaults()
		p := newCollector(nil)
		c.checkHTTP(p)
		configOK := len(p.list) == 0
		if apiOK := httpapi.CheckToken(tok) == nil; configOK != apiOK {
			t.Errorf("token %q: config accepts %v, httpapi accepts %v", tok, configOK, apiOK)
		}
	}
}
