// Package metrics exposes tcpeek's counters to Prometheus (SPEC §9): a
// Collector, and the Server of /metrics, hardened as an exporter's
// (bounded connections, timeouts, TLS and basic authentication).
//
// The Collector reads the same snapshot as the stats socket at every scrape,
// so /metrics and STATS always agree. Labels are filter names and fixed
// enumerations only, never addresses or ports: the number of series is
// bounded by the number of filters given on the command line.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tcpeek/tcpeek/internal/stats"
)

const namespace = "tcpeek"

var (
	handshakesDesc = prometheus.NewDesc(namespace+"_handshakes_total",
		"Connection attempts that ended, by filter and result (success, timeout, reject, unreach, abort).",
		[]string{"filter", "result"}, nil)
	retransDesc = prometheus.NewDesc(namespace+"_handshake_retransmissions_total",
		"Ended connection attempts that needed at least one retransmitted SYN (segment=syn) or SYN/ACK (segment=synack).",
		[]string{"filter", "segment"}, nil)
	durationDesc = prometheus.NewDesc(namespace+"_handshake_duration_seconds",
		"Time from the first SYN to the end of the handshake, of successful attempts.",
		[]string{"filter"}, nil)
	synackDesc = prometheus.NewDesc(namespace+"_synack_latency_seconds",
		"Time from the first SYN to the first SYN/ACK, of attempts that saw one.",
		[]string{"filter"}, nil)
	inProgressDesc = prometheus.NewDesc(namespace+"_sessions_in_progress",
		"Handshakes in progress.", nil, nil)
	overflowDesc = prometheus.NewDesc(namespace+"_session_table_overflows_total",
		"SYNs that could not be tracked at all (0 unless a bound other than --max-sessions is hit).", nil, nil)
	displacedDesc = prometheus.NewDesc(namespace+"_sessions_displaced_total",
		"Handshakes in progress displaced by a newer SYN because --max-sessions were in progress (a SYN flood); they end with no result.", nil, nil)
	filterDisplacedDesc = prometheus.NewDesc(namespace+"_handshakes_displaced_total",
		"Handshakes in progress displaced from the full session table, by filter; they end with no result.",
		[]string{"filter"}, nil)
	evictedDesc = prometheus.NewDesc(namespace+"_sessions_evicted_total",
		"Ended handshakes forgotten early because the memory of ended ones was full: a retry of one counts as a new attempt.", nil, nil)
	kernelFilterDesc = prometheus.NewDesc(namespace+"_kernel_filter_info",
		"The kernel filter of the live capture (filter=ebpf|classic; none when reading a file); 1.", []string{"filter"}, nil)
	packetsDesc = prometheus.NewDesc(namespace+"_capture_packets_total",
		"Packets received by the capture (live: those that passed the kernel filter).", nil, nil)
	dropsDesc = prometheus.NewDesc(namespace+"_capture_drops_total",
		"Packets lost before tcpeek saw them: by=kernel (capture buffer full), by=interface (driver).",
		[]string{"by"}, nil)
	badSumDesc = prometheus.NewDesc(namespace+"_bad_checksum_total",
		"Packets dropped for a wrong checksum (-c).", nil, nil)
	duplicatesDesc = prometheus.NewDesc(namespace+"_capture_duplicates_total",
		"SYN and SYN/ACK capture copies (mirroring), not counted as retransmissions.", nil, nil)
)

// Collector is a prometheus.Collector of tcpeek's counters.
type Collector struct {
	snapshot func() stats.Snapshot
}

// NewCollector returns a Collector that reads snapshot at every scrape.
func NewCollector(snapshot func() stats.Snapshot) *Collector {
	return &Collector{snapshot: snapshot}
}

// Describe sends the descriptors of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{handshakesDesc, retransDesc, durationDesc, synackDesc,
		filterDisplacedDesc, inProgressDesc, overflowDesc, displacedDesc, evictedDesc, packetsDesc,
		dropsDesc, badSumDesc, duplicatesDesc, kernelFilterDesc} {
		ch <- d
	}
}

// Collect sends the metrics of one snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.snapshot()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for i := range snap.Filters {
		f := &snap.Filters[i]
		name := f.Name
		counter(handshakesDesc, f.Success.Total, name, "success")
		counter(handshakesDesc, f.Failure.Timeout, name, "timeout")
		counter(handshakesDesc, f.Failure.Reject, name, "reject")
		counter(handshakesDesc, f.Failure.Unreach, name, "unreach")
		counter(handshakesDesc, f.Failure.Abort, name, "abort")
		counter(retransDesc, f.Success.DupSYN+f.Failure.DupSYN, name, "syn")
		counter(retransDesc, f.Success.DupSYNACK+f.Failure.DupSYNACK, name, "synack")
		counter(filterDisplacedDesc, f.Displaced, name)
		ch <- histogram(durationDesc, &f.Handshake, name)
		ch <- histogram(synackDesc, &f.SynAck, name)
	}
	ch <- prometheus.MustNewConstMetric(inProgressDesc, prometheus.GaugeValue, float64(snap.Sessions.InProgress))
	counter(overflowDesc, snap.Sessions.Overflow)
	counter(displacedDesc, snap.Sessions.Displaced)
	counter(evictedDesc, snap.Sessions.Evicted)
	kf := snap.Capture.KernelFilter
	if kf == "" {
		kf = "none" // -r
	}
	ch <- prometheus.MustNewConstMetric(kernelFilterDesc, prometheus.GaugeValue, 1, kf)
	counter(packetsDesc, snap.Capture.Packets)
	counter(dropsDesc, snap.Capture.Drops, "kernel")
	counter(dropsDesc, snap.Capture.IfDrops, "interface")
	counter(badSumDesc, snap.Capture.BadChecksum)
	counter(duplicatesDesc, snap.Capture.Duplicates)
}

// histogram converts a stats histogram to a Prometheus one, in seconds, with
// the buckets of stats.PrometheusBounds.
func histogram(d *prometheus.Desc, h *stats.Histogram, label string) prometheus.Metric {
	cum := h.Cumulative()
	buckets := make(map[float64]uint64, len(cum))
	for i, b := range stats.PrometheusBounds {
		buckets[b] = cum[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, float64(h.Sum)/1e9, buckets, label)
}

// NewRegistry returns a registry with tcpeek's collector, tcpeek_build_info,
// and the standard Go and process collectors.
func NewRegistry(c *Collector, version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	reg.MustRegister(collectors.NewGoCollector())
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "A metric with a constant '1' value labelled by version and Go version of tcpeek.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}
