// Package e2e holds end-to-end tests of tcpeek: they build the programs and
// make real traffic between Linux network namespaces. capture_test.go
// captures it with tcpdump and checks what tcpeek -r counts in the capture;
// live_test.go and ganglia_test.go run tcpeek -i as a daemon on the
// monitored interface and check what its stats socket, tcpeekstat, its
// output, its signals, its socket file and its privileges do. They need
// root and Linux, and skip themselves elsewhere.
package e2e
