package influx

import "time"

// Config is the InfluxDB connection and batching policy.
type Config struct {
	URL    string `yaml:"url"`    // http://127.0.0.1:8086
	Org    string `yaml:"org"`    // ignored by InfluxDB 1.8
	Bucket string `yaml:"bucket"` // "db/rp" on InfluxDB 1.8
	Token  string `yaml:"token"`  // "user:password" on InfluxDB 1.8 with auth
	// BatchSize is the most points in one write request (default 5000).
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is how long a point waits for its batch to fill
	// (default 100ms).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Timeout bounds one write request (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// Gzip compresses request bodies (default true).
	Gzip *bool `yaml:"gzip"`
}
