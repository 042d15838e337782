package devices

// MatchText reports whether any of ss matches the query, as Match
// matches a device's fields: other lists (gateways) search the same way.
func (q Search) MatchText(ss ...string) bool {
	if q == "" {
		return true
	}
	for _, s := range ss {
		if containsFold(s, string(q)) {
			return true
		}
	}
	return false
}
