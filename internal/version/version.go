// Package version tells which tcpeek this is, from the build's own record of
// its version control state (runtime/debug.ReadBuildInfo): the one place the
// version is written is the repository's tags.
package version

import (
	"runtime/debug"
	"strings"
)

// String returns the version of the running program: the module version go
// build derived from the repository (a tag such as 1.2.0, or a
// pseudo-version such as 0.0.0-20261204160000-0123456789ab for a commit
// after the last tag, with +dirty when the tree had changes), without the
// leading v. A build without that record (go test, go run, a source tree
// without its .git) reports "devel", with the commit when it is known.
func String() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "devel"
	}
	v := "devel-" + rev[:min(len(rev), 12)]
	if modified == "true" {
		v += "-dirty"
	}
	return v
}
