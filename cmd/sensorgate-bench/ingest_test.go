package main

import (
	"strings"
	"testing"
)

func TestRewriteVariant(t *testing.T) {
	uplink := `uplink,dev_eui=0a,device=Device\ name,model=cayenne-lpp,source=cs dr=5i,payload="a b,c=d" 1684741625404000000
uplink_gateway,dev_eui=0a,device=Device\ name,gateway_id=g1,model=cayenne-lpp,source=cs rssi=-35,snr=11.5 1684741625404000000
air,channel=1,dev_eui=0a,device=Device\ name,model=cayenne-lpp,source=cs temperature=12.8 1684741625404000000
air,channel=2,dev_eui=0a,device=Device\ name,model=cayenne-lpp,source=cs relativeHumidity=41.5 1684741625404000000
air,channel=3,dev_eui=0a,device=Device\ name,model=cayenne-lpp,source=cs temperature=9.5 1684741625404000000
`
	for _, tc := range []struct {
		variant string
		want    string
	}{
		{"schema", uplink},
		{"lean+ms", `uplink,dev_eui=0a,device=Device\ name,model=cayenne-lpp,source=cs dr=5i,payload="a b,c=d" 1684741625404
uplink_gateway,dev_eui=0a,device=Device\ name,gateway_id=g1 rssi=-35,snr=11.5 1684741625404
air,channel=1,dev_eui=0a,device=Device\ name temperature=12.8 1684741625404
air,channel=2,dev_eui=0a,device=Device\ name relativeHumidity=41.5 1684741625404
air,channel=3,dev_eui=0a,device=Device\ name temperature=9.5 1684741625404
`},
		// Two temperatures in one frame: the channels stay apart.
		{"merge", uplink},
	} {
		got := rewriteVariant([][]byte{[]byte(uplink)}, tc.variant)
		if string(got[0]) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.variant, got[0], tc.want)
		}
	}
	// One quantity per channel: one air point without a channel tag.
	distinct := strings.Replace(uplink, "temperature=9.5", "pressure=1006.2", 1)
	got := string(rewriteVariant([][]byte{[]byte(distinct)}, "merge")[0])
	want := `air,dev_eui=0a,device=Device\ name,model=cayenne-lpp,source=cs pressure=1006.2,relativeHumidity=41.5,temperature=12.8 1684741625404000000`
	if !strings.Contains(got, want+"\n") || strings.Count(got, "\n") != 3 {
		t.Errorf("merge:\n got %s\nwant the uplink, its gateway and %s", got, want)
	}
}

func TestParseLineHostile(t *testing.T) {
	for _, line := range []string{"", "m", "m f=1", `m,t=a\ b f="x y" 1 extra`, `m f="unterminated 1`} {
		if _, err := parseLine(line); err == nil {
			t.Errorf("parseLine(%q): no error", line)
		}
	}
}
