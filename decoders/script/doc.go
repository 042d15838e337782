// Package script runs JavaScript payload codecs, written for The Things
// Stack or ChirpStack, as decoders.Decoder on the goja engine, so an
// operator can add or fix a device's decoder without a release.
//
// Three codec styles are recognised by the function a file defines:
//
//   - decodeUplink(input), with input {bytes, fPort, recvTime, variables}:
//     The Things Stack and ChirpStack v4. It returns {data, errors,
//     warnings}. A file may also define normalizeUplink(input), input
//     {data}, returning {data, errors, warnings} where data is one
//     normalized-payload object or an array of them (The Things Stack).
//   - Decode(fPort, bytes, variables): ChirpStack v3, returning the data
//     object itself.
//   - Decoder(bytes, fPort): The Things Network v2, returning the data
//     object itself.
//
// Output is handled as those servers handle it: a non-empty errors array
// fails the uplink (a *RejectedError, which the pipeline dead-letters),
// warnings become Result.Warnings, and normalizeUplink's output is checked
// against the catalogue (decoders.Normalize) and becomes Result.Samples.
// Without normalizeUplink, Options.Mappings may lift data keys onto
// catalogue quantities.
//
// Codecs are untrusted code. Every call is time-boxed (Options.Timeout,
// enforced with goja's Interrupt), recursion is bounded
// (Options.MaxCallDepth), and a throw, a timeout or even a Go panic in the
// engine costs the one uplink an error, never the daemon.
//
// Every call runs in a fresh state, as in The Things Stack and ChirpStack:
// whatever a codec keeps in globals, built-in prototypes, globalThis or
// closures never reaches another uplink or device. A codec that passes a
// static check runs on a locked runtime (reuse.go): its top level run
// once, compiled in strict mode, everything reachable frozen, so that a
// call either does what it does on a fresh runtime or fails, and a failed
// call runs again on a fresh runtime. Other codecs get a fresh runtime per
// call: set up, the file's top level run, the call made, discarded.
// Codec.RunReused decodes in one reused unlocked runtime instead, for
// import self-tests to spot codecs that depend on state.
//
// Beyond ECMAScript a codec gets console.log, info, warn, error and debug
// (to the debug log with codec, model and DevEUI, bounded per call) and
// ChirpStack v4's Buffer (Node's Buffer API, which ChirpStack imports
// into every codec), built on first use in a call; each is set up only
// for codecs whose source names it. ChirpStack evaluates a codec as an
// ES module (strict mode) with Buffer imported, and defines no console;
// here a codec runs as a script, which both servers' codecs accept.
//
// Limits goja cannot enforce: a single built-in call (a huge
// String.prototype.repeat, a sort of a giant array) is not interruptible,
// and memory is not bounded beyond what the time limit allows.
//
// A Watcher keeps a folder of codecs (config decoders.scripts), one file
// per model named <model-id>.js, registered in a decoders.Registry, where
// they take precedence over the native decoders; it reloads changed,
// added and removed files while the daemon runs.
//
// The package does no I/O beyond reading codec files: no network, no
// writes, and codecs get no I/O either (console.* goes to the debug log).
package script
