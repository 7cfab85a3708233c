// Command c is libshmkit.so, the C ABI of shmkit channels:
//
//	go build -buildmode=c-shared -o libshmkit.so ./bindings/c
//
// shmkit.h beside it declares the functions; docs/bindings.md is the
// reference. Each function is a thin layer over the Go API of package
// shmkit: a handle (runtime/cgo.Handle) stands for a Channel, Publisher or
// Subscriber, a token for a loaned or received sample, and a status code
// for the error. The library needs cgo; without it this package builds an
// empty program, so CGO_ENABLED=0 builds of the module still work.
package main
