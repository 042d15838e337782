package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Instance is one sensorgate process sharing the registry, as its last
// heartbeat said.
type Instance struct {
	ID        string           `json:"id"`
	Version   string           `json:"version"`
	Started   time.Time        `json:"started"`
	Heartbeat time.Time        `json:"last_heartbeat"`
	Sources   []InstanceSource `json:"sources"`
}

// InstanceSource is a source of an instance and whether it was connected
// at the heartbeat (nil: a source without a connection, a UDP port).
type InstanceSource struct {
	Name      string `json:"name"`
	Connected *bool  `json:"connected"`
}

// maxInstances bounds the heartbeat listing: rows of instances that
// stopped are deleted a day after their last heartbeat, and a listing
// shows the most recent ones.
const maxInstances = 100

// Heartbeat records in (its Heartbeat set to now by the caller) in the
// instances table and returns every instance heard in the last day, most
// recent heartbeat first. Without a shared registry it returns in alone.
func (s *Store) Heartbeat(ctx context.Context, in Instance) ([]Instance, error) {
	if s.shared == nil {
		return []Instance{in}, nil
	}
	src, err := json.Marshal(in.Sources)
	if err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO instances (id, version, started_at, heartbeat_at, sources) VALUES (?, ?, ?, ?, ?)`,
		in.ID, in.Version, in.Started.UnixMilli(), in.Heartbeat.UnixMilli(), string(src)); err != nil {
		return nil, fmt.Errorf("devices: heartbeat via %s: %w", s.path, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, version, started_at, heartbeat_at, sources FROM instances
		WHERE heartbeat_at >= ? ORDER BY heartbeat_at DESC, id LIMIT ?`, in.Heartbeat.Add(-healthKeep).UnixMilli(), maxInstances)
	if err != nil {
		return nil, fmt.Errorf("devices: list instances via %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		var (
			i         Instance
			start, hb int64
			sources   string
		)
		if err := rows.Scan(&i.ID, &i.Version, &start, &hb, &sources); err != nil {
			return nil, fmt.Errorf("devices: list instances via %s: %w", s.path, err)
		}
		i.Started, i.Heartbeat = time.UnixMilli(start).UTC(), time.UnixMilli(hb).UTC()
		_ = json.Unmarshal([]byte(sources), &i.Sources) // a row another version wrote differently shows without sources
		out = append(out, i)
	}
	return out, rows.Err()
}
