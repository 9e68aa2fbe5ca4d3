// Package logging writes tcpeek's diagnostics: one line per event, filtered
// by a syslog level, to stderr or to syslog.
package logging

import (
	"fmt"
	"io"
	"log/syslog"
	"strconv"
	"strings"
	"sync"
)

// Level is a syslog severity; lower is more severe.
type Level int

// Levels, as syslog numbers them.
const (
	Emerg Level = iota
	Alert
	Crit
	Err
	Warning
	Notice
	Info
	Debug
)

var levelNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// String returns the level's name (emerg … debug).
func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// ParseLevel accepts a level name (emerg, alert, crit, err, warning, notice,
// info, debug, also error and warn), optionally with the LOG_ prefix, in any
// case, or its number 0-7.
func ParseLevel(s string) (Level, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "log_")
	if n, err := strconv.Atoi(t); err == nil {
		if n >= 0 && n <= 7 {
			return Level(n), nil
		}
		return 0, fmt.Errorf("log level %q is out of range 0-7", s)
	}
	switch t {
	case "error":
		return Err, nil
	case "warn":
		return Warning, nil
	}
	for i, n := range levelNames {
		if t == n {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("log level %q is not one of emerg, alert, crit, err, warning, notice, info, debug or 0-7", s)
}

// Logger writes diagnostics at or above its level. It is safe for
// concurrent use.
type Logger struct {
	mu     sync.Mutex
	level  Level
	w      io.Writer
	prefix string
	sys    *syslog.Writer
}

// New returns a Logger writing lines "prefix: message" to w.
func New(w io.Writer, prefix string, level Level) *Logger {
	return &Logger{w: w, prefix: prefix, level: level}
}

// UseSyslog sends the diagnostics to the local syslog daemon instead, with
// the given tag (facility daemon).
func (l *Logger) UseSyslog(tag string) error {
	s, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_NOTICE, tag)
	if err != nil {
		return fmt.Errorf("cannot reach syslog: %w", err)
	}
	l.mu.Lock()
	l.sys = s
	l.mu.Unlock()
	return nil
}

// Enabled tells whether messages of level lv are written.
func (l *Logger) Enabled(lv Level) bool { return l != nil && lv <= l.level }

// Logf writes one message at level lv.
func (l *Logger) Logf(lv Level, format string, args ...any) {
	if !l.Enabled(lv) {
		return
	}
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		switch {
		case lv <= Crit:
			_ = l.sys.Crit(msg)
		case lv == Err:
			_ = l.sys.Err(msg)
		case lv == Warning:
			_ = l.sys.Warning(msg)
		case lv == Notice:
			_ = l.sys.Notice(msg)
		case lv == Info:
			_ = l.sys.Info(msg)
		default:
			_ = l.sys.Debug(msg)
		}
		return
	}
	tag := ""
	switch {
	case lv == Warning:
		tag = "warning: "
	case lv <= Err:
		tag = "error: "
	}
	fmt.Fprintf(l.w, "%s: %s%s\n", l.prefix, tag, msg)
}

// Errorf logs at level err.
func (l *Logger) Errorf(format string, args ...any) { l.Logf(Err, format, args...) }

// Warnf logs at level warning.
func (l *Logger) Warnf(format string, args ...any) { l.Logf(Warning, format, args...) }

// Noticef logs at level notice.
func (l *Logger) Noticef(format string, args ...any) { l.Logf(Notice, format, args...) }

// Infof logs at level info.
func (l *Logger) Infof(format string, args ...any) { l.Logf(Info, format, args...) }

// Debugf logs at level debug.
func (l *Logger) Debugf(format string, args ...any) { l.Logf(Debug, format, args...) }
