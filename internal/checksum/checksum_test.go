package checksum

import "testing"

func TestCRC32C(t *testing.T) {
	// The check value of CRC-32C: the checksum of "123456789".
	if got := CRC32C([]byte("123456789")); got != 0xe3069283 {
		t.Fatalf("CRC32C(123456789) = %#x, want 0xe3069283", got)
	}
	if got := Update(CRC32C([]byte("1234")), []byte("56789")); got != 0xe3069283 {
		t.Fatalf("Update in two parts = %#x", got)
	}
}
