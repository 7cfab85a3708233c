//go:build cgo

// The thread-local error message of the C ABI and the status names: C,
// because Go has no thread-local storage and the message must belong to
// the calling thread.

#include <string.h>
#include "shmkit.h"

static _Thread_local char shmkit_err[1024];

void shmkit_set_error(const char *msg, size_t n) {
	if (n >= sizeof shmkit_err)
		n = sizeof shmkit_err - 1;
	memcpy(shmkit_err, msg, n);
	shmkit_err[n] = 0;
}

const char *shmkit_last_error(void) { return shmkit_err; }

int shmkit_abi_version(void) { return SHMKIT_ABI_VERSION; }

size_t shmkit_sizeof(int which) {
	switch (which) {
	case 0: return sizeof(shmkit_config);
	case 1: return sizeof(shmkit_message);
	case 2: return sizeof(shmkit_loan_t);
	case 3: return sizeof(shmkit_stats);
	}
	return 0;
}

const char *shmkit_status_name(int status) {
	switch (status) {
	case SHMKIT_OK: return "SHMKIT_OK";
	case SHMKIT_ERR: return "SHMKIT_ERR";
	case SHMKIT_ERR_INVALID_HANDLE: return "SHMKIT_ERR_INVALID_HANDLE";
	case SHMKIT_ERR_INVALID_ARGUMENT: return "SHMKIT_ERR_INVALID_ARGUMENT";
	case SHMKIT_ERR_CONFIG: return "SHMKIT_ERR_CONFIG";
	case SHMKIT_ERR_NOT_FOUND: return "SHMKIT_ERR_NOT_FOUND";
	case SHMKIT_ERR_EXISTS: return "SHMKIT_ERR_EXISTS";
	case SHMKIT_ERR_MISMATCH: return "SHMKIT_ERR_MISMATCH";
	case SHMKIT_ERR_CORRUPT: return "SHMKIT_ERR_CORRUPT";
	case SHMKIT_ERR_CLOSED: return "SHMKIT_ERR_CLOSED";
	case SHMKIT_ERR_TIMEOUT: return "SHMKIT_ERR_TIMEOUT";
	case SHMKIT_ERR_WOULD_BLOCK: return "SHMKIT_ERR_WOULD_BLOCK";
	case SHMKIT_ERR_PEER_GONE: return "SHMKIT_ERR_PEER_GONE";
	case SHMKIT_ERR_TOO_LARGE: return "SHMKIT_ERR_TOO_LARGE";
	case SHMKIT_ERR_FULL: return "SHMKIT_ERR_FULL";
	case SHMKIT_ERR_NO_MEMORY: return "SHMKIT_ERR_NO_MEMORY";
	case SHMKIT_ERR_TOO_MANY_HELD: return "SHMKIT_ERR_TOO_MANY_HELD";
	case SHMKIT_ERR_TYPE_MISMATCH: return "SHMKIT_ERR_TYPE_MISMATCH";
	case SHMKIT_ERR_SAMPLE_STATE: return "SHMKIT_ERR_SAMPLE_STATE";
	case SHMKIT_ERR_UNSUPPORTED: return "SHMKIT_ERR_UNSUPPORTED";
	case SHMKIT_ERR_BUFFER: return "SHMKIT_ERR_BUFFER";
	case SHMKIT_ERR_IN_USE: return "SHMKIT_ERR_IN_USE";
	case SHMKIT_ERR_TOO_MANY_LOANS: return "SHMKIT_ERR_TOO_MANY_LOANS";
	case SHMKIT_ERR_UNTRUSTED: return "SHMKIT_ERR_UNTRUSTED";
	case SHMKIT_ERR_FAULT: return "SHMKIT_ERR_FAULT";
	}
	return "SHMKIT_ERR_UNKNOWN";
}
