// Package codecs brings JavaScript codecs into a decoders.scripts folder
// and checks them: it finds a device's codec in a device repository (The
// Things Network's lorawan-devices or ChirpStack's device profiles, a
// local checkout or an http(s) base URL), runs it on the examples the
// repository bundles as the repositories' own test harnesses do, and
// writes it as <vendor>-<device>.js only when they pass. List names every
// model a device may use, built-in or a codec in the folder.
//
// Repository files are untrusted input: a download is bounded, and a
// codec id or file name is one plain path element, never a way out of
// the vendor folder. Codecs are compiled and run with decoders/script in
// this process, each call in a fresh state as the daemon runs them.
//
// It must not import gateway/* or config: cmd/sensorgate parses the flags
// and calls it.
package codecs
