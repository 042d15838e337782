package devices

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime/debug"
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
	DryRun  bool `json:"dry_run"`
	Applied bool `json:"applied"`
	// Rows lists the rows with problems or warnings, in line order, up
	// to MaxReportRows of them; RowsOmitted counts the others, so a
	// million-row import answers with a short report.
	Rows        []Row `json:"rows"`
	RowsOmitted int   `json:"rows_omitted"`
	Total       int   `json:"total"`
	Created     int   `json:"created"`
	Updated     int   `json:"updated"`
	Unchanged   int   `json:"unchanged"`
	Invalid     int   `json:"invalid"`
	Warned      int   `json:"warned"`
}

// MaxReportRows bounds the rows an ImportReport lists.
const MaxReportRows = 100

// reportRows keeps the rows a report lists: the first MaxReportRows rows
// with problems, then, if there is room, rows with warnings only.
type reportRows struct {
	probs, warns       []Row
	nProbs, nWarnsOnly int
}

func (l *reportRows) note(r Row) {
	r.Device = Device{}
	switch {
	case len(r.Problems) > 0:
		l.nProbs++
		if len(l.probs) < MaxReportRows {
			l.probs = append(l.probs, r)
		}
	case len(r.Warnings) > 0:
		l.nWarnsOnly++
		if len(l.warns) < MaxReportRows {
			l.warns = append(l.warns, r)
		}
	}
}

// list returns the rows to list in line order and how many are left out.
func (l *reportRows) list() ([]Row, int) {
	rows := append(l.probs, l.warns[:min(len(l.warns), MaxReportRows-len(l.probs))]...)
	slices.SortStableFunc(rows, func(a, b Row) int { return a.Line - b.Line })
	return rows, l.nProbs + l.nWarnsOnly - len(rows)
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
	var rows []Row
	err := EachBulkRow(bytes.NewReader(b), f, func(r Row) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// EachBulkRow reads a bulk import as ParseBulk does and calls fn with each
// row as it is read, so a CSV file of any length is never held whole (a
// YAML document is: it is parsed as one tree). An error of fn stops the
// reading and is returned; an error of the file is a *BulkFileError.
func EachBulkRow(r io.Reader, f BulkFormat, fn func(Row) error) error {
	switch f {
	case BulkCSV:
		return eachCSVRow(r, fn)
	case BulkYAML:
		b, err := io.ReadAll(r)
		if err != nil {
			return &ReadError{err}
		}
		rows, err := parseYAMLRows(b)
		if err != nil {
			return &BulkFileError{err}
		}
		for _, row := range rows {
			if err := fn(row); err != nil {
				return err
			}
		}
		return nil
	}
	return &BulkFileError{fmt.Errorf("devices: bulk format %q: use csv or yaml", f)}
}

// BulkFileError is what is wrong with a bulk import as a whole (no
// dev_eui column, a quoting error, YAML that does not parse), as opposed
// to a row's problems.
type BulkFileError struct{ Err error }

func (e *BulkFileError) Error() string { return e.Err.Error() }
func (e *BulkFileError) Unwrap() error { return e.Err }

// csvDelimiter picks ';' (The Things Stack, spreadsheets in many
// locales) or ',' from the header line.
func csvDelimiter(line []byte) rune {
	if bytes.Count(line, []byte(";")) > bytes.Count(line, []byte(",")) {
		return ';'
	}
	return ','
}

// csvText returns r without a UTF-8 byte order mark and with CRLF and
// bare CR line ends made LF, the only line end encoding/csv knows (it
// reads a CR-only file as one line), and the delimiter its header line
// uses. A quoted field's line breaks become LF too; the control-character
// check refuses them in any case.
func csvText(r io.Reader) (io.Reader, rune, error) {
	br := bufio.NewReaderSize(&lineEnds{r: r}, 64<<10)
	if b, _ := br.Peek(2); bytes.Equal(b, []byte{0xff, 0xfe}) || bytes.Equal(b, []byte{0xfe, 0xff}) {
		return nil, 0, errors.New("devices: csv: the file is UTF-16 text: save it as CSV UTF-8")
	}
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\ufeff")) {
		_, _ = br.Discard(3)
	}
	// The lines before the header (comments, blank lines) are read to
	// find it and handed on, so that line numbers stay right.
	var head bytes.Buffer
	comma := ','
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, 0, errors.New("devices: csv: a line before the first row is over 64 KiB: is this a CSV file?")
		}
		head.Write(line)
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			comma = csvDelimiter(t)
			break
		}
		if err != nil {
			break
		}
	}
	return io.MultiReader(&head, br), comma, nil
}

// lineEnds turns CRLF and bare CR into LF as it reads.
type lineEnds struct {
	r      io.Reader
	lastCR bool // the previous read ended in CR: a leading LF is its pair
}

func (l *lineEnds) Read(p []byte) (int, error) {
	for {
		n, err := l.r.Read(p)
		out := 0
		for _, c := range p[:n] {
			switch {
			case c == '\n' && l.lastCR:
				l.lastCR = false
				continue
			case c == '\r':
				l.lastCR = true
				c = '\n'
			default:
				l.lastCR = false
			}
			p[out] = c
			out++
		}
		if out > 0 || err != nil || n == 0 {
			return out, err
		}
	}
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
	var rows []Row
	err := eachCSVRow(r, func(row Row) error {
		rows = append(rows, row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func eachCSVRow(r io.Reader, fn func(Row) error) error {
	text, comma, err := csvText(r)
	if err != nil {
		return &BulkFileError{err}
	}
	cr := csv.NewReader(text)
	cr.Comma = comma
	cr.Comment = '#'
	cr.FieldsPerRecord = -1 // a ragged row is a problem of its own, not of the file
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fileError(fmt.Errorf("devices: csv header: %w", err))
	}
	header = slices.Clone(header) // ReuseRecord: the next Read overwrites it
	headerLine, _ := cr.FieldPos(0)
	col, err := csvHeader(header, headerLine)
	if err != nil {
		return &BulkFileError{err}
	}
	if _, ok := col["dev_eui"]; !ok {
		return &BulkFileError{fmt.Errorf("devices: csv header has no dev_eui column (have %s)", strings.Join(header, string(cr.Comma)))}
	}
	tagSep := ";"
	if cr.Comma == ';' {
		tagSep = "|"
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// A quoting error leaves the reader unsure where rows start:
			// the file as a whole is unreadable from here.
			return fileError(fmt.Errorf("devices: csv: %w", err))
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
		if err := fn(row); err != nil {
			return err
		}
	}
}

// fileError is a parse error of the CSV file as a *BulkFileError, but an
// error reading the body (too large, cut off) as a *ReadError, so that
// the API can tell them apart and from the database's.
func fileError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &BulkFileError{err}
	}
	return &ReadError{err}
}

// ReadError is an error reading a bulk import's body.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

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
// problems. Store.Import does the same checks on a stream.
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
		r.checkDevice(knownModel)
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
		r.Action = actionOf(prev, ok, r.Device)
	}
	return invalid
}

// checkDevice adds the problems of the row's device on its own: its
// session and its model.
func (r *Row) checkDevice(knownModel func(string) bool) {
	d := &r.Device
	if d.Session != nil {
		if err := d.Session.Validate(); err != nil {
			r.problem("%v", err)
		}
	}
	if d.Model != "" && knownModel != nil && !knownModel(d.Model) {
		r.problem("unknown model %q: no built-in decoder or codec has it: fix the model, or add its codec to decoders.scripts first", d.Model)
	}
}

func actionOf(prev Device, registered bool, d Device) string {
	switch {
	case !registered:
		return ActionCreate
	case SameDevice(prev, d):
		return ActionUnchanged
	}
	return ActionUpdate
}

// Import reads a bulk import from body and checks each row as an upsert
// onto the registry as it is read; unless dryRun or a row has a problem,
// it then applies them all in one transaction. The report counts what
// was (or would be) done and lists the rows with problems or warnings
// (the first MaxReportRows); Applied is false when anything was wrong,
// and then nothing changed. A *BulkFileError is what is wrong with the
// file as a whole.
//
// The body is never held whole: what stays in memory per row is the
// device as the registry will hold it (the import's devices become the
// next registry without a copy), so an import of a million rows takes
// about what a registry of a million devices does.
func (s *Store) Import(ctx context.Context, body io.Reader, format BulkFormat, knownModel func(string) bool, dryRun bool) (ImportReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tx *sqlTx
	begin := func() error {
		var err error
		if tx, err = s.db.BeginTx(ctx, nil); err != nil {
			return fmt.Errorf("devices: registry %s: begin: %w", s.path, err)
		}
		return nil
	}
	defer func() {
		if tx != nil {
			tx.Rollback() //nolint:errcheck // after Commit it is a no-op
		}
	}()
	// A shared registry is checked against the table under the
	// instances' lock, held from here to the commit. SQLite has one
	// writer, this process, and s.mu: its transaction starts only once
	// the rows are read, so the health and unknown-device saves are not
	// held up while the body arrives.
	if s.shared != nil && !dryRun {
		if err := begin(); err != nil {
			return ImportReport{}, err
		}
		if err := s.shared.lock(ctx, s, tx); err != nil {
			return ImportReport{}, err
		}
	}
	im := &importer{rep: ImportReport{DryRun: dryRun}, base: s.reg.set(), next: &deviceSet{}, seen: map[EUI]int32{}, knownModel: knownModel}
	defer im.looseGC()
	if err := EachBulkRow(body, format, im.row); err != nil {
		return ImportReport{}, err
	}
	im.checkNames()
	rep := im.finish()
	if rep.Invalid > 0 || dryRun || rep.Total == 0 {
		return rep, nil
	}
	next, ed, err := im.nextSet()
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if tx == nil {
		if err := begin(); err != nil {
			return rep, err
		}
	}
	if err := s.commit(ctx, tx, next, ed); err != nil {
		return rep, err
	}
	rep.Applied = true
	return rep, nil
}

// importGCPercent is the garbage collector's goal while a large import
// runs. What an import holds is the next registry; the rest is garbage
// (rows, their text, the rows' encoding for the database), and at the
// default goal (GOGC=100) the heap grows to twice what is held before a
// collection: 490 MB for a million-device import instead of 250 MB. A
// tighter goal costs some CPU for the import's seconds and keeps the peak
// near what it holds.
const importGCPercent = 25

// tightGCAfter is how many devices an import holds before the tighter
// goal starts. Below it twice what is held is a few tens of megabytes,
// and the tight goal only cost CPU: at 25 % a 100,000-row import spent
// about a third of its CPU collecting a heap that small.
const tightGCAfter = 200000

// tightGC lowers the GC goal to importGCPercent unless it is lower (or
// off) already, and returns the function that restores it.
func tightGC() func() {
	prev := debug.SetGCPercent(importGCPercent)
	if prev <= importGCPercent { // lower already, or off (-1)
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() { debug.SetGCPercent(prev) }
}

// looseGC restores the GC goal if the import tightened it.
func (im *importer) looseGC() {
	if im.restoreGC != nil {
		im.restoreGC()
		im.restoreGC = nil
	}
}

// importer is the state of an import being read. The valid rows' devices
// are appended to next as they come; base's devices the import leaves
// alone are added at the end, and next becomes the registry.
type importer struct {
	rep        ImportReport
	base       *deviceSet
	next       *deviceSet
	in         interner
	seen       map[EUI]int32 // index in next by EUI
	lines      []int32       // line per index in next
	actions    []uint8       // action per index in next
	warned     []int32       // indexes in next of rows with warnings
	listed     reportRows
	knownModel func(string) bool
	restoreGC  func() // set once the import tightened the GC goal
}

const (
	actCreate uint8 = iota
	actUpdate
	actUnchanged
	actInvalid // found invalid after it was added: a name clash
)

func (im *importer) row(r Row) error {
	im.rep.Total++
	if len(r.Problems) == 0 {
		d := normalized(r.Device)
		r.Device, r.Name = d, d.Name
		if j, dup := im.seen[d.EUI]; dup {
			r.problem("duplicate: dev_eui %s is also on line %d: keep one", d.EUI, im.lines[j])
		}
		r.checkDevice(im.knownModel)
	}
	if len(r.Warnings) > 0 {
		im.rep.Warned++
	}
	if len(r.Problems) > 0 {
		im.rep.Invalid++
		r.Action = ""
		im.listed.note(r)
		return nil
	}
	prev, registered := im.base.lookup(r.Device.EUI)
	var act uint8
	switch r.Action = actionOf(deref(prev), registered, r.Device); r.Action {
	case ActionCreate:
		act = actCreate
	case ActionUpdate:
		act = actUpdate
	default:
		act = actUnchanged
	}
	i := im.next.add(im.in.device(r.Device))
	if im.next.n == tightGCAfter {
		im.restoreGC = tightGC()
	}
	im.seen[r.Device.EUI] = i
	im.lines = append(im.lines, int32(r.Line))
	im.actions = append(im.actions, act)
	if len(r.Warnings) > 0 {
		im.warned = append(im.warned, i)
		if len(im.listed.warns) < MaxReportRows {
			im.listed.warns = append(im.listed.warns, r)
			im.listed.warns[len(im.listed.warns)-1].Device = Device{}
		}
	}
	return nil
}

func deref(d *Device) Device {
	if d == nil {
		return Device{}
	}
	return *d
}

// checkNames finds the names the valid rows clash on: with another row,
// or with a registered device the import leaves alone (one it renames
// frees its name).
func (im *importer) checkNames() {
	byName := make(map[string]int32, im.next.n)
	bad := func(i int32, format string, args ...any) {
		d := im.next.at(i)
		r := Row{Line: int(im.lines[i]), DevEUI: d.EUI.String(), Name: d.Name}
		r.problem(format, args...)
		if im.actions[i] != actInvalid {
			// Listed with its problem now, not among the warnings.
			im.listed.warns = slices.DeleteFunc(im.listed.warns, func(w Row) bool { return w.Line == r.Line })
		}
		im.actions[i] = actInvalid
		im.rep.Invalid++
		im.listed.note(r)
	}
	for i := int32(0); int(i) < im.next.n; i++ {
		name := im.next.at(i).Name
		if j, dup := byName[name]; dup {
			bad(i, "duplicate: name %q is also on line %d: names must be unique", name, im.lines[j])
			continue
		}
		byName[name] = i
	}
	im.base.all(func(d *Device) bool {
		if _, touched := im.seen[d.EUI]; touched {
			return true
		}
		if i, taken := byName[d.Name]; taken && im.actions[i] != actInvalid {
			bad(i, "name %q belongs to registered device %s: choose another name", d.Name, d.EUI)
		}
		return true
	})
}

// finish counts the actions and puts the listed rows in line order.
func (im *importer) finish() ImportReport {
	rep := im.rep
	// Valid rows with warnings are counted here, once it is known which
	// of them a name clash made invalid (they are listed with the
	// problem).
	for _, i := range im.warned {
		if im.actions[i] != actInvalid {
			im.listed.nWarnsOnly++
		}
	}
	rep.Rows, rep.RowsOmitted = im.listed.list()
	for _, a := range im.actions {
		switch a {
		case actCreate:
			rep.Created++
		case actUpdate:
			rep.Updated++
		case actUnchanged:
			rep.Unchanged++
		}
	}
	return rep
}

// nextSet completes the next registry: the imported devices and the
// registered ones the import leaves alone. The import's edits are its
// created and updated devices.
func (im *importer) nextSet() (*deviceSet, edits, error) {
	ed := &importEdits{set: im.next}
	for i, a := range im.actions {
		if a == actCreate || a == actUpdate {
			ed.idx = append(ed.idx, int32(i))
		}
	}
	im.base.all(func(d *Device) bool {
		if _, touched := im.seen[d.EUI]; !touched {
			im.next.add(*d)
		}
		return true
	})
	im.seen = nil // before index builds the maps anew
	if err := im.next.index(); err != nil {
		return nil, nil, err
	}
	return im.next, ed, nil
}

// importEdits are an import's changed devices, by index in the next set.
type importEdits struct {
	set *deviceSet
	idx []int32
}

func (e *importEdits) changedEUIs() []EUI {
	out := make([]EUI, len(e.idx))
	for k, i := range e.idx {
		out[k] = e.set.at(i).EUI
	}
	return out
}

func (e *importEdits) each(fn func(EUI, *Device) error) error {
	for _, i := range e.idx {
		d := e.set.at(i)
		if err := fn(d.EUI, d); err != nil {
			return err
		}
	}
	return nil
}

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
