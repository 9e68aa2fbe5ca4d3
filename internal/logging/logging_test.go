package logging

import (
	"bytes"
	"testing"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    Level
		wantErr bool
	}{
		{"emerg", Emerg, false}, {"LOG_ALERT", Alert, false}, {"crit", Crit, false}, {"err", Err, false},
		{"error", Err, false}, {"Warning", Warning, false}, {"warn", Warning, false}, {"notice", Notice, false},
		{"log_info", Info, false}, {"debug", Debug, false}, {"0", Emerg, false}, {"7", Debug, false},
		{"LOG_5", Notice, false}, {"8", 0, true}, {"-1", 0, true}, {"loud", 0, true}, {"", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseLevel(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestLogger(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, "tcpeek", Notice)
	l.Debugf("hidden %d", 1)
	l.Infof("hidden")
	l.Noticef("shown %s", "notice")
	l.Warnf("careful\n")
	l.Errorf("broken")
	want := "tcpeek: shown notice\ntcpeek: warning: careful\ntcpeek: error: broken\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	if !l.Enabled(Notice) || l.Enabled(Info) {
		t.Error("Enabled disagrees with the level")
	}
}
