package memfd

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestCreateSealMap(t *testing.T) {
	f, err := Create("shmkit-memfd-test", 8192)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := Sealed(f); err != nil || ok {
		t.Fatalf("fresh memfd: Sealed = %v, %v", ok, err)
	}
	if err := Seal(f); err != nil {
		t.Fatal(err)
	}
	if ok, err := Sealed(f); err != nil || !ok {
		t.Fatalf("after Seal: Sealed = %v, %v", ok, err)
	}
	if err := unix.Ftruncate(int(f.Fd()), 4096); err == nil {
		t.Fatal("a sealed memfd could be shrunk")
	}
	if n, err := Size(f); err != nil || n != 8192 {
		t.Fatalf("Size = %d, %v", n, err)
	}
	w, err := Map(f, 8192, true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Map(f, 8192, false)
	if err != nil {
		t.Fatal(err)
	}
	w[100] = 42
	if r[100] != 42 {
		t.Fatal("second mapping does not see the first one's write")
	}
	if err := Unmap(w); err != nil {
		t.Fatal(err)
	}
	if err := Unmap(r); err != nil {
		t.Fatal(err)
	}
}

func TestCreateBadSize(t *testing.T) {
	if _, err := Create("x", 0); err == nil {
		t.Fatal("size 0 accepted")
	}
}
