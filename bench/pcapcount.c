/* pcapcount: the "raw libpcap read" baseline for bench/sniff.sh. Opens a
 * pcap or pcapng file with pcap_open_offline and walks it with pcap_next_ex,
 * counting packets and captured bytes; nothing else (no decoding, no copy).
 * That is the floor any libpcap-based reader, wirewarden sniff included,
 * pays for reading the same file.
 *
 *   pcapcount FILE      prints "RESULT packets=N bytes=N secs=S"
 *
 * bytes is the sum of captured lengths (caplen), secs the wall time of the
 * read loop alone (CLOCK_MONOTONIC). Exit status: 0 done, 1 the file could
 * not be opened or read, 2 bad usage. */
#define _DEFAULT_SOURCE /* u_char and friends in <pcap/pcap.h> under -std=c11 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char err[PCAP_ERRBUF_SIZE] = "";
	struct pcap_pkthdr *hdr;
	const u_char *data;
	uint64_t packets = 0, bytes = 0;
	pcap_t *p;
	double t0;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: pcapcount FILE\n");
		return 2;
	}
	t0 = now_s();
	p = pcap_open_offline(argv[1], err);
	if (p == NULL) {
		fprintf(stderr, "pcapcount: %s: %s\n", argv[1], err);
		return 1;
	}
	while ((rc = pcap_next_ex(p, &hdr, &data)) == 1) {
		packets++;
		bytes += hdr->caplen;
	}
	if (rc != PCAP_ERROR_BREAK) { /* -2 is the end of the file */
		fprintf(stderr, "pcapcount: %s: after packet %llu: %s\n", argv[1], (unsigned long long)packets,
			pcap_geterr(p));
		pcap_close(p);
		return 1;
	}
	pcap_close(p);
	printf("RESULT packets=%llu bytes=%llu secs=%.6f\n", (unsigned long long)packets, (unsigned long long)bytes,
	       now_s() - t0);
	return 0;
}
