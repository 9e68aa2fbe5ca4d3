package capture

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Sizes of the read buffer.
const (
	firstBufSize = 64 << 10 // read buffer until the stream proves longer
	readBufSize  = 1 << 20  // read buffer after that
	maxBufSize   = MaxRecordLen + 64
	gzipBufSize  = 64 << 10
)

// countingReader counts the bytes read from the caller's reader, for
// BytesRead, and makes its first error sticky.
type countingReader struct {
	r   io.Reader
	n   atomic.Int64
	err error
}

// Read reads from the caller's reader, counting the bytes.
func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if n < 0 || n > len(p) {
		n, err = 0, fmt.Errorf("reader returned invalid count %d", n)
	}
	c.n.Add(int64(n))
	if err != nil {
		c.err = err
	}
	return n, err
}

// fill makes at least n (<= maxBufSize) bytes available in buf[r:w]. It
// returns nil if it did, else io.EOF if the stream ended first, or the read
// error. It moves the unread bytes to the front of the buffer before reading.
// The buffer starts small, so that short captures do not cost a large one;
// it grows to readBufSize once the stream proves longer, and beyond that only
// as the bytes of a record longer than the buffer actually arrive, so that a
// length field alone never makes it grow.
func (r *FileReader) fill(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if r.srcErr != nil {
		return r.srcErr
	}
	if len(r.buf) < readBufSize && r.base+int64(r.w) >= int64(len(r.buf)) {
		r.grow()
	} else if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.base += int64(r.r)
		r.r = 0
	}
	for empty := 0; r.w-r.r < n; {
		if r.w == len(r.buf) {
			r.grow() // r.r is 0 and r.w < n <= maxBufSize: this makes room
		}
		m, err := r.src.Read(r.buf[r.w:])
		if m < 0 || m > len(r.buf)-r.w {
			m, err = 0, fmt.Errorf("reader returned invalid count %d", m)
		}
		r.w += m
		if err != nil {
			r.srcErr = err
			if r.w-r.r >= n {
				return nil
			}
			return err
		}
		if m == 0 {
			if empty++; empty >= 100 {
				r.srcErr = io.ErrNoProgress
				return r.srcErr
			}
		}
	}
	return nil
}

// grow replaces the buffer by one twice as large (at least readBufSize, at
// most maxBufSize) holding the unread bytes at its front.
func (r *FileReader) grow() {
	nb := make([]byte, min(max(2*len(r.buf), readBufSize), maxBufSize))
	r.w = copy(nb, r.buf[r.r:r.w])
	r.base += int64(r.r)
	r.r = 0
	r.buf = nb
}

// short turns a failed fill of need bytes for what into the error to return:
// io.EOF if clean and the stream ended between records, a truncation error,
// or a read error.
func (r *FileReader) short(err error, need int, what string, clean bool) error {
	avail := r.w - r.r
	if err != io.EOF {
		return r.readError(r.Offset(), err, what, need, avail)
	}
	if clean && avail == 0 {
		return io.EOF
	}
	return &FormatError{Offset: r.Offset(), Truncated: true,
		Msg: fmt.Sprintf("%s of %d bytes is cut short after %d", what, need, avail)}
}

// readError wraps a read error met while reading what (need bytes, avail of
// them read) at offset off. Errors of the gzip reader that are not errors of
// the underlying reader are format errors of the compressed stream.
func (r *FileReader) readError(off int64, err error, what string, need, avail int) error {
	if r.gz && (r.cr.err == nil || err != r.cr.err) {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			msg := "gzip stream ends early"
			if avail > 0 {
				msg = fmt.Sprintf("%s of %d bytes is cut short after %d (gzip stream ends early)", what, need, avail)
			}
			return &FormatError{Offset: off, Truncated: true, Msg: msg, Err: err}
		}
		return &FormatError{Offset: off, Msg: "bad gzip data", Err: err}
	}
	return fmt.Errorf("reading capture at byte offset %d: %w", off, err)
}
