// Package gmondtest holds what tcpeek's tests that run a real Ganglia gmond
// share: a configuration for a gmond alone on 127.0.0.1, and the reading of
// the XML it serves. Only tests import it.
package gmondtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Config returns a configuration for one gmond that hears itself on
// 127.0.0.1 only (UDP port udpPort, XML on TCP port tcpPort): no multicast,
// no metric modules, in the foreground.
func Config(udpPort, tcpPort int) string {
	return fmt.Sprintf(`globals {
  daemonize = no
  setuid = no
  debug_level = 0
  mute = no
  deaf = no
  host_dmax = 300
  cleanup_threshold = 60
  gexec = no
  send_metadata_interval = 0
}
cluster {
  name = "tcpeek-test"
}
udp_send_channel {
  host = 127.0.0.1
  port = %[1]d
}
udp_recv_channel {
  bind = 127.0.0.1
  port = %[1]d
}
tcp_accept_channel {
  bind = 127.0.0.1
  port = %[2]d
}
`, udpPort, tcpPort)
}

// document is the part of gmond's XML the tests read.
type document struct {
	Clusters []struct {
		Hosts []struct {
			Metrics []struct {
				Name  string `xml:"NAME,attr"`
				Val   string `xml:"VAL,attr"`
				Type  string `xml:"TYPE,attr"`
				Units string `xml:"UNITS,attr"`
			} `xml:"METRIC"`
		} `xml:"HOST"`
	} `xml:"CLUSTER"`
}

// Metrics parses the XML a gmond sends on its TCP port and returns
// "VAL TYPE UNITS" by metric name.
func Metrics(b []byte) (map[string]string, error) {
	var doc document
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.CharsetReader = latin1 // gmond declares ISO-8859-1
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("gmond's XML: %w", err)
	}
	m := make(map[string]string)
	for _, cl := range doc.Clusters {
		for _, h := range cl.Hosts {
			for _, mt := range h.Metrics {
				m[mt.Name] = mt.Val + " " + mt.Type + " " + mt.Units
			}
		}
	}
	return m, nil
}

// latin1 converts ISO-8859-1 to UTF-8 for the XML decoder.
func latin1(charset string, r io.Reader) (io.Reader, error) {
	if !strings.EqualFold(charset, "ISO-8859-1") {
		return nil, fmt.Errorf("unexpected charset %q", charset)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	for _, c := range b {
		out.WriteRune(rune(c))
	}
	return strings.NewReader(out.String()), nil
}

// Diff lists, sorted, how the metrics gmond reports (as Metrics returns
// them) differ from want; it ignores metrics want does not name.
func Diff(got, want map[string]string) []string {
	var diff []string
	for name, w := range want {
		if g, ok := got[name]; !ok {
			diff = append(diff, name+": missing")
		} else if g != w {
			diff = append(diff, fmt.Sprintf("%s: %q, want %q", name, g, w))
		}
	}
	sort.Strings(diff)
	return diff
}
