/*
 * A C subscriber of a shmkit channel: opens the channel once it exists,
 * receives zero copy until every publisher has left, checks that the
 * messages are numbered 0, 1, 2, ... (uint64, little endian, at the start)
 * and prints the rate.
 *
 *   go build -buildmode=c-shared -o libshmkit.so ./bindings/c
 *   cc -O2 -I bindings/c -o subscriber examples/c/subscriber.c -L. -lshmkit -Wl,-rpath,'$ORIGIN'
 *   go run ./examples/python/frames -name demo -size 64 -count 100000 &
 *   ./subscriber demo
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shmkit.h"

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	const char *name = argc > 1 ? argv[1] : "demo";
	shmkit_channel ch;
	int rc;
	/* The publisher creates the channel: wait for it (up to a minute). */
	double give_up = now() + 60;
	while ((rc = shmkit_open(name, NULL, &ch)) == SHMKIT_ERR_NOT_FOUND && now() < give_up) {
		struct timespec ms = {0, 5000000};
		nanosleep(&ms, NULL);
	}
	if (rc != SHMKIT_OK) {
		fprintf(stderr, "open %s: %s\n", name, shmkit_last_error());
		return 1;
	}
	shmkit_subscriber sub;
	if (shmkit_subscriber_open(ch, &sub) != SHMKIT_OK) {
		fprintf(stderr, "subscriber: %s\n", shmkit_last_error());
		shmkit_channel_close(ch);
		return 1;
	}
	uint64_t n = 0;
	double start = 0;
	int ret = 0;
	uint64_t done = 0; /* the message to release with the next receive */
	for (;;) {
		shmkit_message m;
		/* Releases the previous message and waits (for ever) for the next:
		 * one call per message. SHMKIT_ERR_PEER_GONE at the end. */
		rc = shmkit_receive_next(sub, done, -1, &m);
		done = 0;
		if (rc == SHMKIT_ERR_PEER_GONE)
			break;
		if (rc != SHMKIT_OK) {
			fprintf(stderr, "receive: %s: %s\n", shmkit_status_name(rc), shmkit_last_error());
			ret = 1;
			break;
		}
		if (n == 0)
			start = now();
		uint64_t num = 0;
		if (m.len >= 8)
			memcpy(&num, m.data, 8); /* m.data points into shared memory */
		done = m.token; /* m.data stays valid until the next shmkit_receive_next */
		if (m.len < 8 || num != n) {
			fprintf(stderr, "message %llu: %zu bytes, numbered %llu\n",
			        (unsigned long long)n, m.len, (unsigned long long)num);
			ret = 1;
			break;
		}
		n++;
	}
	double el = now() - start;
	if (ret == 0)
		printf("received %llu messages, %.0f msgs/s\n", (unsigned long long)n,
		       n > 1 && el > 0 ? (n - 1) / el : 0.0);
	shmkit_subscriber_close(sub);
	shmkit_channel_close(ch); /* the last participant removes the name */
	return ret;
}
