package devices

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const testKeyHex = "0102030405060708090a0b0c0d0e0f10"

func TestKeyNeverPrintsInFull(t *testing.T) {
	k, err := ParseKey(strings.ToUpper(testKeyHex))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("*", 28) + "0f10"
	s := Session{DevAddr: DevAddr{1, 2, 3, 4}, NwkSKey: k, AppSKey: k}
	j, _ := json.Marshal(s)
	y, _ := yaml.Marshal(s)
	txt, _ := k.MarshalText()
	outs := map[string]string{
		"String": k.String(), "MarshalText": string(txt), "json": string(j), "yaml": string(y),
		"%v": fmt.Sprintf("%v", k), "%s": fmt.Sprintf("%s", k), "%x": fmt.Sprintf("%x", k), "%d": fmt.Sprintf("%d", k),
		"%#v": fmt.Sprintf("%#v", k), "%+v struct": fmt.Sprintf("%+v", s), "%v ptr": fmt.Sprintf("%v", &s),
	}
	for name, out := range outs {
		if strings.Contains(strings.ToLower(out), "0102030405") || strings.Contains(out, "[1 2 3") {
			t.Errorf("%s reveals the key: %s", name, out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("%s = %q, want the masked form %q in it", name, out, want)
		}
	}
}

func TestKeyUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		in      string
		ok      bool
		isZero  bool
		comment string
	}{
		{testKeyHex, true, false, "lower case"},
		{"01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10", true, false, "colons"},
		{"", true, true, "empty is unset"},
		{strings.Repeat("*", 28) + "0f10", false, false, "masked form"},
		{"0102", false, false, "short"},
		{strings.Repeat("zz", 16), false, false, "not hex"},
	} {
		var k Key
		err := k.UnmarshalText([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.comment, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Errorf("%s: %v does not wrap ErrBadKey", tc.comment, err)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), tc.in) {
				t.Errorf("%s: error echoes the key text: %v", tc.comment, err)
			}
			continue
		}
		if k.IsZero() != tc.isZero {
			t.Errorf("%s: IsZero = %v", tc.comment, k.IsZero())
		}
		if !tc.isZero && k != (Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}) {
			t.Errorf("%s: bytes %v", tc.comment, [16]byte(k))
		}
	}
}

func TestDevAddrText(t *testing.T) {
	a, err := ParseDevAddr("26011BDA")
	if err != nil || a != (DevAddr{0x26, 0x01, 0x1b, 0xda}) || a.String() != "26011bda" {
		t.Fatalf("ParseDevAddr = %v %v", a, err)
	}
	for _, bad := range []string{"", "26011b", "26011bdaxx", "zz011bda"} {
		if _, err := ParseDevAddr(bad); !errors.Is(err, ErrBadDevAddr) {
			t.Errorf("ParseDevAddr(%q) err = %v, want ErrBadDevAddr", bad, err)
		}
	}
}

func TestSessionValidate(t *testing.T) {
	k := Key{1}
	for _, tc := range []struct {
		name string
		s    Session
		errs []string
	}{
		{"1.0 ok", Session{NwkSKey: k, AppSKey: k}, nil},
		{"1.0 explicit", Session{MACVersion: "1.0", NwkSKey: k, AppSKey: k}, nil},
		{"1.1 ok", Session{MACVersion: "1.1", SNwkSIntKey: k, FNwkSIntKey: k, NwkSEncKey: k, AppSKey: k}, nil},
		{"1.0 missing", Session{}, []string{"nwk_s_key is missing", "app_s_key is missing"}},
		{"1.1 missing", Session{MACVersion: "1.1", NwkSKey: k}, []string{"f_nwk_s_int_key is missing", "nwk_s_enc_key is missing", "nwk_s_key given", "app_s_key"}},
		{"1.0 with 1.1 keys", Session{NwkSKey: k, AppSKey: k, FNwkSIntKey: k}, []string{"1.1 keys given"}},
		{"bad version", Session{MACVersion: "1.0.3", NwkSKey: k, AppSKey: k}, []string{`mac_version "1.0.3"`}},
	} {
		err := tc.s.Validate()
		if len(tc.errs) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, e := range tc.errs {
			if !strings.Contains(err.Error(), e) {
				t.Errorf("%s: %q lacks %q", tc.name, err, e)
			}
		}
	}
}

func TestSessionFromYAMLAndCSV(t *testing.T) {
	y := `
- dev_eui: 0004a30b001c0530
  name: abp-1
  session:
    dev_addr: 26011BDA
    nwk_s_key: ` + testKeyHex + `
    app_s_key: 100f0e0d0c0b0a090807060504030201
- dev_eui: 0004a30b001c0531
  name: abp-2
  session:
    dev_addr: 26011bda
    mac_version: "1.1"
    f_nwk_s_int_key: ` + testKeyHex + `
    s_nwk_s_int_key: ` + testKeyHex + `
    nwk_s_enc_key: ` + testKeyHex + `
    app_s_key: 100f0e0d0c0b0a090807060504030201
- dev_eui: 0004a30b001c0532
  name: otaa
`
	ydevs, err := ParseYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	csv := "dev_eui,name,dev_addr,mac_version,nwk_s_key,app_s_key,f_nwk_s_int_key,s_nwk_s_int_key,nwk_s_enc_key\n" +
		"0004a30b001c0530,abp-1,26011BDA,," + testKeyHex + ",100f0e0d0c0b0a090807060504030201,,,\n" +
		"0004a30b001c0531,abp-2,26011bda,1.1,,100f0e0d0c0b0a090807060504030201," + testKeyHex + "," + testKeyHex + "," + testKeyHex + "\n" +
		"0004a30b001c0532,otaa,,,,,,,\n"
	cdevs, err := ParseCSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	for name, devs := range map[string][]Device{"yaml": ydevs, "csv": cdevs} {
		r, err := NewRegistry(devs)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := r.LookupDevAddr(DevAddr{0x26, 0x01, 0x1b, 0xda})
		if len(got) != 2 || got[0].Name != "abp-1" || got[1].Name != "abp-2" {
			t.Fatalf("%s: LookupDevAddr = %v", name, got)
		}
		if got[0].Session.NwkSKey != (Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}) || got[0].Session.Is11() {
			t.Errorf("%s: abp-1 session %+v", name, got[0].Session)
		}
		if !got[1].Session.Is11() || got[1].Session.MICKey() != got[1].Session.FNwkSIntKey || got[1].Session.NwkEncKey() != got[1].Session.NwkSEncKey {
			t.Errorf("%s: abp-2 session %+v", name, got[1].Session)
		}
		if d, _ := r.Lookup(devs[2].EUI); d.Session != nil {
			t.Errorf("%s: otaa device has a session", name)
		}
		if len(r.LookupDevAddr(DevAddr{})) != 0 {
			t.Errorf("%s: zero DevAddr finds devices", name)
		}
	}
}

func TestSessionErrorsDoNotEchoKeys(t *testing.T) {
	csv := "dev_eui,dev_addr,nwk_s_key,app_s_key\n0004a30b001c0530,26011bda,0102030405060708090a0b0c0d0e0fzz,100f0e0d0c0b0a090807060504030201\n"
	_, err := ParseCSV(strings.NewReader(csv))
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "nwk_s_key") {
		t.Fatalf("err = %v, want line 2 nwk_s_key", err)
	}
	if strings.Contains(err.Error(), "0102030405") {
		t.Fatalf("error echoes the key: %v", err)
	}
	// A session missing a key is refused by the registry, which keeps its
	// previous contents.
	r, _ := NewRegistry(nil)
	err = r.Replace([]Device{{EUI: EUI{1}, Name: "x", Session: &Session{DevAddr: DevAddr{1}, NwkSKey: Key{1}}}})
	if err == nil || !strings.Contains(err.Error(), "app_s_key is missing") {
		t.Fatalf("Replace err = %v", err)
	}
	if r.Len() != 0 {
		t.Fatal("Replace changed the registry on error")
	}
}
