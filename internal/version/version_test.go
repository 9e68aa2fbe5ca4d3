package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	clean := debug.BuildSetting{Key: "vcs.modified", Value: "false"}
	for _, tc := range []struct {
		main     string
		settings []debug.BuildSetting
		want     string
	}{
		{"v1.2.0", nil, "1.2.0"},
		{"v0.0.0-20261204160000-0123456789ab+dirty", []debug.BuildSetting{rev, dirty}, "0.0.0-20261204160000-0123456789ab+dirty"},
		{"(devel)", []debug.BuildSetting{rev, clean}, "devel-0123456789ab"},
		{"(devel)", []debug.BuildSetting{rev, dirty}, "devel-0123456789ab-dirty"},
		{"", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}, "devel-abc"},
		{"(devel)", nil, "devel"},
	} {
		bi := &debug.BuildInfo{Main: debug.Module{Version: tc.main}, Settings: tc.settings}
		if got := fromBuildInfo(bi); got != tc.want {
			t.Errorf("main %q, settings %v: %q, want %q", tc.main, tc.settings, got, tc.want)
		}
	}
}
