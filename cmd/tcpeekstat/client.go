package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/tcpeek/tcpeek/internal/protocol"
)

// timeout bounds the whole exchange with tcpeek: connecting, sending the
// request and reading the answer.
var timeout = 5 * time.Second

// maxAnswer bounds the answer read from the socket.
const maxAnswer = 16 << 20

// query sends one request to the tcpeek listening on path and returns its
// answer, one line of JSON. An answer that is an error object is an error.
func query(path string, req protocol.Request) ([]byte, error) {
	request := req.String()
	deadline := time.Now().Add(timeout)
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, dialError(path, err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, request+"\n"); err != nil {
		return nil, exchangeError(path, request, err)
	}
	answer, err := io.ReadAll(io.LimitReader(c, maxAnswer))
	if err != nil {
		return nil, exchangeError(path, request, err)
	}
	if len(answer) == 0 {
		return nil, fmt.Errorf("tcpeek on %s closed the connection without answering %s (too many clients at once? try again)", path, request)
	}
	if bytes.HasPrefix(answer, []byte(`{"error"`)) {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(answer, &e)
		return nil, fmt.Errorf("tcpeek on %s refused %s: %s (is it an older tcpeek?)", path, request, e.Error)
	}
	return answer, nil
}

// dialError explains why nobody answers on path.
func dialError(path string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno // "connection refused" rather than "dial unix PATH: connect: connection refused"
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return fmt.Errorf("cannot connect to tcpeek on %s: %w (run as root or as a member of the socket's group)", path, err)
	case errors.Is(err, syscall.EAGAIN): // the listen backlog is full
		return fmt.Errorf("tcpeek on %s accepts no more connections for now: %w (try again)", path, err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no tcpeek answers on %s: %w after %v (is tcpeek running? use -U PATH)", path, os.ErrDeadlineExceeded, timeout)
	}
	return fmt.Errorf("no tcpeek answers on %s: %w (is tcpeek running? use -U PATH)", path, err)
}

// exchangeError explains a failure after the connection was made.
func exchangeError(path, request string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("tcpeek on %s did not answer %s: %w after %v", path, request, os.ErrDeadlineExceeded, timeout)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	return fmt.Errorf("tcpeek on %s: %s: %w", path, request, err)
}
