package devices

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// BulkFormat is the format of a bulk import.
type BulkFormat string

// Bulk formats. YAML also reads JSON (a list of devices, or an object with
// a "devices" list), since JSON is YAML.
const (
	BulkCSV  BulkFormat = "csv"
	BulkYAML BulkFormat = "yaml"
)

// Import actions of a row.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
)

// Row is one device of a bulk import with its line in the file and what
// is wrong with it. A row with Problems is not imported, and neither is
// anything else of its import.
type Row struct {
	Line     int      `json:"line"`
	DevEUI   string   `json:"dev_eui"`
	Name     string   `json:"name,omitempty"`
	Action   string   `json:"action,omitempty"`
	Problems []string `json:"problems,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Device   Device   `json:"-"`
}

func (r *Row) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// ImportReport is the outcome of a bulk import, or of its dry run.
type ImportReport struct {
	DryRun    bool  `json:"dry_run"`
	Applied   bool  `json:"applied"`
	Rows      []Row `json:"rows"`
	Total     int   `json:"total"`
	Created   int   `json:"created"`
	Updated   int   `json:"updated"`
	Unchanged int   `json:"unchanged"`
	Invalid   int   `json:"invalid"`
}

// ParseBulk reads a bulk import into rows, one per device, each with its
// own problems. The error is for the file as a whole (no dev_eui column,
// YAML that does not parse); a bad row never fails the others.
//
// CSV follows The Things Stack's bulk CSV where it applies: a header row,
// ';' or ',' as delimiter (whichever the header uses), dev_eui (required),
// id (the TTS device id, used as the name when name is empty), name,
// brand_id and model_id (together the model brand-model when there is no
// model column), app_key and nwk_key (OTAA root keys: checked, not
// stored, since sensorgate sees frames only after the network server or
// through ABP sessions), plus sensorgate's own columns: model, tags
// (key=value pairs separated by '|' or, in a ',' file, ';'), tag:KEY,
// var:KEY, and the ABP session columns dev_addr, mac_version, nwk_s_key,
// s_nwk_s_int_key, f_nwk_s_int_key, nwk_s_enc_key, app_s_key. The other
// columns of TTS's template (join_eui, frequency_plan_id, …) are read and
// ignored. Unlike TTS, any other column is an error that names the
// closest known one: a misspelt column (modle) would otherwise drop its
// values silently. Lines starting with '#' are comments.
//
// The text may start with a UTF-8 byte order mark (spreadsheets write
// one) and lines may end in LF, CRLF or a bare CR (old Mac exports); each
// counts as one line. A row with more or fewer fields than the header, or
// with a control character or invalid UTF-8 in any field (InfluxDB would
// refuse such a name or tag later), has a problem naming its line.
func ParseBulk(b []byte, f BulkFormat) ([]Row, error) {
	switch f {
	case BulkCSV:
		return parseCSVRows(bytes.NewReader(b))
	case BulkYAML:
		return parseYAMLRows(b)
	}
	return nil, fmt.Errorf("devices: bulk format %q: use csv or yaml", f)
}

// csvDelimiter picks ';' (The Things Stack, spreadsheets in many
// locales) or ',' from the header line.
func csvDelimiter(b []byte) rune {
	for _, line := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if bytes.Count(t, []byte(";")) > bytes.Count(t, []byte(",")) {
			return ';'
		}
		return ','
	}
	return ','
}

// csvText returns b without a UTF-8 byte order mark and with CRLF and bare
// CR line ends made LF, the only line end encoding/csv knows (it reads a
// CR-only file as one line). A quoted field's line breaks become LF too;
// the control-character check refuses them in any case.
func csvText(b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, []byte{0xff, 0xfe}) || bytes.HasPrefix(b, []byte{0xfe, 0xff}) {
		return nil, errors.New("devices: csv: the file is UTF-16 text: save it as CSV UTF-8")
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	if bytes.IndexByte(b, '\r') < 0 {
		return b, nil
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\r' {
			c = '\n'
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// csvColumns are the columns ParseBulk reads; tag:KEY and var:KEY come on
// top.
var csvColumns = []string{
	"dev_eui", "id", "name", "model", "brand_id", "model_id", "tags", "app_key", "nwk_key",
	"dev_addr", "mac_version", "nwk_s_key", "s_nwk_s_int_key", "f_nwk_s_int_key", "nwk_s_enc_key", "app_s_key",
}

// csvIgnored are the other columns of The Things Stack's CSV template,
// accepted so its files import as they are, and not used: sensorgate
// does not join devices or plan frequencies.
var csvIgnored = []string{
	"join_eui", "app_eui", "description", "lorawan_version", "lorawan_phy_version", "frequency_plan_id",
	"firmware_version", "hardware_version", "band_id",
}

// csvHeader maps the header's column names to their index, or says what
// is wrong with it: an empty, unknown or repeated column. Names are keyed
// as columnKey gives them. line is the header's line, for the message.
func csvHeader(header []string, line int) (map[string]int, error) {
	col := make(map[string]int, len(header))
	var errs []error
	for i, h := range header {
		orig := strings.TrimSpace(h)
		key := columnKey(orig)
		switch {
		case key == "":
			errs = append(errs, fmt.Errorf("column %d has no name: name it or remove it", i+1))
			continue
		case textProblem(key) != "":
			errs = append(errs, fmt.Errorf("column %d: %s", i+1, textProblem(key)))
			continue
		case !knownColumn(key):
			errs = append(errs, fmt.Errorf("unknown column %q (column %d): %s", orig, i+1, suggestColumn(orig)))
			continue
		}
		if j, dup := col[key]; dup {
			errs = append(errs, fmt.Errorf("column %q is both column %d and %d: keep one", key, j+1, i+1))
			continue
		}
		col[key] = i
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("devices: csv header (line %d): %w", line, errors.Join(errs...))
	}
	return col, nil
}

// columnKey is a header name as columns are told apart: lower case, but
// for tag:KEY and var:KEY only the prefix, since tag keys and variable
// names keep their case (Pmax is not pmax).
func columnKey(name string) string {
	for _, prefix := range []string{"tag:", "var:"} {
		if len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
			return prefix + name[len(prefix):]
		}
	}
	return strings.ToLower(name)
}

func knownColumn(key string) bool {
	if k, ok := strings.CutPrefix(key, "tag:"); ok {
		return k != ""
	}
	if k, ok := strings.CutPrefix(key, "var:"); ok {
		return k != ""
	}
	return slices.Contains(csvColumns, key) || slices.Contains(csvIgnored, key)
}

// suggestColumn names the known column closest to an unknown one. A
// tag:KEY or var:KEY column keeps its key's case, which matters.
func suggestColumn(orig string) string {
	h := strings.ToLower(orig)
	if prefix, key, ok := strings.Cut(orig, ":"); ok && key != "" {
		prefix = strings.ToLower(prefix)
		for _, p := range []string{"tag", "var"} {
			if editDistance(prefix, p) <= 1 || prefix == p+"s" {
				return fmt.Sprintf("did you mean %q?", p+":"+key)
			}
		}
	}
	best, bestD := "", len(h)+1
	for _, c := range slices.Concat(csvColumns, csvIgnored) {
		if d := editDistance(h, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(h)/3) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "known columns are " + strings.Join(csvColumns, ", ") + ", tag:KEY and var:KEY"
}

// editDistance is the optimal string alignment distance (Levenshtein with
// transpositions, so "modle" is one edit from "model"). Column names are
// short; quadratic is fine.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// textProblem says what makes s unfit for a name, tag or value: invalid
// UTF-8 or a control character (tabs and line breaks included), which
// InfluxDB refuses in tags or which make a name unreadable. "" if none.
func textProblem(s string) string {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Sprintf("byte %d is not UTF-8 text: save the file as UTF-8", i+1)
			}
		}
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character %U at character %d: remove it", r, utf8.RuneCountInString(s[:i])+1)
		}
	}
	return ""
}

// deviceTextProblems checks the free text of a device (name, model, tags,
// variables) with textProblem.
func deviceTextProblems(d Device) []string {
	var out []string
	check := func(what, s string) {
		if p := textProblem(s); p != "" {
			out = append(out, what+": "+p)
		}
	}
	check("name", d.Name)
	check("model", d.Model)
	for _, k := range slices.Sorted(maps.Keys(d.Tags)) {
		check("tag key "+strconv.Quote(k), k)
		check("tag "+strconv.Quote(k), d.Tags[k])
	}
	for _, k := range slices.Sorted(maps.Keys(d.Variables)) {
		check("variable key "+strconv.Quote(k), k)
		check("variable "+strconv.Quote(k), d.Variables[k])
	}
	return out
}

func parseCSVRows(r io.Reader) ([]Row, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("devices: csv: %w", err)
	}
	if b, err = csvText(b); err != nil {
		return nil, err
	}
	cr := csv.NewReader(bytes.NewReader(b))
	cr.Comma = csvDelimiter(b)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1 // a ragged row is a problem of its own, not of the file
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("devices: csv header: %w", err)
	}
	headerLine, _ := cr.FieldPos(0)
	col, err := csvHeader(header, headerLine)
	if err != nil {
		return nil, err
	}
	if _, ok := col["dev_eui"]; !ok {
		return nil, fmt.Errorf("devices: csv header has no dev_eui column (have %s)", strings.Join(header, string(cr.Comma)))
	}
	tagSep := ";"
	if cr.Comma == ';' {
		tagSep = "|"
	}
	var rows []Row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			// A quoting error leaves the reader unsure where rows start:
			// the file as a whole is unreadable from here.
			return nil, fmt.Errorf("devices: csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		row := csvRow(line, header, rec, get, tagSep)
		if len(rec) != len(header) {
			row.problem("%d fields, the header has %d: every row needs one per column (quote values holding %q)", len(rec), len(header), cr.Comma)
		}
		for i, v := range rec {
			if p := textProblem(v); p != "" {
				name := fmt.Sprintf("field %d", i+1)
				if i < len(header) {
					name = strings.TrimSpace(header[i])
				}
				row.problem("%s: %s", name, p)
			}
		}
		rows = append(rows, row)
	}
}

func csvRow(line int, header, rec []string, get func(string) string, tagSep string) Row {
	row := Row{Line: line, DevEUI: get("dev_eui")}
	d := &row.Device
	var err error
	if d.EUI, err = ParseEUI(row.DevEUI); err != nil {
		row.problem("%v", err)
	} else if d.EUI.IsZero() {
		row.problem("dev_eui is all zeros: give the device's real EUI")
	} else {
		row.DevEUI = d.EUI.String()
	}
	d.Name = get("name")
	if d.Name == "" {
		d.Name = get("id")
	}
	d.Model = get("model")
	if brand, model := get("brand_id"), get("model_id"); d.Model == "" && brand != "" && model != "" {
		d.Model = strings.ToLower(brand + "-" + model)
	}
	if addr := get("dev_addr"); addr != "" {
		if d.Session, err = csvSession(addr, get); err != nil {
			row.problem("%v", err)
		}
	}
	for _, k := range []string{"app_key", "nwk_key"} {
		if v := get(k); v != "" {
			if _, err := ParseKey(v); err != nil {
				row.problem("%s: %v", k, err)
			} else {
				row.Warnings = append(row.Warnings, k+" is not stored: sensorgate needs no OTAA root key (only ABP session keys, for raw frames)")
			}
		}
	}
	if t := get("tags"); t != "" {
		for _, kv := range strings.Split(t, tagSep) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				row.problem("tag %q is not key=value", kv)
				continue
			}
			d.setTag(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	for i, h := range header {
		h = columnKey(strings.TrimSpace(h))
		if i >= len(rec) || rec[i] == "" {
			continue
		}
		if k, ok := strings.CutPrefix(h, "tag:"); ok {
			d.setTag(k, strings.TrimSpace(rec[i]))
		} else if k, ok := strings.CutPrefix(h, "var:"); ok {
			if d.Variables == nil {
				d.Variables = map[string]string{}
			}
			d.Variables[k] = strings.TrimSpace(rec[i])
		}
	}
	row.Name = d.Name
	return row
}

func parseYAMLRows(b []byte) ([]Row, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	root := &doc
	if root.Kind == 0 {
		return nil, nil // empty
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.MappingNode {
		var list *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			if k := root.Content[i].Value; k == "devices" {
				list = root.Content[i+1]
			} else {
				return nil, fmt.Errorf("devices: line %d: unknown key %q: the file is a list of devices or has one key, devices", root.Content[i].Line, k)
			}
		}
		if list == nil {
			return nil, nil
		}
		root = list
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("devices: line %d: want a list of devices", root.Line)
	}
	rows := make([]Row, 0, len(root.Content))
	for _, item := range root.Content {
		row := Row{Line: item.Line}
		if item.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(item.Content); i += 2 {
				if item.Content[i].Value == "dev_eui" {
					row.DevEUI = item.Content[i+1].Value
				}
			}
		}
		if err := decodeStrict(item, &row.Device); err != nil {
			row.problem("%s", strings.TrimPrefix(err.Error(), "devices: "))
		} else if row.Device.EUI.IsZero() {
			row.problem("dev_eui is missing or all zeros: give the device's real EUI")
		} else {
			row.DevEUI = row.Device.EUI.String()
		}
		for _, p := range deviceTextProblems(row.Device) {
			row.problem("%s", p)
		}
		row.Name = row.Device.Name
		rows = append(rows, row)
	}
	return rows, nil
}

// CheckRows finds what is wrong with rows as an upsert onto current: each
// row's session, duplicates within the import, names taken by other
// devices, unknown models. knownModel may be nil (no model check). It
// sets each valid row's Action and returns the number of rows with
// problems.
func CheckRows(rows []Row, current map[EUI]Device, knownModel func(string) bool) int {
	byEUI := map[EUI]int{}     // row index by EUI
	byName := map[string]int{} // row index by name
	for i := range rows {
		r := &rows[i]
		if len(r.Problems) > 0 {
			continue
		}
		d := normalized(r.Device)
		r.Device, r.Name = d, d.Name
		if j, dup := byEUI[d.EUI]; dup {
			r.problem("duplicate: dev_eui %s is also on line %d: keep one", d.EUI, rows[j].Line)
		} else {
			byEUI[d.EUI] = i
		}
		if j, dup := byName[d.Name]; dup {
			r.problem("duplicate: name %q is also on line %d: names must be unique", d.Name, rows[j].Line)
		} else {
			byName[d.Name] = i
		}
		if d.Session != nil {
			if err := d.Session.Validate(); err != nil {
				r.problem("%v", err)
			}
		}
		if d.Model != "" && knownModel != nil && !knownModel(d.Model) {
			r.problem("unknown model %q: no built-in decoder or codec has it: fix the model, or add its codec to decoders.scripts first", d.Model)
		}
	}
	// A name may belong to a registered device that the import leaves
	// alone (or renames: then it is free).
	for e, d := range current {
		if _, touched := byEUI[e]; touched {
			continue
		}
		if i, taken := byName[d.Name]; taken && rows[i].Device.EUI != e {
			rows[i].problem("name %q belongs to registered device %s: choose another name", d.Name, e)
		}
	}
	invalid := 0
	for i := range rows {
		r := &rows[i]
		if len(r.Problems) > 0 {
			invalid++
			r.Action = ""
			continue
		}
		prev, ok := current[r.Device.EUI]
		switch {
		case !ok:
			r.Action = ActionCreate
		case SameDevice(prev, r.Device):
			r.Action = ActionUnchanged
		default:
			r.Action = ActionUpdate
		}
	}
	return invalid
}

// Import checks rows as an upsert onto the store and, unless dryRun or a
// row has a problem, applies them all in one transaction. The report says
// per row what was (or would be) done; Applied is false when anything was
// wrong, and then nothing changed.
func (s *Store) Import(ctx context.Context, rows []Row, knownModel func(string) bool, dryRun bool) (ImportReport, error) {
	rep := ImportReport{DryRun: dryRun, Rows: rows, Total: len(rows)}
	var err error
	if dryRun {
		s.mu.Lock()
		rep.Invalid = CheckRows(rows, s.devs, knownModel)
		s.mu.Unlock()
	} else {
		err = s.change(ctx, func(next map[EUI]Device, _ *sqlTx) ([]EUI, error) {
			rep.Invalid = CheckRows(rows, next, knownModel)
			if rep.Invalid > 0 {
				return nil, errInvalidRows
			}
			var changed []EUI
			for _, r := range rows {
				if r.Action != ActionUnchanged {
					next[r.Device.EUI] = r.Device
					changed = append(changed, r.Device.EUI)
				}
			}
			return changed, nil
		})
		if errors.Is(err, errInvalidRows) {
			err = nil
		}
		rep.Applied = err == nil && rep.Invalid == 0
	}
	for _, r := range rows {
		switch r.Action {
		case ActionCreate:
			rep.Created++
		case ActionUpdate:
			rep.Updated++
		case ActionUnchanged:
			rep.Unchanged++
		}
	}
	return rep, err
}

// errInvalidRows aborts an import's transaction; the report says why.
var errInvalidRows = errors.New("devices: import has invalid rows")

// WriteCSV writes devs in the CSV form ParseBulk reads: dev_eui, name,
// model, tags (k=v;k=v), a var:KEY column per variable key, and the ABP
// session columns when any device has a session. Session keys come out
// masked, as every text form of a Key does: an export documents the
// registry, it is not a key backup, and re-importing it needs the keys
// filled in.
func WriteCSV(w io.Writer, devs []Device) error {
	varKeys := map[string]bool{}
	sessions := false
	for _, d := range devs {
		for k := range d.Variables {
			varKeys[k] = true
		}
		sessions = sessions || d.Session != nil
	}
	vars := slices.Sorted(maps.Keys(varKeys))
	header := []string{"dev_eui", "name", "model", "tags"}
	for _, k := range vars {
		header = append(header, "var:"+k)
	}
	sessionCols := []string{"dev_addr", "mac_version", "nwk_s_key", "s_nwk_s_int_key", "f_nwk_s_int_key", "nwk_s_enc_key", "app_s_key"}
	if sessions {
		header = append(header, sessionCols...)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, d := range devs {
		tags := make([]string, 0, len(d.Tags))
		for _, k := range slices.Sorted(maps.Keys(d.Tags)) {
			tags = append(tags, k+"="+d.Tags[k])
		}
		rec := []string{d.EUI.String(), d.Name, d.Model, strings.Join(tags, ";")}
		for _, k := range vars {
			rec = append(rec, d.Variables[k])
		}
		if sessions {
			if ss := d.Session; ss != nil {
				rec = append(rec, ss.DevAddr.String(), ss.MACVersion, ss.NwkSKey.String(), ss.SNwkSIntKey.String(),
					ss.FNwkSIntKey.String(), ss.NwkSEncKey.String(), ss.AppSKey.String())
			} else {
				rec = append(rec, make([]string, len(sessionCols))...)
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
