/* Capture file reading over libpcap: pcap_open_offline reads classic pcap and
 * pcapng alike, and "-" means standard input. This file numbers frames,
 * converts timestamps to microseconds and words errors; it never interprets
 * frame bytes (sniff/link.c does). libpcap bounds every record by its own
 * header checks, so a truncated or corrupt file ends in an error, not a crash. */
#include "sniff/capture.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct capture {
	pcap_t *pcap;
	char *path;     /* for error text */
	uint64_t frames; /* frames handed out so far */
	int dlt;
	char failed[CAPTURE_ERR_LEN]; /* non-empty once a read failed */
};

/* Seconds are clamped to +-4e12 (a pcapng timestamp can claim far more) so
 * that times, and differences of two times, fit in int64_t microseconds. */
static int64_t ts_to_us(int64_t sec, int64_t usec)
{
	const int64_t lim = INT64_C(4000000000000);

	if (sec > lim)
		sec = lim;
	if (sec < -lim)
		sec = -lim;
	if (usec < 0 || usec > 999999)
		usec = 0;
	return sec * 1000000 + usec;
}

struct capture *capture_open(const char *path, char *err, size_t errlen)
{
	char pcap_err[PCAP_ERRBUF_SIZE] = "";
	struct capture *c;
	const char *shown = strcmp(path, "-") == 0 ? "(stdin)" : path;

	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(shown)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", shown);
		free(c);
		return NULL;
	}
	/* Microsecond precision: libpcap scales nanosecond pcapng/pcap files down. */
	c->pcap = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO, pcap_err);
	if (c->pcap == NULL) {
		/* libpcap names the file itself in some messages ("x: No such file"). */
		if (strncmp(pcap_err, path, strlen(path)) == 0)
			snprintf(err, errlen, "%s", pcap_err);
		else
			snprintf(err, errlen, "%s: %s", shown, pcap_err[0] ? pcap_err : "cannot open capture");
		free(c->path);
		free(c);
		return NULL;
	}
	c->dlt = pcap_datalink(c->pcap);
	return c;
}

int capture_link_type(const struct capture *c)
{
	return c->dlt;
}

const char *capture_link_name(const struct capture *c)
{
	const char *name = pcap_datalink_val_to_name(c->dlt);
	return name != NULL ? name : "unknown";
}

enum capture_status capture_next(struct capture *c, struct capture_frame *f, char *err, size_t errlen)
{
	struct pcap_pkthdr *hdr;
	const u_char *data;
	int rc;

	if (c->failed[0] != '\0') {
		snprintf(err, errlen, "%s", c->failed);
		return CAPTURE_ERROR;
	}
	rc = pcap_next_ex(c->pcap, &hdr, &data);
	if (rc == 1) {
		c->frames++;
		f->num = c->frames;
		f->ts_us = ts_to_us(hdr->ts.tv_sec, hdr->ts.tv_usec);
		f->data = data;
		f->caplen = hdr->caplen;
		f->wirelen = hdr->len < hdr->caplen ? hdr->caplen : hdr->len;
		return CAPTURE_FRAME;
	}
	if (rc == PCAP_ERROR_BREAK) /* -2: end of file */
		return CAPTURE_END;
	/* 0 cannot happen for a savefile; treat it as an error rather than spin. */
	snprintf(c->failed, sizeof(c->failed), "%s: after frame %llu: %s", c->path,
		 (unsigned long long)c->frames, rc == PCAP_ERROR ? pcap_geterr(c->pcap) : "unexpected read result");
	snprintf(err, errlen, "%s", c->failed);
	return CAPTURE_ERROR;
}

void capture_close(struct capture *c)
{
	if (c == NULL)
		return;
	if (c->pcap != NULL)
		pcap_close(c->pcap);
	free(c->path);
	free(c);
}
