package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
)

// gmetricTimeout bounds one run of gmetric.
var gmetricTimeout = 10 * time.Second

// gmetricItems are the counters sent to Ganglia for each filter, in order.
// The totals let Ganglia chart a failure ratio.
var gmetricItems = [...]struct{ section, item string }{
	{"success", "total"},
	{"success", "dupsyn"},
	{"success", "dupsynack"},
	{"failure", "total"},
	{"failure", "timeout"},
	{"failure", "reject"},
	{"failure", "unreach"},
	{"failure", "abort"},
}

// metric is one value to send with gmetric.
type metric struct {
	name  string
	value uint64
}

// args returns gmetric's arguments for m, with "-c conf" first when conf is
// not empty. The name always begins with "tcpeek_", so it can never be
// taken for an option.
func (m metric) args(conf string) []string {
	var a []string
	if conf != "" {
		a = append(a, "-c", conf)
	}
	return append(a, "-n", m.name, "-v", strconv.FormatUint(m.value, 10), "-t", "uint32", "-u", "sessions")
}

// gmetricErrors says that gmetric failed for some metrics; each failure
// has been reported already.
type gmetricErrors struct{ failed []string }

func (e *gmetricErrors) Error() string {
	return fmt.Sprintf("gmetric failed for %d metrics: %v", len(e.failed), e.failed)
}

// sendGmetric asks tcpeek on path for REFRESH and runs gmetric (found as
// gmetricPath, given "-c conf" when conf is not empty) once for each counter
// of each filter. gmetric is looked up, and conf opened, before REFRESH is
// sent, so that a missing gmetric or configuration loses no change. A
// gmetric that fails is reported on stderr, naming the metric, and the
// others are still sent.
func sendGmetric(path, gmetricPath, conf string, stdout, stderr io.Writer) error {
	prog, err := exec.LookPath(gmetricPath)
	if err != nil {
		return fmt.Errorf("cannot run gmetric: %w (install ganglia-monitor, or give --gmetric-path)", err)
	}
	if conf != "" {
		f, err := os.Open(conf)
		if err != nil {
			return fmt.Errorf("cannot read gmetric's configuration: %w (give --gmetric-conf a gmond.conf that names the channels to send on)", err)
		}
		f.Close()
	}
	answer, err := query(path, protocol.Request{Verb: protocol.Refresh})
	if err != nil {
		return err
	}
	metrics, err := parseRefresh(answer)
	if err != nil {
		return fmt.Errorf("tcpeek on %s: cannot read its REFRESH answer: %w", path, err)
	}
	var failed []string
	for _, m := range metrics {
		if err := runGmetric(prog, m.args(conf), stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "tcpeekstat: gmetric for %s (value %d) failed: %v\n", m.name, m.value, err)
			failed = append(failed, m.name)
		}
	}
	if len(failed) > 0 {
		return &gmetricErrors{failed}
	}
	return nil
}

// runGmetric runs gmetric with args, directly: no shell ever sees the
// metric's name.
func runGmetric(prog string, args []string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), gmetricTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second // a child that keeps the output open
	err := cmd.Run()
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("no exit after %v: %w", gmetricTimeout, err)
	}
	return err
}

// parseRefresh turns the REFRESH answer — an array of one-key objects,
// {"NAME":{"success":{…},"failure":{…}}} — into the metrics to send, in the
// order of the filters and of gmetricItems. A counter missing from the
// answer is not sent; so nothing is sent for an object without them (the
// "pcap" object of GET).
func parseRefresh(answer []byte) ([]metric, error) {
	var filters []map[string]map[string]map[string]uint64
	if err := json.Unmarshal(answer, &filters); err != nil {
		return nil, err
	}
	var metrics []metric
	for _, f := range filters {
		names := make([]string, 0, len(f))
		for name := range f {
			names = append(names, name)
		}
		sort.Strings(names) // one name per object; sorted should there be more
		for _, name := range names {
			for _, it := range gmetricItems {
				v, ok := f[name][it.section][it.item]
				if !ok {
					continue
				}
				metrics = append(metrics, metric{"tcpeek_" + name + "_" + it.section + "_" + it.item, v})
			}
		}
	}
	return metrics, nil
}
