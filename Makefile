# tcpeek: build the two static binaries, run the tests.
GO      ?= go
# The version comes from the repository (git tags), which go build records.
LDFLAGS := -s -w
export CGO_ENABLED = 0

# Where make install puts things: tcpeek(8) in sbin, tcpeekstat(1) in bin,
# their manual pages in share/man. DESTDIR prefixes every path (packaging).
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL ?= install

.PHONY: all build test race bench fuzz vet man install uninstall clean

all: build

build:
	$(GO) build -trimpath -buildvcs=auto -ldflags '$(LDFLAGS)' -o . ./cmd/...

# man writes the manual pages from the --help texts (internal/manual); a
# test fails when the committed ones are not current.
man:
	$(GO) run ./internal/manual/genman man

install: build
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man1
	$(INSTALL) -m 0755 tcpeek $(DESTDIR)$(PREFIX)/sbin/tcpeek
	$(INSTALL) -m 0755 tcpeekstat $(DESTDIR)$(PREFIX)/bin/tcpeekstat
	$(INSTALL) -m 0644 man/tcpeek.8 $(DESTDIR)$(PREFIX)/share/man/man8/tcpeek.8
	$(INSTALL) -m 0644 man/tcpeekstat.1 $(DESTDIR)$(PREFIX)/share/man/man1/tcpeekstat.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/tcpeek $(DESTDIR)$(PREFIX)/bin/tcpeekstat \
		$(DESTDIR)$(PREFIX)/share/man/man8/tcpeek.8 $(DESTDIR)$(PREFIX)/share/man/man1/tcpeekstat.1

# test is what CI runs (.ci/run): vet, then every test with the race detector.
test:
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

# fuzz runs each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./internal/decode/
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/filter/
	$(GO) test -run='^$$' -fuzz=FuzzFileReader -fuzztime=$(FUZZTIME) ./internal/capture/
	$(GO) test -run='^$$' -fuzz=FuzzParseRequest -fuzztime=$(FUZZTIME) ./internal/protocol/
	$(GO) test -run='^$$' -fuzz=FuzzMessages -fuzztime=$(FUZZTIME) ./internal/netwatch/
	$(GO) test -run='^$$' -fuzz=FuzzClassic -fuzztime=$(FUZZTIME) ./internal/kfilter/

vet:
	$(GO) vet ./...

clean:
	rm -f tcpeek tcpeekstat
