//go:build !cgo

package main

// Without cgo there is no C ABI to build (doc.go).
func main() {}
