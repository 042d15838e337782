package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
)

// influxProbeEvery is how often the InfluxDB monitor asks whether the
// target takes writes: /readyz reports the last answer, so a load
// balancer polling it does not multiply requests to InfluxDB.
const influxProbeEvery = 10 * time.Second

// readyChecks are /readyz's conditions, each reporting why it fails:
// every MQTT source connected and subscribed; InfluxDB taking writes into
// the target (from the monitor's last probe and the sink's own writes);
// the spool taking records; the registry's database answering; the codec
// workers.
//
// InfluxDB unreachable while the spool takes the points is degraded, not
// unready: the daemon still accepts and keeps every uplink and delivers
// them when InfluxDB is back, so a load balancer should keep sending. A
// missing database or refused credentials is unready: nothing will be
// written until an operator acts, and the entry says what to do.
func (d *Daemon) readyChecks(cfg *config.Config) []httpapi.Check {
	var checks []httpapi.Check
	for i, src := range d.sources {
		r, ok := src.(interface{ Ready() bool })
		if !ok || i >= len(cfg.Sources) {
			continue
		}
		name := cfg.Sources[i].Name()
		checks = append(checks, httpapi.Check{Name: "source:" + name, Check: func(context.Context) error {
			if !r.Ready() {
				return errors.New("not connected to its broker (or not subscribed) yet")
			}
			return nil
		}})
	}
	checks = append(checks,
		httpapi.Check{Name: "influx", Check: func(context.Context) error { return d.influxReady() }},
		httpapi.Check{Name: "spool", Check: func(context.Context) error { return d.spool.Health() }},
	)
	if d.ops != nil && d.ops.store != nil {
		store := d.ops.store
		checks = append(checks, httpapi.Check{Name: "registry", Check: store.Ping})
	}
	return append(checks, d.codecsCheck()...) // daemon_codecs.go
}

// influxReady turns the monitor's last probe into /readyz's influx entry.
func (d *Daemon) influxReady() error {
	st := d.influxMon.State()
	res := st.Last
	if res.At.IsZero() {
		return errors.New("InfluxDB not probed yet (the first probe runs at start)")
	}
	pending := d.spool.Stats().Pending
	// A write refused after the last probe is fresher evidence than it:
	// the database dropped, the token revoked.
	if ws := d.influx.Stats(); ws.LastErrorTime.After(res.At) && operatorStatus(ws.LastError) {
		return fmt.Errorf("InfluxDB refused a write at %s (%s); %s in the spool", ws.LastErrorTime.UTC().Format(time.RFC3339), ws.LastError, records(pending))
	}
	switch {
	case res.Err == nil:
		return nil
	case res.Unreachable():
		err := fmt.Errorf("InfluxDB unreachable since %s, %s spooled, delivered when it is back (%v)", st.DownSince.UTC().Format(time.RFC3339), records(pending), res.Err)
		if d.spool.Health() == nil {
			return fmt.Errorf("%w: %w", httpapi.ErrDegraded, err)
		}
		return err
	case st.CreateErr != nil:
		return fmt.Errorf("%w; %s in the spool; influx.create_database: %w", res.Err, records(pending), st.CreateErr)
	}
	return fmt.Errorf("%w; %s in the spool", res.Err, records(pending))
}

func records(n uint64) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

// operatorStatus reports a sink error (WriteStats.LastError) that only an
// operator can clear: credentials or a missing database/bucket.
func operatorStatus(lastError string) bool {
	for _, p := range []string{"HTTP 401", "HTTP 403", "HTTP 404"} {
		if strings.HasPrefix(lastError, p) {
			return true
		}
	}
	return false
}
