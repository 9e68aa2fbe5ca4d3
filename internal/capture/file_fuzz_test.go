package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// fuzzResult is what reading a capture gave: the frames and the final error.
type fuzzResult struct {
	frames []Frame
	err    string
}

// fuzzRead reads src to its end, checking the invariants of FileReader:
// Offset never decreases and grows with each frame, len(Data) <= WireLen,
// errors name an offset within what was consumed, and errors are sticky.
func fuzzRead(t *testing.T, src io.Reader) fuzzResult {
	r, err := NewFileReader(src)
	if err != nil {
		return fuzzResult{err: err.Error()}
	}
	var res fuzzResult
	last := r.Offset()
	var f Frame
	for {
		err := r.Next(&f)
		off := r.Offset()
		if off < last {
			t.Fatalf("Offset() went back from %d to %d", last, off)
		}
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) && (fe.Offset < last || fe.Offset > off) {
				t.Fatalf("error offset %d outside [%d, %d]: %v", fe.Offset, last, off, err)
			}
			if err2 := r.Next(&f); err2 != err {
				t.Fatalf("Next after %v returned %v", err, err2)
			}
			if err != io.EOF {
				res.err = err.Error()
			}
			return res
		}
		if off == last {
			t.Fatalf("Next returned a frame without consuming input at offset %d", off)
		}
		if len(f.Data) > f.WireLen {
			t.Fatalf("frame of %d bytes has WireLen %d", len(f.Data), f.WireLen)
		}
		if f.NoVerify {
			t.Fatalf("frame from a file has NoVerify set")
		}
		if len(res.frames) < 1000 {
			f.Data = bytes.Clone(f.Data)
			res.frames = append(res.frames, f)
		}
		last = off
	}
}

// FuzzFileReader feeds arbitrary bytes to FileReader: it must not panic or
// loop, must keep its invariants (see fuzzRead), and must read the same
// frames and give the same error whether the input arrives in small chunks
// or gzip compressed.
func FuzzFileReader(f *testing.F) {
	for _, tc := range fileCases(f) {
		f.Add(tc.data)
	}
	for _, tc := range errorCases(f) {
		if len(tc.data) <= 64<<10 { // not the blocks of 20 MiB
			f.Add(tc.data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := fuzzRead(t, bytes.NewReader(data))
		got := fuzzRead(t, iotest.HalfReader(bytes.NewReader(data)))
		compareFuzz(t, "half reads", got, want)
		if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
			return
		}
		got = fuzzRead(t, bytes.NewReader(gzipFast(data)))
		if strings.HasPrefix(want.err, "corrupt capture at byte offset 0: not a pcap or pcapng file (") {
			want.err = strings.Replace(want.err, "file (", "file inside gzip (", 1)
		}
		compareFuzz(t, "gzip", got, want)
	})
}

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

// gzipFast compresses p with a pooled writer: making a gzip writer costs
// more than the rest of a fuzz run.
func gzipFast(p []byte) []byte {
	var b bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&b)
	zw.Write(p)
	zw.Close()
	gzipWriters.Put(zw)
	return b.Bytes()
}

func compareFuzz(t *testing.T, name string, got, want fuzzResult) {
	t.Helper()
	if got.err != want.err {
		t.Fatalf("%s: error %q, want %q", name, got.err, want.err)
	}
	compareFrames(t, got.frames, want.frames)
}
