package devices

import (
	"errors"
	"testing"
)

func TestParseEUI(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"0101010101010101", "0101010101010101", true},
		{"70B3D57ED0001234", "70b3d57ed0001234", true},
		{"70-B3-D5-7E-D0-00-12-34", "70b3d57ed0001234", true},
		{"70:b3:d5:7e:d0:00:12:34", "70b3d57ed0001234", true},
		{"", "", false},
		{"0101", "", false},
		{"zz01010101010101", "", false},
		{"01010101010101010", "", false},
	}
	for _, tc := range cases {
		e, err := ParseEUI(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("ParseEUI(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			if !errors.Is(err, ErrBadEUI) {
				t.Errorf("ParseEUI(%q) err = %v, want ErrBadEUI", tc.in, err)
			}
			continue
		}
		if e.String() != tc.want {
			t.Errorf("ParseEUI(%q) = %s, want %s", tc.in, e, tc.want)
		}
		txt, _ := e.MarshalText()
		if string(txt) != tc.want {
			t.Errorf("MarshalText = %s", txt)
		}
	}
}

func FuzzParseEUI(f *testing.F) {
	for _, s := range []string{"0101010101010101", "70-B3-D5-7E-D0-00-12-34", "", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEUI(s)
		if err != nil {
			return
		}
		back, err := ParseEUI(e.String())
		if err != nil || back != e {
			t.Fatalf("%q parsed to %s, which does not parse back (%v)", s, e, err)
		}
	})
}
