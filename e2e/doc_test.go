// Package e2e holds end-to-end tests of tcpeek: they build the program, make
// real traffic between Linux network namespaces, capture it with tcpdump and
// check what tcpeek -r counts in the capture. They need root and Linux, and
// skip themselves elsewhere.
package e2e
