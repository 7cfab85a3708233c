/*
 * A C publisher of a shmkit channel: creates the channel, waits for a
 * subscriber, writes numbered 64-byte messages in place in shared memory
 * (loan, write, publish) and leaves; the subscribers see the end.
 *
 *   cc -O2 -I bindings/c -o publisher examples/c/publisher.c -L. -lshmkit -Wl,-rpath,'$ORIGIN'
 *   ./publisher demo 100000 &
 *   go run ./examples/python/ticks -name demo
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmkit.h"

static void sleep_ms(long ms) {
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
	const char *name = argc > 1 ? argv[1] : "demo";
	long count = argc > 2 ? atol(argv[2]) : 100000;
	shmkit_config cfg;
	memset(&cfg, 0, sizeof cfg); /* zero: defaults */
	cfg.max_message = 64;
	cfg.ring_depth = 1024;
	shmkit_channel ch;
	if (shmkit_create(name, &cfg, &ch) != SHMKIT_OK) {
		fprintf(stderr, "create %s: %s\n", name, shmkit_last_error());
		return 1;
	}
	int ret = 1;
	shmkit_stats st;
	for (int i = 0; i < 60000; i++) { /* a subscriber sees what is published after it joined */
		if (shmkit_channel_stats(ch, &st) != SHMKIT_OK || st.subscribers > 0)
			break;
		sleep_ms(1);
	}
	if (st.subscribers == 0) {
		fprintf(stderr, "no subscriber joined\n");
		goto out;
	}
	shmkit_publisher pub;
	if (shmkit_publisher_open(ch, &pub) != SHMKIT_OK) {
		fprintf(stderr, "publisher: %s\n", shmkit_last_error());
		goto out;
	}
	for (long i = 0; i < count; i++) {
		shmkit_loan_t l;
		int rc = shmkit_loan(pub, 64, -1, &l); /* waits for a free chunk */
		if (rc == SHMKIT_OK) {
			uint64_t num = (uint64_t)i;
			memset(l.data, 0, l.len);
			memcpy(l.data, &num, 8); /* written in place, in shared memory */
			rc = shmkit_publish(pub, l.token, l.len, -1);
		}
		if (rc != SHMKIT_OK) {
			fprintf(stderr, "message %ld: %s: %s\n", i, shmkit_status_name(rc), shmkit_last_error());
			shmkit_publisher_close(pub);
			goto out;
		}
	}
	shmkit_publisher_close(pub); /* subscribers drain, then see SHMKIT_ERR_PEER_GONE */
	printf("published %ld messages\n", count);
	/* Stay until the subscribers have left: the last participant removes the name. */
	while (shmkit_channel_stats(ch, &st) == SHMKIT_OK && st.subscribers > 0)
		sleep_ms(1);
	ret = 0;
out:
	shmkit_channel_close(ch);
	return ret;
}
