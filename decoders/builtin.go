package decoders

import (
	"sort"
	"sync"
	"sync/atomic"
)

// builtin is the table of native decoders by model id. Model ids are
// lower-case vendor-device slugs; they appear as the model tag and in the
// decoded_<model> measurement name. Adding a decoder means adding a row.
var builtin = map[string]Decoder{
	// Cayenne LPP, Elsys, Milesight, Decentlab, Dragino.
	"cayenne-lpp":     lppDecoder{},
	"cayenne-lpp-tts": lppDecoder{tts: true},
	// One Elsys TLV decoder for every Elsys device.
	"elsys-ers":          Func(decodeElsys),
	"elsys-ers-lite":     Func(decodeElsys),
	"elsys-ers-co2":      Func(decodeElsys),
	"elsys-ers-co2-lite": Func(decodeElsys),
	"elsys-ers-sound":    Func(decodeElsys),
	"elsys-ers-eye":      Func(decodeElsys),
	"elsys-ers-desk":     Func(decodeElsys),
	"elsys-ers-voc":      Func(decodeElsys),
	"elsys-elt":          Func(decodeElsys),
	"elsys-elt-2":        Func(decodeElsys),
	"elsys-elt-lite":     Func(decodeElsys),
	"elsys-ems":          Func(decodeElsys),
	"elsys-ems-desk":     Func(decodeElsys),
	"elsys-ems-door":     Func(decodeElsys),
	"elsys-ems-lite":     Func(decodeElsys),
	// Milesight: one pair table per codec generation.
	"milesight-am307":       milesightAM307,
	"milesight-am308":       milesightAM308,
	"milesight-am319":       milesightAM319,
	"milesight-am319-hcho":  milesightAM319HCHO,
	"milesight-am319-o3":    milesightAM319O3,
	"milesight-am319l-hcho": milesightAM319HCHO,
	"milesight-am319l-o3":   milesightAM319O3,
	"milesight-am102":       milesightAM102,
	"milesight-am102l":      milesightAM102,
	"milesight-am103":       milesightAM103,
	"milesight-am103l":      milesightAM103,
	"milesight-am104":       milesightAM100,
	"milesight-am107":       milesightAM100,
	"milesight-em300-th":    milesightEM300TH,
	"milesight-em300-mcs":   milesightEM300MCS,
	"milesight-em300-di":    milesightEM300DI,
	"milesight-em300-sld":   milesightEM300LD,
	"milesight-em300-zld":   milesightEM300LD,
	"milesight-em310-udl":   milesightEM310UDL,
	"milesight-vs133":       milesightVS133,
	// Decentlab: one protocol v2 reader, one table per device.
	"decentlab-dl-pm":       decentlabPM,
	"decentlab-dl-trs12":    decentlabTRS12,
	"decentlab-dl-mbx":      decentlabMBX,
	"decentlab-dl-sht35":    decentlabSHT35,
	"decentlab-dl-pr26":     decentlabPR26,
	"decentlab-dl-pr36":     decentlabPR36,
	"decentlab-dl-lp8p":     decentlabLP8P,
	"decentlab-dl-5tm":      decentlab5TM,
	"decentlab-dl-smtp":     decentlabSMTP,
	"decentlab-dl-atm41":    decentlabATM41,
	"decentlab-dl-dlr2-004": decentlabDLR2004,
	"decentlab-dl-wrm":      decentlabWRM,
	"decentlab-dl-iam":      decentlabIAM,
	"decentlab-dl-ctd10":    decentlabCTD10,
	"decentlab-dl-tbrg":     decentlabTBRG,
	// Dragino: the LHT65N keeps the LHT65 frame (user manual, fPort 2).
	"dragino-lht52":  draginoLHT52,
	"dragino-lht65":  draginoLHT65,
	"dragino-lht65n": draginoLHT65,
	"dragino-lse01":  draginoLSE01,

	// Keller, Dingtek, Bosch, Nwave, IMST, Elvaco, Adeunis.
	"keller-adt1":    keller,
	"keller-arc1":    keller,
	"dingtek-df703":  df703,
	"bosch-tps110":   tps110,
	"nwave-nps405":   nps405,
	"nwave-nps405fm": nps405,
	"nwave-nps405sm": nps405,
	"elvaco-cmi4110": cmi4110,
	"elvaco-cmi4111": cmi4110,
	"adeunis-pulse":  pulse,
	"imst-ioke868":   ioke868,
}

// Registry resolves a model id to a decoder: the built-in table, plus
// decoders added at run time (JavaScript codecs), which take precedence so
// an operator can replace a native decoder without a release.
//
// Every uplink looks its decoder up, from concurrent handlers, while Set
// runs only when a codec file changes: so Set copies the table and
// publishes the copy, and Lookup reads the current one without a lock.
type Registry struct {
	mu    sync.Mutex // serializes Set
	added atomic.Pointer[map[string]Decoder]
}

// NewRegistry returns a registry of the built-in decoders.
func NewRegistry() *Registry {
	r := &Registry{}
	r.added.Store(&map[string]Decoder{})
	return r
}

// runtime returns the current table of run-time decoders.
func (r *Registry) runtime() map[string]Decoder {
	if m := r.added.Load(); m != nil {
		return *m
	}
	return nil
}

// Lookup returns the decoder for model.
func (r *Registry) Lookup(model string) (Decoder, bool) {
	if d, ok := r.runtime()[model]; ok {
		return d, true
	}
	d, ok := builtin[model]
	return d, ok
}

// Set adds or replaces a run-time decoder; a nil d removes it.
func (r *Registry) Set(model string, d Decoder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.runtime()
	next := make(map[string]Decoder, len(old)+1)
	for m, dec := range old {
		next[m] = dec
	}
	if d == nil {
		delete(next, model)
	} else {
		next[model] = d
	}
	r.added.Store(&next)
}

// Models lists every model id the registry resolves, sorted.
func (r *Registry) Models() []string {
	seen := map[string]bool{}
	for m := range builtin {
		seen[m] = true
	}
	for m := range r.runtime() {
		seen[m] = true
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
