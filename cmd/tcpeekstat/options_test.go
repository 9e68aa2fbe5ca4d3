package main

import (
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	def := options{socket: defaultSocket, gmetricPath: "gmetric", interval: time.Second}
	with := func(change func(o *options)) options {
		o := def
		change(&o)
		return o
	}
	for _, tt := range []struct {
		args []string
		want options
	}{
		{nil, def},
		{[]string{"-t"}, with(func(o *options) { o.top = 10 })},
		{[]string{"--top"}, with(func(o *options) { o.top = 10 })},
		{[]string{"-t20"}, with(func(o *options) { o.top = 20 })},
		{[]string{"-t=20"}, with(func(o *options) { o.top = 20 })},
		{[]string{"--top=1000"}, with(func(o *options) { o.top = 1000 })},
		{[]string{"-jt5"}, with(func(o *options) { o.top, o.json = 5, true })},
		{[]string{"-tj"}, with(func(o *options) { o.top, o.json = 10, true })},
		// The value of an option that takes one is never read as -tN.
		{[]string{"-U", "-t5", "-t7"}, with(func(o *options) { o.socket, o.top = "-t5", 7 })},
		{[]string{"--socket", "-t5"}, with(func(o *options) { o.socket = "-t5" })},
		{[]string{"-Ut5"}, with(func(o *options) { o.socket = "t5" })},
		{[]string{"-jUt5"}, with(func(o *options) { o.socket, o.json = "t5", true })},
		{[]string{"-w"}, with(func(o *options) { o.watch = true })},
		{[]string{"--watch", "--interval", "2"}, with(func(o *options) { o.watch, o.interval = true, 2*time.Second })},
		{[]string{"-w", "--interval=0.5"}, with(func(o *options) { o.watch, o.interval = true, 500*time.Millisecond })},
		{[]string{"-w", "--interval=100ms"}, with(func(o *options) { o.watch, o.interval = true, 100*time.Millisecond })},
		{[]string{"-w", "--interval=1h"}, with(func(o *options) { o.watch, o.interval = true, time.Hour })},
		{[]string{"-g", "--gmetric-conf", "/etc/ganglia/gmond.conf"}, with(func(o *options) { o.gmetric, o.gmetricConf = true, "/etc/ganglia/gmond.conf" })},
	} {
		o, err := parseOptions(tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if *o != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.args, *o, tt.want)
		}
	}
}

func TestUsageNewOptions(t *testing.T) {
	hint := "Try 'tcpeekstat --help' for more information.\n"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "20"}, `unexpected argument "20" (write --top=20 or -t20)`},
		{[]string{"--top", "20"}, `unexpected argument "20" (write --top=20 or -t20)`},
		{[]string{"--top=0"}, `--top: N is a number from 1 to 1000, not "0"`},
		{[]string{"-t1001"}, `--top: N is a number from 1 to 1000, not "1001"`},
		{[]string{"--top=ten"}, `--top: N is a number from 1 to 1000, not "ten"`},
		{[]string{"--top="}, `--top: N is a number from 1 to 1000, not ""`},
		{[]string{"-tx"}, `unknown shorthand flag: 'x' in -x`}, // pflag's words
		{[]string{"--", "-t5"}, `unexpected argument "-t5"`},
		{[]string{"-t", "-w"}, `use one of -t, -w and -g at a time`},
		{[]string{"-w", "-g"}, `use one of -t, -w and -g at a time`},
		{[]string{"-gt"}, `use one of -t, -w and -g at a time`},
		{[]string{"-jw"}, `-j and -w cannot be used together`},
		{[]string{"--interval=2"}, `--interval is for --watch`},
		{[]string{"-w", "--interval=0.05"}, `--interval: "0.05" is not between 100ms and 1h0m0s`},
		{[]string{"-w", "--interval=2h"}, `--interval: "2h" is not between 100ms and 1h0m0s`},
		{[]string{"-w", "--interval=1e9"}, `--interval: "1e9" is not between 100ms and 1h0m0s`},
		{[]string{"-w", "--interval=-1"}, `--interval: "-1" is not between 100ms and 1h0m0s`},
		{[]string{"-w", "--interval=soon"}, `--interval: "soon" is neither seconds (2, 0.5) nor a duration (500ms, 1m)`},
		{[]string{"-w", "--interval=NaN"}, `--interval: "NaN" is neither seconds (2, 0.5) nor a duration (500ms, 1m)`},
		{[]string{"--gmetric-conf=/etc/gmond.conf"}, `--gmetric-conf is for -g`},
		{[]string{"-g", "--gmetric-conf="}, `--gmetric-conf needs a file`},
	} {
		code, stdout, stderr := tcpeekstat(tt.args...)
		want := "tcpeekstat: " + tt.want + "\n" + hint
		if code != 2 || stdout != "" || stderr != want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, nothing, %q", tt.args, code, stdout, stderr, want)
		}
	}
}
