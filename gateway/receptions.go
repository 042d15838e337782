package gateway

import "slices"

// MaxGatewayPoints bounds the uplink_gateway points of one uplink. A dense
// city network hears an uplink at a few dozen gateways; a message listing
// more is broken or hostile, and every extra point would be a write and a
// gateway_id tag value of its own. The strongest receptions are kept, the
// rest counted (uplink_gateways_dropped). Not a setting: it describes
// radio coverage, not a deployment.
const MaxGatewayPoints = 64

// dedupScan is the size up to which receptions are compared pairwise
// rather than through a map.
const dedupScan = 16

// receptions returns each named gateway's strongest reception once (a
// gateway with several antennas or boards reports one per antenna; two
// points of one gateway at one time would overwrite each other in an
// order the feed chose), in the order of first appearance, and at most
// MaxGatewayPoints of them, the strongest. dropped counts the distinct
// gateways left out. In the usual case, distinct ids and few of them, it
// returns gws itself.
func receptions(gws []GatewayRx) (out []GatewayRx, dropped int) {
	out = gws
	if dup(gws) {
		out = make([]GatewayRx, 0, min(len(gws), 2*MaxGatewayPoints))
		at := make(map[string]int, min(len(gws), 1024))
		for _, g := range gws {
			if g.ID == "" {
				continue
			}
			i, seen := at[g.ID]
			switch {
			case !seen:
				at[g.ID] = len(out)
				out = append(out, g)
			case stronger(g, out[i]):
				out[i] = g
			}
		}
	}
	if len(out) <= MaxGatewayPoints {
		return out, 0
	}
	sorted := slices.Clone(out)
	slices.SortStableFunc(sorted, func(a, b GatewayRx) int {
		switch {
		case stronger(a, b):
			return -1
		case stronger(b, a):
			return 1
		}
		return 0
	})
	return sorted[:MaxGatewayPoints], len(sorted) - MaxGatewayPoints
}

// dup reports whether gws names a gateway twice or has a reception without
// a gateway id: then receptions must build a list of its own.
func dup(gws []GatewayRx) bool {
	if len(gws) > dedupScan {
		return true // checked through the map; rare enough not to matter
	}
	for i, g := range gws {
		if g.ID == "" {
			return true
		}
		for _, h := range gws[:i] {
			if h.ID == g.ID {
				return true
			}
		}
	}
	return false
}

// stronger orders receptions as Radio.Best does: RSSI, then SNR.
func stronger(a, b GatewayRx) bool {
	return a.RSSI > b.RSSI || (a.RSSI == b.RSSI && a.SNR > b.SNR)
}

// GatewayCount is the number of distinct gateways that received the
// uplink, the uplink point's gateways field; a reception without a gateway
// id counts as a gateway of its own.
func (r *Radio) GatewayCount() int {
	if !dup(r.Gateways) {
		return len(r.Gateways)
	}
	ids := make(map[string]struct{}, min(len(r.Gateways), 1024))
	anon := 0
	for _, g := range r.Gateways {
		if g.ID == "" {
			anon++
		} else {
			ids[g.ID] = struct{}{}
		}
	}
	return len(ids) + anon
}
