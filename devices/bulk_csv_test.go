package devices

import (
	"strings"
	"testing"
)

// TestCSVLineEndsAndBOM: a UTF-8 byte order mark and LF, CRLF, bare CR
// or mixed line ends all read the same devices on the same lines.
func TestCSVLineEndsAndBOM(t *testing.T) {
	const body = "dev_eui,name,model\n# a comment\n0101010101010101,a,cayenne-lpp\n\n0202020202020202,b,\n"
	variants := map[string]string{
		"LF":            body,
		"CRLF":          strings.ReplaceAll(body, "\n", "\r\n"),
		"CR":            strings.ReplaceAll(body, "\n", "\r"),
		"BOM LF":        "\ufeff" + body,
		"BOM CRLF":      "\ufeff" + strings.ReplaceAll(body, "\n", "\r\n"),
		"BOM CR":        "\ufeff" + strings.ReplaceAll(body, "\n", "\r"),
		"mixed":         "dev_eui,name,model\r\n# a comment\r0101010101010101,a,cayenne-lpp\n\r\n0202020202020202,b,\r",
		"CR no last LF": strings.TrimSuffix(strings.ReplaceAll(body, "\n", "\r"), "\r"),
	}
	for name, text := range variants {
		t.Run(name, func(t *testing.T) {
			rows, err := ParseBulk([]byte(text), BulkCSV)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 {
				t.Fatalf("%d rows, want 2: %+v", len(rows), rows)
			}
			for i, want := range []struct {
				line       int
				eui, name  string
				model      string
				noProblems bool
			}{{3, "0101010101010101", "a", "cayenne-lpp", true}, {5, "0202020202020202", "b", "", true}} {
				r := rows[i]
				if r.Line != want.line || r.DevEUI != want.eui || r.Device.Name != want.name || r.Device.Model != want.model || len(r.Problems) > 0 {
					t.Errorf("row %d = line %d %s %q %q %v, want line %d %s %q %q", i, r.Line, r.DevEUI, r.Device.Name, r.Device.Model, r.Problems,
						want.line, want.eui, want.name, want.model)
				}
			}
			devs, err := ParseCSV(strings.NewReader(text))
			if err != nil || len(devs) != 2 {
				t.Fatalf("ParseCSV: %d devices, %v", len(devs), err)
			}
		})
	}
}

// TestCSVHeaderProblems: an unknown, empty or repeated column fails the
// file with a message naming it, and a misspelt one names the closest
// known column.
func TestCSVHeaderProblems(t *testing.T) {
	tests := []struct {
		header string
		want   string // "" means accepted
	}{
		{"dev_eui,name,Modle", `unknown column "Modle" (column 3): did you mean "model"?`},
		{"dev_eui,nmae", `unknown column "nmae" (column 2): did you mean "name"?`},
		{"dev_eui,name,tag", `unknown column "tag" (column 3): did you mean "tags"?`},
		{"dev_eui,tags:site", `unknown column "tags:site" (column 2): did you mean "tag:site"?`},
		{"dev_eui,vra:Pmax", `unknown column "vra:Pmax" (column 2): did you mean "var:Pmax"?`},
		{"dev_eui,app_s_kye", `did you mean "app_s_key"?`},
		{"dev_eui,colour", `unknown column "colour" (column 2): known columns are dev_eui, id, name, model`},
		{"dev_eui,name,", "column 3 has no name"},
		{"dev_eui,name,Name", `column "name" is both column 2 and 3`},
		{"dev_eui,na\x07me", "column 2: control character U+0007"},
		{"dev_eui,modle,nmae", `"modle" (column 2): did you mean "model"?` + "\n" + `unknown column "nmae" (column 3)`},
		{"dev_eui,tag:", `unknown column "tag:"`},
		// The Things Stack's template columns import as they are.
		{"id;dev_eui;join_eui;name;description;lorawan_version;lorawan_phy_version;frequency_plan_id;brand_id;model_id;firmware_version;hardware_version;band_id;app_key;nwk_key;app_eui", ""},
		{"DEV_EUI,Name,Model,Tag:Site,var:Pmax", ""},
		{"dev_eui,tag:site,tag:Site", ""}, // tag keys keep their case
		{"dev_eui,Tag:site,tag:site", `column "tag:site" is both column 2 and 3`},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			sep := ","
			if strings.Contains(tt.header, ";") {
				sep = ";"
			}
			n := strings.Count(tt.header, sep)
			text := tt.header + "\n0101010101010101" + strings.Repeat(sep, n) + "\n"
			rows, err := ParseBulk([]byte(text), BulkCSV)
			if tt.want == "" {
				if err != nil || len(rows) != 1 {
					t.Fatalf("%v, %d rows", err, len(rows))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "line 1") {
				t.Fatalf("error %v\nwant one containing %q and the header's line", err, tt.want)
			}
			if _, err := ParseCSV(strings.NewReader(text)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseCSV error %v", err)
			}
		})
	}
}

// TestCSVRowProblems: a ragged row and a control character or invalid
// UTF-8 in any field are problems of that row, with its line; the other
// rows are read.
func TestCSVRowProblems(t *testing.T) {
	text := "dev_eui,name,model,tags\n" +
		"0101010101010101,ok,cayenne-lpp,site=a\n" + // line 2
		"0202020202020202,short\n" + // 3
		"0303030303030303,long,,site=b,extra\n" + // 4
		"0404040404040404,bell\x07,,\n" + // 5
		"0505050505050505,tab\there,,\n" + // 6
		"0606060606060606,del\x7f,,\n" + // 7
		"0707070707070707,c1\u0085,,\n" + // 8
		"0808080808080808,ok8,,site=x\x1b[31m\n" + // 9
		"0909090909090909,\"two\nlines\",,\n" + // 10-11
		"0a0a0a0a0a0a0a0a,bad\xff,,\n" + // 12
		"0b0b0b0b0b0b0b0b,straße,,site=köln\n" // 13
	rows, err := ParseBulk([]byte(text), BulkCSV)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line    int
		problem string // "" means none
	}{
		{2, ""},
		{3, "2 fields, the header has 4"},
		{4, "5 fields, the header has 4"},
		{5, "name: control character U+0007 at character 5"},
		{6, "name: control character U+0009 at character 4"},
		{7, "name: control character U+007F"},
		{8, "name: control character U+0085"},
		{9, "tags: control character U+001B"},
		{10, "name: control character U+000A"},
		{12, "name: byte 4 is not UTF-8 text"},
		{13, ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		r := rows[i]
		if r.Line != w.line {
			t.Errorf("row %d on line %d, want %d", i, r.Line, w.line)
		}
		got := strings.Join(r.Problems, "; ")
		if w.problem == "" && got != "" || w.problem != "" && !strings.Contains(got, w.problem) {
			t.Errorf("line %d problems %q, want %q", w.line, got, w.problem)
		}
	}
	// The devices file form names the line of each problem.
	_, err = ParseCSV(strings.NewReader(text))
	for _, s := range []string{"line 3: 2 fields", "line 5: name: control character U+0007", "line 12: name: byte 4"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("ParseCSV error %v\nlacks %q", err, s)
		}
	}
}

// TestCSVUTF16Refused: a UTF-16 export (Excel's "Unicode text") is named
// as such instead of failing as a file without a dev_eui column.
func TestCSVUTF16Refused(t *testing.T) {
	for _, bom := range []string{"\xff\xfe", "\xfe\xff"} {
		_, err := ParseBulk([]byte(bom+"d\x00e\x00v\x00"), BulkCSV)
		if err == nil || !strings.Contains(err.Error(), "UTF-16") {
			t.Errorf("%q: %v", bom, err)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"model", "model", 0}, {"modle", "model", 1}, {"nmae", "name", 1}, {"", "abc", 3}, {"tag", "tags", 1}, {"kitten", "sitting", 3}, {"ä", "a", 1}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestYAMLBulkControlCharacters: the same text rules hold for a YAML (or
// JSON) import, where escapes can put any character in a string.
func TestYAMLBulkControlCharacters(t *testing.T) {
	rows, err := ParseBulk([]byte(`[{"dev_eui":"0101010101010101","name":"a\u0007"},`+
		`{"dev_eui":"0202020202020202","name":"b","tags":{"site":"x\ny"},"variables":{"Pmax":"1\t0"}},`+
		`{"dev_eui":"0303030303030303","name":"ok","tags":{"site":"köln"}}]`), BulkYAML)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{`name: control character U+0007`}, {`tag "site": control character U+000A`, `variable "Pmax": control character U+0009`}, nil}
	for i, w := range want {
		got := rows[i].Problems
		if len(got) != len(w) {
			t.Fatalf("row %d problems %q, want %q", i, got, w)
		}
		for j := range w {
			if !strings.HasPrefix(got[j], w[j]) {
				t.Errorf("row %d problem %q, want %q…", i, got[j], w[j])
			}
		}
	}
}

// TestCSVPrefixedColumnsAnyCase: Tag:KEY and VAR:KEY columns set a tag and
// a variable like tag:KEY and var:KEY, with the key's case kept; the
// header's line is named when comments come before it.
func TestCSVPrefixedColumnsAnyCase(t *testing.T) {
	rows, err := ParseBulk([]byte("DEV_EUI,Name,Tag:Site,VAR:Pmax\n0101010101010101,a,depot,10\n"), BulkCSV)
	if err != nil || len(rows) != 1 || len(rows[0].Problems) > 0 {
		t.Fatalf("%+v %v", rows, err)
	}
	d := rows[0].Device
	if d.Tags["Site"] != "depot" || d.Variables["Pmax"] != "10" || d.Name != "a" {
		t.Fatalf("device %+v: want tag Site and variable Pmax", d)
	}
	_, err = ParseBulk([]byte("# exported 2026-03-01\n\ndev_eui,modle\n"), BulkCSV)
	if err == nil || !strings.Contains(err.Error(), "csv header (line 3)") {
		t.Fatalf("error %v: want the header's line 3", err)
	}
}
