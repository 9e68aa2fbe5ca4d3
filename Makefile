# tcpeek: build the two static binaries, run the tests.
GO      ?= go
# The version comes from the repository (git tags), which go build records.
LDFLAGS := -s -w
export CGO_ENABLED = 0

.PHONY: all build test race bench fuzz vet clean

all: build

build:
	$(GO) build -trimpath -buildvcs=auto -ldflags '$(LDFLAGS)' -o . ./cmd/...

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

vet:
	$(GO) vet ./...

clean:
	rm -f tcpeek tcpeekstat
