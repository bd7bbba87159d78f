package gossip

import (
	"sync"

	gometrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// Suspicions and deaths as each gossip node of the process sees them.
// memberlist tells of them only through go-metrics, process-wide: Events
// installs a go-metrics sink once that counts the two it reports, by the
// node label every Node gives serf (which hands it to memberlist), and
// drops the rest.
var (
	eventsOnce sync.Once
	suspicions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_gossip_suspicions_total", Help: "Times this node's gossip view came to suspect another member (a probe went unanswered)."}, []string{"node"})
	deaths     = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shoal_gossip_dead_declarations_total", Help: "Times this node's gossip view declared another member dead (it did not refute a suspicion in time)."}, []string{"node"})
	nodeLabel  = "node"
	suspectKey = "memberlist.msg.suspect"
	deadKey    = "memberlist.msg.dead"
)

// Events returns the collectors of the process's gossip suspicions and
// deaths, installing the go-metrics sink that feeds them on the first
// call. Register them once per process.
func Events() []prometheus.Collector {
	eventsOnce.Do(func() {
		cfg := gometrics.DefaultConfig("")
		cfg.EnableHostname, cfg.EnableRuntimeMetrics, cfg.EnableServiceLabel = false, false, false
		// Only these two reach the sink.
		cfg.FilterDefault, cfg.AllowedPrefixes = false, []string{suspectKey, deadKey}
		gometrics.NewGlobal(cfg, eventSink{&gometrics.BlackholeSink{}})
	})
	return []prometheus.Collector{suspicions, deaths}
}

// eventSink is the go-metrics sink that counts suspicions and deaths.
type eventSink struct{ *gometrics.BlackholeSink }

func (eventSink) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	if len(key) != 3 || key[0] != "memberlist" || key[1] != "msg" {
		return
	}
	var c *prometheus.CounterVec
	switch key[2] {
	case "suspect":
		c = suspicions
	case "dead":
		c = deaths
	default:
		return
	}
	for _, l := range labels {
		if l.Name == nodeLabel {
			c.WithLabelValues(l.Value).Add(float64(val))
			return
		}
	}
}
