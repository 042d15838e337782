package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
	"github.com/sensorgate/sensorgate/gateways"
)

var (
	logLevels      = []string{"debug", "info", "warn", "error"}
	logFormats     = []string{"console", "json"}
	sourceTypes    = []string{SourceMQTT, SourceSemtechUDP, SourceHTTP}
	feedFormats    = []string{mqtt.FormatChirpStackV4, mqtt.FormatChirpStackV3, mqtt.FormatTTSV3, mqtt.FormatJSON, mqtt.FormatGatewayBridge}
	unknownDevices = []string{mqtt.UnknownAccept, mqtt.UnknownReject}
	// frameUnknown is unknown_devices of raw frames: they carry no device
	// name to accept an unknown device with.
	frameUnknown = []string{lorawan.UnknownDrop, lorawan.UnknownReject}
	fcntResets   = []string{lorawan.FCntResetReject, lorawan.FCntResetAcceptLow}
	timeFormats  = []string{mqtt.TimeRFC3339, mqtt.TimeUnix, mqtt.TimeUnixMS, mqtt.TimeUnixNS}
	// brokerSchemes are those the paho client dials.
	brokerSchemes = []string{"tcp", "mqtt", "ssl", "tls", "tcps", "mqtts", "ws", "wss"}
	// pointTags are written by sensorgate on every point (ARCHITECTURE §5); a
	// device tag of the same name would overwrite them.
	pointTags = []string{"device", "dev_eui", "model", "source", "channel"}
)

// Validate checks a Config built in code (call SetDefaults first) and
// returns every problem as *Problems, without line numbers. Load and Parse
// run the same checks with lines.
func (c *Config) Validate() error {
	p := newCollector(nil)
	c.check(p)
	return p.err("")
}

// check runs every rule. Each rule names the path it is about; the
// collector finds the line.
func (c *Config) check(p *collector) {
	oneOf(p, "log.level", c.Log.Level, logLevels, "log level")
	oneOf(p, "log.format", c.Log.Format, logFormats, "log format")
	checkListen(p, "http.listen", c.HTTP.Listen)
	c.checkHTTP(p)
	if c.StateDir == "" {
		p.add("state_dir", "missing: give a directory for the spool and dead letters, e.g. %s", defaultStateDir)
	}
	c.checkSources(p)
	c.checkInflux(p)
	c.checkSpool(p)
	if dl := c.DeadLetters.MaxBytes; dl < deadletter.MinMaxBytes {
		p.add("deadletters.max_bytes", "%d: give the most bytes dead letters may hold on disk, at least %d (1 MiB); default %d (256 MiB)", dl, int64(deadletter.MinMaxBytes), int64(deadletter.DefaultMaxBytes))
	}
	c.checkDevices(p)
	c.checkGateways(p)
	c.checkRegistry(p)
	positive(p, "decoders.timeout", c.Decoders.Timeout, defaultDecoderTimeout)
	c.checkSandbox(p)
}

// checkSandbox checks the codec sandbox's keys.
func (c *Config) checkSandbox(p *collector) {
	d := &c.Decoders
	oneOf(p, "decoders.sandbox", d.Sandbox, []string{SandboxWorkers, SandboxInProcess}, "codec sandbox")
	if d.Workers < 0 {
		p.add("decoders.workers", "%d is negative: give the number of codec worker processes, or remove the key for one per CPU", d.Workers)
	}
	positive(p, "decoders.worker_timeout", d.WorkerTimeout, defaultWorkerTimeout)
	if d.WorkerTimeout > 0 && d.Timeout > 0 && d.WorkerTimeout <= 2*d.Timeout {
		// decodeUplink and normalizeUplink each get decoders.timeout in
		// the worker; the kill is for what that cannot stop.
		p.add("decoders.worker_timeout", "%s is not more than twice decoders.timeout (%s): a slow but working codec would get its worker killed; raise it above %s", d.WorkerTimeout, d.Timeout, 2*d.Timeout)
	}
	switch {
	case d.WorkerMemory < 0:
		p.add("decoders.worker_memory", "%d is negative: give the bytes a codec worker may allocate, e.g. %d (32 MiB)", d.WorkerMemory, defaultWorkerMemory)
	case d.WorkerMemory < 4<<20:
		p.add("decoders.worker_memory", "%d bytes is too little for the JavaScript engine: give at least 4194304 (4 MiB), e.g. %d (32 MiB)", d.WorkerMemory, defaultWorkerMemory)
	}
	if d.MaxOutput < 4<<10 {
		p.add("decoders.max_output", "%d bytes is too little for any decoded uplink: give at least 4096, e.g. %d (256 KiB)", d.MaxOutput, defaultMaxOutput)
	}
	for i, m := range d.DecodedAll {
		if strings.TrimSpace(m) == "" {
			p.add(fmt.Sprintf("decoders.decoded_all[%d]", i), "is empty: give a model id (sensorgate codecs list), or remove the entry")
		}
	}
}

func checkBroker(p *collector, path, broker string) {
	if broker == "" {
		p.add(path, "missing: give the broker's URL, e.g. tcp://127.0.0.1:1883")
		return
	}
	u, err := url.Parse(broker)
	if err != nil || u.Host == "" {
		p.add(path, "%q is not a broker URL: write scheme://host:port, e.g. tcp://127.0.0.1:1883", mqtt.RedactBroker(broker))
		return
	}
	if u.User != nil {
		// The broker URL is logged on every connect; credentials belong
		// in keys of their own, which are not.
		p.add(path, "%q carries credentials: remove user:password@ and set the source's username and password keys instead", u.Redacted())
	}
	if !slices.Contains(brokerSchemes, u.Scheme) {
		p.add(path, "scheme %q is not an MQTT transport: use %s", u.Scheme, orList(brokerSchemes))
		return
	}
	if u.Port() == "" {
		p.add(path, "%q has no port: add it, e.g. :1883 (tcp) or :8883 (ssl)", u.Redacted())
		return
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		p.add(path, "port %q is not a TCP port: use 1 to 65535", u.Port())
	}
}

// checkTopics checks MQTT topic filters: '+' and '#' stand for whole
// levels, and '#' only at the end, or the broker refuses the subscription.
func checkTopics(p *collector, path string, topics []string) {
	if len(topics) == 0 {
		p.add(path, "missing: list at least one topic filter, e.g. [\"application/+/device/+/event/up\"]")
		return
	}
	for j, t := range topics {
		tp := fmt.Sprintf("%s[%d]", path, j)
		if msg := topicFilterProblem(t); msg != "" {
			p.add(tp, "%q %s", t, msg)
		}
	}
}

func topicFilterProblem(t string) string {
	if t == "" {
		return "is empty: write a topic filter"
	}
	if strings.ContainsRune(t, 0) {
		return "contains a NUL character"
	}
	levels := strings.Split(t, "/")
	for k, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || k != len(levels)-1) {
			return "is not a topic filter: # must be a whole level and the last one, as in a/b/#"
		}
		if strings.Contains(l, "+") && l != "+" {
			return "is not a topic filter: + must be a whole level, as in a/+/c"
		}
	}
	return ""
}

func checkMap(p *collector, path string, maps []decoders.Mapping) {
	quantities := map[string]int{}
	for j, m := range maps {
		mp := fmt.Sprintf("%s[%d]", path, j)
		if m.Key == "" {
			p.add(mp+".key", "missing: name the key of the decoded object, e.g. temperature or data.temp")
		} else if msg := jsonPathProblem(m.Key); msg != "" {
			p.add(mp+".key", "%q %s", m.Key, msg)
		}
		if m.Quantity == "" {
			p.add(mp+".quantity", "missing: name a catalogue quantity, e.g. air.temperature")
			continue
		}
		q, ok := decoders.LookupQuantity(m.Quantity)
		if !ok {
			p.add(mp+".quantity", "%q is not a catalogue quantity: %s", m.Quantity, quantityHint(m.Quantity))
			continue
		}
		if k, dup := quantities[m.Quantity]; dup {
			p.add(mp+".quantity", "%q is also mapped by %s[%d]: map each quantity from one key", m.Quantity, path, k)
		} else {
			quantities[m.Quantity] = j
		}
		switch {
		case math.IsNaN(m.Scale) || math.IsInf(m.Scale, 0):
			p.add(mp+".scale", "%v is not a usable factor: give a finite number (0 or omitted means 1)", m.Scale)
		case m.Scale != 0 && q.Kind != decoders.Number:
			p.add(mp+".scale", "%s is a %s quantity: scale applies to numbers only; remove it", q.Path, q.Kind)
		}
	}
}

// quantityHint suggests the quantity the operator probably meant.
func quantityHint(name string) string {
	var paths []string
	for _, q := range decoders.Catalogue() {
		paths = append(paths, q.Path)
	}
	if near := closest(name, paths); near != "" {
		return fmt.Sprintf("did you mean %s?", near)
	}
	// "laeq" for sound.laeq, "air.temp" for air.temperature.
	var near []string
	for _, path := range paths {
		if strings.HasSuffix(path, "."+name) || strings.HasPrefix(path, name) {
			near = append(near, path)
		}
	}
	if len(near) > 0 && len(near) <= 4 {
		return fmt.Sprintf("did you mean %s?", orList(near))
	}
	return "see the catalogue in decoders/catalogue.go (e.g. air.temperature, sound.laeq, level.fill)"
}

// checkJSON checks the json section: required for the generic JSON format,
// meaningless for the others.
func checkJSON(p *collector, sp string, s *mqtt.Config) {
	j := s.JSON
	jp := sp + ".json"
	if s.Format != mqtt.FormatJSON {
		if j != (mqtt.JSONConfig{}) && slices.Contains(feedFormats, s.Format) {
			p.add(jp, "applies to format json only; the %s feed names its devices and times itself: remove it", s.Format)
		}
		return
	}
	switch {
	case j.DeviceID == "":
		p.add(jp+".device_id", "missing: say where a message names its device: topic:N (Nth topic level, from 0) or a JSON path such as deviceId")
	case strings.HasPrefix(j.DeviceID, "topic:"):
		checkTopicLevel(p, jp+".device_id", j.DeviceID, s.Topics)
	default:
		if msg := jsonPathProblem(j.DeviceID); msg != "" {
			p.add(jp+".device_id", "%q %s, or topic:N for the Nth topic level", j.DeviceID, msg)
		}
	}
	if j.Time != "" {
		if msg := jsonPathProblem(j.Time); msg != "" {
			p.add(jp+".time", "%q %s", j.Time, msg)
		}
	}
	if j.TimeFormat != "" {
		if j.Time == "" {
			p.add(jp+".time_format", "set without json.time: say where the time is, or remove time_format")
		} else {
			oneOf(p, jp+".time_format", j.TimeFormat, timeFormats, "time format")
		}
	}
	if j.Object != "" {
		if msg := jsonPathProblem(j.Object); msg != "" {
			p.add(jp+".object", "%q %s", j.Object, msg)
		}
	}
}

// checkTopicLevel checks device_id: topic:N against every topic filter: the
// level must exist, and must not be fixed text (every message would name
// the same device).
func checkTopicLevel(p *collector, path, spec string, topics []string) {
	n, err := strconv.Atoi(strings.TrimPrefix(spec, "topic:"))
	if err != nil || n < 0 {
		p.add(path, "%q is not topic:N: N is the topic level from 0, e.g. topic:2 for sensors/park/DEVICE", spec)
		return
	}
	for _, t := range topics {
		levels := strings.Split(t, "/")
		hash := slices.Index(levels, "#")
		switch {
		case hash >= 0 && hash <= n:
			// The level falls under #: any depth may hold it.
		case n >= len(levels):
			p.add(path, "%s is past the end of topic %q (levels 0 to %d): use the + level that names the device", spec, t, len(levels)-1)
			return
		case levels[n] != "+":
			p.add(path, "%s is %q in topic %q, the same for every message: use the level with + that names the device", spec, levels[n], t)
			return
		}
	}
}

// jsonPathProblem checks a dotted path into a JSON object.
func jsonPathProblem(s string) string {
	for _, seg := range strings.Split(s, ".") {
		if seg == "" || strings.ContainsAny(seg, " \t\r\n") {
			return "is not a JSON path: write keys joined by dots, e.g. data.temperature"
		}
	}
	return ""
}

func (c *Config) checkSpool(p *collector) {
	sp := &c.Spool
	if sp.Fsync != spool.FsyncAlways {
		if d, err := time.ParseDuration(sp.Fsync); err != nil || d <= 0 {
			p.add("spool.fsync", "%q: write always (the default: nothing acknowledged is lost in a power cut) or an interval like 1s (SD cards; a power cut loses up to that interval)", sp.Fsync)
		}
	}
	if sp.MaxBytes <= 0 {
		p.add("spool.max_bytes", "%d: give the most bytes the spool may hold on disk, e.g. %d (1 GiB, the default)", sp.MaxBytes, int64(spool.DefaultMaxBytes))
	}
	if sp.SegmentBytes != 0 && (sp.SegmentBytes < spool.MinSegmentBytes || sp.SegmentBytes > spool.MaxSegmentBytes) {
		p.add("spool.segment_bytes", "%d is outside %d..%d: leave it out for the default", sp.SegmentBytes, spool.MinSegmentBytes, spool.MaxSegmentBytes)
	}
	if err := sp.Validate(); err != nil && len(p.list) == 0 {
		// What the spool checks beyond the rules above (segment size
		// against max_bytes).
		p.add("spool", "%v", err)
	}
}

func (c *Config) checkInflux(p *collector) {
	in := &c.Influx
	switch u, err := url.Parse(in.URL); {
	case in.URL == "":
		p.add("influx.url", "missing: give InfluxDB's URL, e.g. http://127.0.0.1:8086")
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		p.add("influx.url", "%q is not an InfluxDB URL: write http://host:port or https://host:port", in.URL)
	case u.User != nil:
		p.add("influx.url", "%q carries credentials: put them in influx.token instead", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		p.add("influx.url", "%q has a query or fragment: the write API adds its own; remove it", in.URL)
	}
	switch in.Version {
	case 0, influx.V2:
		if in.Bucket == "" {
			p.add("influx.bucket", "missing: name the bucket to write to (database/retention-policy on InfluxDB 1.8, e.g. sensors/autogen)")
		}
		for _, k := range []struct{ key, v string }{{"database", in.Database}, {"retention_policy", in.RetentionPolicy}, {"username", in.Username}, {"password", in.Password}} {
			if k.v != "" {
				p.add("influx."+k.key, "is a version 1 key, but influx.version is 2 (the default): set version: 1 to write through InfluxDB 1.x's /write, or use bucket and token")
			}
		}
	case influx.V1:
		if in.Database == "" {
			p.add("influx.database", "missing: version 1 writes to a database; name it, e.g. sensors")
		}
		for _, k := range []struct{ key, v string }{{"org", in.Org}, {"bucket", in.Bucket}, {"token", in.Token}} {
			if k.v != "" {
				p.add("influx."+k.key, "is a version 2 key, but influx.version is 1: use database, retention_policy, username and password")
			}
		}
		if in.Password != "" && in.Username == "" {
			p.add("influx.password", "set without username: set influx.username")
		}
	default:
		p.add("influx.version", "%d is not a write API version: use 1 (InfluxDB 1.x /write) or 2 (/api/v2/write, the default; InfluxDB 2.x, 3.x and 1.8+)", in.Version)
	}
	atLeastOne(p, "influx.batch_size", in.BatchSize, influx.DefaultBatchSize)
	if in.BatchBytes < influx.MinBatchBytes || in.BatchBytes > influx.MaxBatchBytes || p.tree.isFloat("influx.batch_bytes") {
		p.add("influx.batch_bytes", "%s: must be a whole number of bytes from %d to %d (default %d)",
			p.tree.text("influx.batch_bytes", strconv.Itoa(in.BatchBytes)), influx.MinBatchBytes, influx.MaxBatchBytes, influx.DefaultBatchBytes)
	}
	positive(p, "influx.flush_interval", in.FlushInterval, influx.DefaultFlushInterval)
	positive(p, "influx.timeout", in.Timeout, influx.DefaultTimeout)
	if !influx.ValidGzip(in.Gzip) {
		p.add("influx.gzip", "%q is not auto, always or never: auto (the default) compresses unless InfluxDB is on this machine", in.Gzip)
	}
	atLeastOne(p, "influx.max_in_flight", in.MaxInFlight, influx.DefaultMaxInFlight)
	checkTLS(p, "influx.tls", in.TLS, in.URL, "InfluxDB: write https://host:8086")
}

// checkTLS checks a tls block: both halves of a client certificate, files
// that exist, and a URL whose scheme uses them (a tls block beside a plain
// URL would be silently ignored). howTo says how to write a TLS URL.
func checkTLS(p *collector, path string, t tlsconfig.Config, rawURL, howTo string) {
	if t.IsZero() {
		return
	}
	if u, err := url.Parse(rawURL); err == nil && u.Scheme != "" && !tlsconfig.Scheme(u.Scheme) {
		p.add(path, "set, but %q does not use TLS, so it would be ignored; for %s, or remove tls", u.Redacted(), howTo)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			p.add(path+".cert_file", "missing: a client certificate needs both cert_file and key_file (PEM), or neither")
		} else {
			p.add(path+".key_file", "missing: a client certificate needs both cert_file and key_file (PEM), or neither")
		}
	}
	for _, f := range []struct{ key, name string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.name == "" {
			continue
		}
		if _, err := os.Stat(f.name); err != nil {
			p.add(path+"."+f.key, "%v: give the path of a PEM file the daemon can read", err)
		}
	}
}

func (c *Config) checkHTTP(p *collector) {
	h := &c.HTTP
	// Empty is fine: the daemon then generates a token into state_dir.
	// A token with a space or a line break (a paste, $(cat file)) is
	// refused here rather than trimmed, so that what the file says is
	// exactly what clients must send (httpapi.CheckToken is the same rule).
	for i := 0; i < len(h.Token); i++ {
		if c := h.Token[i]; c <= ' ' || c >= 0x7f {
			p.add("http.token", "has a space, a line break, a control or a non-ASCII character at byte %d: use visible ASCII only, e.g. the output of openssl rand -hex 32 (tokens are compared exactly)", i)
			break
		}
	}
	for i, name := range h.AllowedHosts {
		checkAllowedHost(p, fmt.Sprintf("http.allowed_hosts[%d]", i), name)
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		path := "http.tls_key"
		if h.TLSCert == "" {
			path = "http.tls_cert"
		}
		p.add(path, "missing: HTTPS needs both tls_cert and tls_key (PEM files), or neither for plain HTTP")
	}
	atLeastOne(p, "http.max_body_bytes", h.MaxBodyBytes, defaultMaxBodyBytes)
	atLeastOne(p, "http.max_import_bytes", h.MaxImportBytes, defaultMaxImportBytes)
}

// checkAllowedHost checks a name of http.allowed_hosts: a host name or
// an IP address as a browser writes it in Host, without scheme or port.
func checkAllowedHost(p *collector, path, name string) {
	const hint = "write a host name or address as clients type it, e.g. sensors.example.org or 192.168.1.20"
	switch {
	case name == "":
		p.add(path, "is empty: %s", hint)
		return
	case strings.Contains(name, "*"):
		p.add(path, "%q: wildcards are not supported: list each name", name)
		return
	case strings.Contains(name, "://") || strings.Contains(name, "/"):
		p.add(path, "%q is a URL: %s", name, hint)
		return
	}
	if net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")) != nil {
		return
	}
	if _, port, err := net.SplitHostPort(name); err == nil {
		p.add(path, "%q has a port (%s): leave it out; ports are not compared", name, port)
		return
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || !isSlug(label) {
			p.add(path, "%q is not a host name: %s", name, hint)
			return
		}
	}
}

func (c *Config) checkDevices(p *collector) {
	positive(p, "devices.health_interval", c.Devices.HealthInterval, defaultHealthInterval)
	positive(p, "devices.state_save_interval", c.Devices.StateSaveInterval, defaultStateSaveInterval)
	positive(p, "registry.health_sync_interval", c.Registry.HealthSyncInterval, DefaultHealthSyncInterval)
	atLeastOne(p, "devices.max_unknown", c.Devices.MaxUnknown, defaultMaxUnknown)
	atLeastOne(p, "devices.unknown_max_series", c.Devices.UnknownMaxSeries, defaultUnknownMaxSeries)
	atLeastOne(p, "devices.unknown_series_per_minute", c.Devices.UnknownSeriesPerMinute, defaultUnknownSeriesPerMinute)
	if f := c.Devices.SilentFactor; f < 1 || math.IsNaN(f) || math.IsInf(f, 0) {
		p.add("devices.silent_factor", "%v: give a number of at least 1 (default %d): below 1 every device would count as silent", f, defaultSilentFactor)
	}
	if c.Devices.Import != "" {
		switch strings.ToLower(filepath.Ext(c.Devices.Import)) {
		case ".csv", ".yaml", ".yml":
		default:
			p.add("devices.import", "%q is neither CSV nor YAML: name the file .csv, .yaml or .yml", c.Devices.Import)
		}
	}
	checkTagKeys(p, "devices.tags", "device", c.Devices.Tags, pointTags)
}

// checkTagKeys checks a list of tag keys written onto points (what is
// "device" or "gateway"); reserved are the keys sensorgate writes itself.
func checkTagKeys(p *collector, path, what string, tags, reserved []string) {
	seen := map[string]int{}
	for i, tag := range tags {
		tp := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case tag == "":
			p.add(tp, "is empty: name a %s tag key, e.g. site", what)
		case slices.Contains(reserved, tag):
			p.add(tp, "%q is written by sensorgate itself on every %s point: choose another tag key", tag, what)
		case strings.HasPrefix(tag, "_"):
			p.add(tp, "%q: InfluxDB reserves keys starting with _: rename the tag", tag)
		case !isSlug(tag):
			p.add(tp, "%q: use letters, digits, '-', '_' and '.' only", tag)
		default:
			if j, dup := seen[tag]; dup {
				p.add(tp, "%q is already listed as %s[%d]: remove one", tag, path, j)
			} else {
				seen[tag] = i
			}
		}
	}
}

func oneOf(p *collector, path, v string, allowed []string, what string) {
	if !slices.Contains(allowed, v) {
		p.add(path, "%q is not a %s: use %s", v, what, orList(allowed))
	}
}

// atLeastOne checks a count. YAML turns 2.5 into 2 without complaint, so
// a fraction in the file is reported too.
func atLeastOne(p *collector, path string, n, def int) {
	if n < 1 || p.tree.isFloat(path) {
		p.add(path, "%s: must be a whole number of at least 1 (default %d)", p.tree.text(path, strconv.Itoa(n)), def)
	}
}

func positive(p *collector, path string, d, def time.Duration) {
	switch {
	case d < 0:
		p.add(path, "%s is negative: give a duration above 0 (default %s)", d, def)
	case d == 0:
		p.add(path, "0 is not allowed: give a duration above 0, or remove the key for the default %s", def)
	}
}

func checkListen(p *collector, path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(path, "%q is not host:port: write e.g. %s, or :8080 for every interface", addr, defaultHTTPListen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add(path, "port %q is not a TCP port: use 1 to 65535", port)
	}
}

// isSlug reports whether s is a safe name for a tag value, a client id and
// a file name.
func isSlug(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isNameChar(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// orList writes "a, b, c or d".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func (c *Config) checkGateways(p *collector) {
	g := &c.Gateways
	positive(p, "gateways.stats_interval", g.StatsInterval, gateways.DefaultStatsInterval)
	atLeastOne(p, "gateways.max", g.Max, gateways.DefaultMax)
	if f := g.SilentFactor; f < 1 || math.IsNaN(f) || math.IsInf(f, 0) {
		p.add("gateways.silent_factor", "%v: give a number of at least 1 (default %d): below 1 every gateway would count as silent", f, gateways.DefaultSilentFactor)
	}
	checkTagKeys(p, "gateways.tags", "gateway", g.Tags, []string{"gateway_id", "source"})
}
