// Package ttsstorage fetches uplinks back from The Things Stack's Storage
// Integration, to fill what a QoS 0 MQTT feed lost while sensorgate was
// disconnected.
//
// The Storage Integration keeps an application's ApplicationUp messages
// (30 days on The Things Stack Cloud) and serves them at
//
//	GET {url}/api/v3/as/applications/{application_id}/packages/storage/uplink_message
//	    ?after=RFC3339&before=RFC3339&limit=N&order=received_at
//	Authorization: Bearer {api_key}   (an API key with the right to read application traffic)
//	Accept: text/event-stream
//
// as newline-delimited JSON, one {"result": ApplicationUp} object per line
// ({"error": Status} when the stream fails part-way). Each result is
// byte for byte what the MQTT server publishes on v3/…/devices/…/up, so
// gateway/mqtt's The Things Stack parser reads it and the pipeline writes
// the same points as for the live message: an uplink fetched that was
// also received live overwrites itself in InfluxDB instead of doubling.
//
// Client pages through a time range (after the last received_at of each
// page, a page of page_size results), reads every response as a stream
// of lines of bounded length (never a whole page in memory), waits
// request_interval between requests and what a 429's Retry-After or
// X-Rate-Limit-Retry asks, and bounds a stalled server by timeout.
// Backfill runs a range through a handler as the MQTT source does, and
// Cursors keeps per source the time up to which everything is known to
// be durable, in one small file under state_dir, so a restart resumes.
//
// It must not decode payloads, look devices up or write to InfluxDB:
// everything past the Uplink happens behind gateway.Handler.
package ttsstorage
