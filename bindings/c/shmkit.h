/*
 * shmkit.h: the C ABI of shmkit channels (libshmkit.so).
 *
 * Build the library with
 *
 *     go build -buildmode=c-shared -o libshmkit.so ./bindings/c
 *
 * and a program with
 *
 *     cc -I bindings/c prog.c -L. -lshmkit -Wl,-rpath,'$ORIGIN'
 *
 * The library is the Go implementation itself (package
 * github.com/shmkit/shmkit), so a C program is an ordinary participant of
 * the same channels as Go and Python programs: the same segments, liveness
 * and clean-up after SIGKILL. docs/bindings.md is the full reference.
 *
 * Conventions
 *  - Every function returns SHMKIT_OK (0) or a negative shmkit_status. After
 *    a failure, shmkit_last_error() returns a message for the calling
 *    thread (thread-local; it stays until the thread's next failing call).
 *  - Handles are opaque 64-bit values, never pointers; 0 is never a valid
 *    handle. A handle used after its close gives SHMKIT_ERR_INVALID_HANDLE
 *    (handle values are never reused).
 *  - Timeouts are in nanoseconds: negative waits for ever, 0 does not wait
 *    (SHMKIT_ERR_TIMEOUT when it would have to), positive waits at most
 *    that long.
 *  - Zero copy: the data pointers handed out (shmkit_loan_t.data,
 *    shmkit_message.data) point into the channel's shared mapping. A loan's
 *    bytes are writable until shmkit_publish or shmkit_discard; a
 *    message's bytes are read-only and valid until shmkit_release, the
 *    subscriber's close or the channel's close, whichever comes first.
 *  - Threads: every handle is safe to use from several threads, but a
 *    subscriber delivers each message once, so several threads receiving
 *    on one subscriber share its messages; a loan or a message belongs to
 *    the thread that holds it. A blocking call in one thread ends with
 *    SHMKIT_ERR_CLOSED when another thread closes the channel.
 *  - fork: the library runs the Go runtime, which does not survive fork().
 *    A forked child must not call into the library (nor use pointers from
 *    it); it may exec a program that opens the channel anew. The parent's
 *    handles stay the parent's.
 */
#ifndef SHMKIT_H
#define SHMKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMKIT_ABI_VERSION 1

typedef uint64_t shmkit_channel;
typedef uint64_t shmkit_publisher;  /* a producer on a work queue */
typedef uint64_t shmkit_subscriber; /* a consumer on a work queue */

typedef enum shmkit_status {
	SHMKIT_OK = 0,
	SHMKIT_ERR = -1,                /* an error not listed below (I/O, permission, ...) */
	SHMKIT_ERR_INVALID_HANDLE = -2, /* 0, closed or of another kind */
	SHMKIT_ERR_INVALID_ARGUMENT = -3, /* a NULL pointer, a bad token, a length beyond a loan */
	SHMKIT_ERR_CONFIG = -4,         /* a configuration out of range */
	SHMKIT_ERR_NOT_FOUND = -5,      /* no channel of that name */
	SHMKIT_ERR_EXISTS = -6,         /* create: the name is taken */
	SHMKIT_ERR_MISMATCH = -7,       /* open: the channel differs from the expected config */
	SHMKIT_ERR_CORRUPT = -8,        /* shared state breaks the layout (or not a channel) */
	SHMKIT_ERR_CLOSED = -9,         /* the handle or the channel is closed */
	SHMKIT_ERR_TIMEOUT = -10,       /* the timeout passed */
	SHMKIT_ERR_WOULD_BLOCK = -11,   /* try_receive: nothing to receive */
	SHMKIT_ERR_PEER_GONE = -12,     /* every publisher left and everything was received */
	SHMKIT_ERR_TOO_LARGE = -13,     /* a message over max_message */
	SHMKIT_ERR_FULL = -14,          /* every publisher/subscriber/process slot is taken */
	SHMKIT_ERR_NO_MEMORY = -15,     /* loan with timeout 0: the pool is empty */
	SHMKIT_ERR_TOO_MANY_HELD = -16, /* receive while SHMKIT_MAX_HELD messages are unreleased */
	SHMKIT_ERR_TYPE_MISMATCH = -17, /* a typed channel of another type */
	SHMKIT_ERR_SAMPLE_STATE = -18,  /* a loan or message already published/released */
	SHMKIT_ERR_UNSUPPORTED = -19,   /* not on this operating system */
	SHMKIT_ERR_BUFFER = -20,        /* stats_json: buffer too small (*len says how much) */
	SHMKIT_ERR_IN_USE = -21,        /* remove: live processes hold the channel (force removes it anyway) */
	SHMKIT_ERR_TOO_MANY_LOANS = -22, /* loan while the publisher holds its most loans */
	SHMKIT_ERR_UNTRUSTED = -23,     /* open: the segment's owner or mode is not trusted (docs/security.md) */
	SHMKIT_ERR_FAULT = -24          /* a memory fault on the mapping: someone truncated the segment */
} shmkit_status;

/* Patterns and policies (shmkit_config.pattern, .policy); 0 is the default. */
#define SHMKIT_PUBSUB 1
#define SHMKIT_WORKQUEUE 2
#define SHMKIT_BLOCK 1
#define SHMKIT_DROP_NEWEST 2
#define SHMKIT_DROP_OLDEST 3

/* The most messages one subscriber may hold unreleased. */
#define SHMKIT_MAX_HELD 40

/*
 * A channel's configuration. Zero fields take the defaults (pubsub, block,
 * max_message 4096, ring_depth 256, 4 publishers, 8 subscribers, ...). For
 * shmkit_open the non-zero fields are expectations checked against the
 * channel (SHMKIT_ERR_MISMATCH). Zero the whole struct before filling it.
 */
typedef struct shmkit_config {
	uint32_t pattern;          /* SHMKIT_PUBSUB or SHMKIT_WORKQUEUE */
	uint32_t policy;           /* SHMKIT_BLOCK, SHMKIT_DROP_NEWEST, SHMKIT_DROP_OLDEST */
	uint64_t max_message;      /* largest message in bytes */
	uint32_t ring_depth;       /* messages per subscriber ring, a power of two */
	uint32_t max_publishers;
	uint32_t max_subscribers;  /* at most 31 */
	uint32_t max_processes;    /* channel handles attached at once */
	uint32_t chunks_per_class; /* pool chunks per size class (default 2*ring_depth) */
	uint32_t keep;             /* non-zero: the last participant leaves the name in place */
	int64_t liveness_interval_ns; /* how often dead participants are looked for (default 100 ms) */
	uint32_t max_loans;        /* samples one publisher may hold loaned (default 16) */
	uint32_t mode;             /* permission bits of a named channel (default 0600; 0660 with a group) */
	uint64_t reserved[3];      /* zero */
} shmkit_config;

/* A received message: zero copy, valid until shmkit_release(sub, token). */
typedef struct shmkit_message {
	const void *data;   /* into the shared mapping; read only */
	size_t len;
	uint64_t seq;       /* the publisher's sequence number, 1, 2, ... */
	uint64_t missed;    /* messages dropped for this subscriber since its previous receive */
	uint64_t publisher; /* the publisher's identity: slot | generation << 8 */
	uint64_t token;     /* names the message to shmkit_release */
} shmkit_message;

/* A loan: writable shared memory for one message, until publish or discard. */
typedef struct shmkit_loan_t {
	void *data;     /* into the shared mapping */
	size_t len;     /* the bytes loaned */
	uint64_t token; /* names the loan to shmkit_publish / shmkit_discard */
} shmkit_loan_t;

/* A channel's counters (shmkit_channel_stats_json has every figure). */
typedef struct shmkit_stats {
	uint64_t pool_total, pool_free, pool_in_use, pool_in_flight, pool_failed;
	uint32_t publishers, subscribers, handles; /* active participants */
	uint32_t reserved0;
	uint64_t published, received;  /* messages, summed over active participants */
	uint64_t drops, missed;
	uint64_t reserved[4];
} shmkit_stats;

#ifndef SHMKIT_NO_PROTOTYPES

int shmkit_abi_version(void);
/* sizeof of the ABI's structs, for bindings that declare them anew: 0 shmkit_config, 1 shmkit_message, 2 shmkit_loan_t, 3 shmkit_stats (0 for another). */
size_t shmkit_sizeof(int which);
/* The calling thread's message for its last failed call ("" if none). */
const char *shmkit_last_error(void);
/* A fixed name for a status ("SHMKIT_ERR_TIMEOUT"). */
const char *shmkit_status_name(int status);

/* Channels. cfg may be NULL (defaults; for open: no expectations). */
int shmkit_create(const char *name, const shmkit_config *cfg, shmkit_channel *out);
int shmkit_open(const char *name, const shmkit_config *expect, shmkit_channel *out);
/* Opens name, or creates it with cfg if it does not exist (racing creators: one creates, the others open). */
int shmkit_open_or_create(const char *name, const shmkit_config *cfg, shmkit_channel *out);
/* Closes the channel and every publisher and subscriber made from it (their handles stay to be closed); the last participant removes the name. */
int shmkit_channel_close(shmkit_channel ch);
/* Removes a channel's name; refuses (SHMKIT_ERR_IN_USE) while live processes hold it unless force is non-zero (they keep their mappings). */
int shmkit_remove(const char *name, int force);
int shmkit_channel_config(shmkit_channel ch, shmkit_config *out);
int shmkit_channel_stats(shmkit_channel ch, shmkit_stats *out);
/* Every counter as JSON (Go's shmkit.Stats); *len gets the length (also on SHMKIT_ERR_BUFFER). */
int shmkit_channel_stats_json(shmkit_channel ch, char *buf, size_t cap, size_t *len);

/* Publishers (producers on a work queue). */
int shmkit_publisher_open(shmkit_channel ch, shmkit_publisher *out);
int shmkit_publisher_close(shmkit_publisher p);
int shmkit_publisher_id(shmkit_publisher p, uint64_t *id);
/* Loans n bytes of shared memory, waiting up to timeout_ns for a free chunk. */
int shmkit_loan(shmkit_publisher p, size_t n, int64_t timeout_ns, shmkit_loan_t *out);
/* Publishes the loan's first len bytes (len <= the loaned length); policy block waits up to timeout_ns for room. */
int shmkit_publish(shmkit_publisher p, uint64_t token, size_t len, int64_t timeout_ns);
int shmkit_discard(shmkit_publisher p, uint64_t token);
/* Copies n bytes into a chunk and publishes them (loan, copy, publish in one call). */
int shmkit_send(shmkit_publisher p, const void *data, size_t n, int64_t timeout_ns);

/* Subscribers (consumers on a work queue). */
int shmkit_subscriber_open(shmkit_channel ch, shmkit_subscriber *out);
/* Closes the subscriber; its unreleased messages are released (their pointers become invalid). */
int shmkit_subscriber_close(shmkit_subscriber s);
int shmkit_receive(shmkit_subscriber s, int64_t timeout_ns, shmkit_message *out);
int shmkit_try_receive(shmkit_subscriber s, shmkit_message *out);
int shmkit_release(shmkit_subscriber s, uint64_t token);
/*
 * Releases token (0: none), then receives as shmkit_receive: a stream's
 * loop costs one call per message. The release happens even when the
 * receive then fails.
 */
int shmkit_receive_next(shmkit_subscriber s, uint64_t token, int64_t timeout_ns, shmkit_message *out);
/* Receives, copies up to cap bytes into buf and releases, in one call; *len gets the message's length (more than cap: truncated). */
int shmkit_receive_into(shmkit_subscriber s, void *buf, size_t cap, size_t *len, int64_t timeout_ns);

#endif /* SHMKIT_NO_PROTOTYPES */

#ifdef __cplusplus
}
#endif

#endif /* SHMKIT_H */
