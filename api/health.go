package api

// Health is the answer of GET /readyz, on a router's API address and on
// every process's --metrics address: whether the process does its part,
// and why or why not, one check per router or storage node the process
// runs. Ready is the conjunction of the checks; the status is 200 when
// ready and 503 when not.
//
//	{"ready": false, "checks": [
//	  {"name": "router", "ready": false,
//	   "why": "the meta group g1 did not answer a read within 2s: ..."}]}
type Health struct {
	Ready  bool          `json:"ready"`
	Checks []HealthCheck `json:"checks"`
}

// HealthCheck is one router's or storage node's readiness.
type HealthCheck struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
	Why   string `json:"why"`
}

// HealthOf combines checks into one answer.
func HealthOf(checks []HealthCheck) Health {
	h := Health{Ready: len(checks) > 0, Checks: checks}
	if h.Checks == nil {
		h.Checks = []HealthCheck{}
	}
	for _, c := range checks {
		h.Ready = h.Ready && c.Ready
	}
	return h
}
