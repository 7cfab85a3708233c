//go:build !linux

package bench

func registerTestChildren() {}
