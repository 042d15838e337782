package devices

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseCSV(t *testing.T) {
	in := `# city bins, exported from the vendor sheet
dev_eui,name,model,tags,tag:owner,var:height_mm
70B3D57ED0001234,bin-0042,dingtek-df703,district=north;site=depot,waste-dept,1200
0101010101010101,,cayenne-lpp,,,
`
	got, err := ParseCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{EUI: mustParse(t, "70b3d57ed0001234"), Name: "bin-0042", Model: "dingtek-df703",
			Tags: map[string]string{"district": "north", "site": "depot", "owner": "waste-dept"}, Variables: map[string]string{"height_mm": "1200"}},
		{EUI: mustParse(t, "0101010101010101"), Model: "cayenne-lpp"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestParseCSVErrorsNameLines(t *testing.T) {
	in := "dev_eui,name,tags\nnot-an-eui,a,\n0101010101010101,b,district\n"
	_, err := ParseCSV(strings.NewReader(in))
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want both bad lines named", err)
	}
	if _, err := ParseCSV(strings.NewReader("name,model\na,b\n")); err == nil || !strings.Contains(err.Error(), "dev_eui") {
		t.Fatalf("missing dev_eui column: err = %v", err)
	}
}

func TestParseYAML(t *testing.T) {
	list := "- dev_eui: \"0101010101010101\"\n  name: a\n  tags: {district: north}\n"
	wrapped := "devices:\n" + strings.ReplaceAll("  "+list, "\n  ", "\n    ")
	for name, in := range map[string]string{"list": list, "wrapped": wrapped} {
		got, err := ParseYAML([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 1 || got[0].Name != "a" || got[0].Tags["district"] != "north" {
			t.Fatalf("%s: got %+v", name, got)
		}
	}
	if _, err := ParseYAML([]byte("- dev_eui: \"0101010101010101\"\n  nmae: typo\n")); err == nil || !strings.Contains(err.Error(), "nmae") {
		t.Fatalf("unknown key accepted: %v", err)
	}
	if _, err := ParseYAML([]byte("- dev_eui: nope\n")); err == nil {
		t.Fatal("bad EUI accepted")
	}
	// Errors name the file's own lines.
	typo := "# fleet\ndevices:\n  - dev_eui: \"0101010101010101\"\n  - dev_eui: \"0202020202020202\"\n    nmae: typo\n"
	if _, err := ParseYAML([]byte(typo)); err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("unknown key on line 5: error %v, want one naming line 5", err)
	}
}

func TestYAMLList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"- dev_eui: x\n", true},
		{"# devices\n\n-\n  dev_eui: x\n", true},
		{"---\n- dev_eui: x\n", true},
		{"%YAML 1.2\n--- [ {dev_eui: x} ]\n", true},
		{"devices:\n  - dev_eui: x\n", false},
		{"---\ndevices: []\n", false},
		{"-1\n", false},
		{"", false},
		{"# only a comment\n", false},
	} {
		if got := yamlList([]byte(c.in)); got != c.want {
			t.Errorf("yamlList(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestLoadFileByExtension(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "d.csv")
	os.WriteFile(csvPath, []byte("dev_eui,name\n0101010101010101,x\n"), 0o644)
	if devs, err := LoadFile(csvPath); err != nil || len(devs) != 1 {
		t.Fatalf("csv: %v %v", devs, err)
	}
	txt := filepath.Join(dir, "d.txt")
	os.WriteFile(txt, nil, 0o644)
	if _, err := LoadFile(txt); err == nil {
		t.Fatal("unknown extension accepted")
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func FuzzParseCSV(f *testing.F) {
	f.Add("dev_eui,name,model,tags\n0101010101010101,a,m,k=v;x=y\n")
	f.Add("dev_eui\n\"unterminated\n")
	f.Add("\ufeffdev_eui,name\r0101010101010101,a\r0202020202020202,b")
	f.Add("dev_eui,name\r\n0101010101010101,\"a\r\nb\"\r\n")
	f.Add("dev_eui,name,modle\n0101010101010101,a,m\n")
	f.Add("dev_eui,name\n0101010101010101,a,extra\n0202020202020202\n")
	f.Add("dev_eui,name,tag:site\n0101010101010101,bell\x07,x\xff\n")
	f.Fuzz(func(t *testing.T, s string) {
		devs, err := ParseCSV(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, d := range devs {
			if d.EUI.IsZero() {
				t.Fatalf("device without EUI accepted: %+v", d)
			}
			checkDeviceText(t, d)
		}
	})
}

// checkDeviceText fails if an accepted device holds text InfluxDB or an
// operator could not use: invalid UTF-8 or a control character.
func checkDeviceText(t *testing.T, d Device) {
	t.Helper()
	texts := []string{d.Name, d.Model}
	for k, v := range d.Tags {
		texts = append(texts, k, v)
	}
	for k, v := range d.Variables {
		texts = append(texts, k, v)
	}
	for _, s := range texts {
		if p := textProblem(s); p != "" {
			t.Fatalf("device %s accepted with %q: %s", d.EUI, s, p)
		}
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add("- dev_eui: \"0101010101010101\"\n  name: a\n")
	f.Add("devices: [{dev_eui: \"0101010101010101\", tags: {a: b}}]")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseYAML([]byte(s)) // must not panic
	})
}

func mustParse(t *testing.T, s string) EUI {
	t.Helper()
	e, err := ParseEUI(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
