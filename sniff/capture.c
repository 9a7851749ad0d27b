/* Frames from libpcap: pcap_open_offline reads classic pcap and pcapng alike
 * ("-" means standard input); pcap_create/pcap_activate open an interface in
 * immediate mode, non-blocking, and capture_next() waits for it with poll()
 * on libpcap's selectable descriptor, so a signal or the caller's clock is
 * looked at within one wait. This file numbers frames, converts timestamps
 * to microseconds and words errors; it never interprets frame bytes
 * (sniff/link.c does). libpcap bounds every record by its own header checks,
 * so a truncated or corrupt file ends in an error, not a crash. */
#include "sniff/capture.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_WAIT_MS 200

struct capture {
	pcap_t *pcap;
	char *path;      /* file path or interface name, for error text */
	bool live;
	int fd;          /* live: libpcap's selectable descriptor, or -1 */
	int wait_ms;
	pcap_dumper_t *tee;
	struct pcap_stat base; /* live: counters when the filter was set (see counts_baseline) */
	uint64_t frames; /* frames handed out so far */
	int dlt;
	char failed[CAPTURE_ERR_LEN]; /* non-empty once a read failed */
	char *iobuf;     /* stdio buffer of the file libpcap reads; freed after pcap_close */
};

#define CAPTURE_IOBUF (1 << 20)

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

static struct capture *capture_alloc(const char *shown, char *err, size_t errlen)
{
	struct capture *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->path = strdup(shown)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", shown);
		free(c);
		return NULL;
	}
	c->fd = -1;
	return c;
}

struct capture *capture_open(const char *path, char *err, size_t errlen)
{
	char pcap_err[PCAP_ERRBUF_SIZE] = "";
	struct capture *c;
	const char *shown = strcmp(path, "-") == 0 ? "(stdin)" : path;

	if ((c = capture_alloc(shown, err, errlen)) == NULL)
		return NULL;
	/* Our own FILE, so that it reads 1 MiB at a time: libpcap's reads go
	 * through stdio, whose 4 KiB default made the read() calls a third of
	 * sniff's time on a large file (bench/results/sniff-*). Microsecond
	 * precision: libpcap scales nanosecond pcapng/pcap files down. */
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (fp != NULL) {
		c->iobuf = malloc(CAPTURE_IOBUF);
		if (c->iobuf)
			setvbuf(fp, c->iobuf, _IOFBF, CAPTURE_IOBUF);
		c->pcap = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, pcap_err);
		if (c->pcap == NULL && fp != stdin)
			fclose(fp);
	} else {
		snprintf(pcap_err, sizeof pcap_err, "%s", strerror(errno));
	}
	if (c->pcap == NULL) {
		/* libpcap names the file itself in some messages ("x: No such file"). */
		if (strncmp(pcap_err, path, strlen(path)) == 0)
			snprintf(err, errlen, "%s", pcap_err);
		else
			snprintf(err, errlen, "%s: %s", shown, pcap_err[0] ? pcap_err : "cannot open capture");
		capture_close(c);
		return NULL;
	}
	c->dlt = pcap_datalink(c->pcap);
	return c;
}

/* libpcap on Linux counts what the socket saw before the filter was in place,
 * and frames it flushes while swapping filters as dropped (tcpdump
 * --immediate-mode reports hundreds of kernel drops on a busy lo with a
 * filter that matches nothing). The counters we report start when the
 * filter is set. */
static void counts_baseline(struct capture *c)
{
	if (!c->live || pcap_stats(c->pcap, &c->base) != 0)
		memset(&c->base, 0, sizeof(c->base));
}

struct capture *capture_open_live(const struct capture_live_config *cfg, char *err, size_t errlen)
{
	char pcap_err[PCAP_ERRBUF_SIZE] = "";
	struct capture *c;
	int rc;

	if ((c = capture_alloc(cfg->iface, err, errlen)) == NULL)
		return NULL;
	c->live = true;
	c->wait_ms = cfg->wait_ms > 0 ? cfg->wait_ms : DEFAULT_WAIT_MS;
	c->pcap = pcap_create(cfg->iface, pcap_err);
	if (c->pcap == NULL) {
		snprintf(err, errlen, "%s: %s", c->path, pcap_err[0] ? pcap_err : "cannot open interface");
		capture_close(c);
		return NULL;
	}
	/* Each setter can only fail on an activated handle; check them anyway. */
	if (pcap_set_snaplen(c->pcap, cfg->snaplen ? (int)cfg->snaplen : CAPTURE_MAX_SNAPLEN) != 0 ||
	    pcap_set_promisc(c->pcap, 0) != 0 || pcap_set_immediate_mode(c->pcap, 1) != 0 ||
	    pcap_set_timeout(c->pcap, c->wait_ms) != 0 ||
	    pcap_set_tstamp_precision(c->pcap, PCAP_TSTAMP_PRECISION_MICRO) != 0 ||
	    (cfg->buffer_bytes && pcap_set_buffer_size(c->pcap, (int)cfg->buffer_bytes) != 0)) {
		snprintf(err, errlen, "%s: cannot set capture options", c->path);
		capture_close(c);
		return NULL;
	}
	rc = pcap_activate(c->pcap);
	if (rc < 0) {
		const char *why = pcap_geterr(c->pcap);
		/* PCAP_ERROR leaves its text in pcap_geterr(); the others may not. */
		if (why == NULL || why[0] == '\0')
			why = pcap_statustostr(rc);
		snprintf(err, errlen, "%s: %s", c->path, why);
		capture_close(c);
		return NULL;
	}
	c->dlt = pcap_datalink(c->pcap);
	/* Non-blocking with poll() where the platform gives a descriptor; else
	 * the read timeout bounds each wait. */
	c->fd = pcap_get_selectable_fd(c->pcap);
	if (c->fd >= 0 && pcap_setnonblock(c->pcap, 1, pcap_err) != 0)
		c->fd = -1;
	counts_baseline(c);
	return c;
}

int capture_set_filter(struct capture *c, const char *filter, char *err, size_t errlen)
{
	struct bpf_program prog;

	if (pcap_compile(c->pcap, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "filter '%s': %s", filter, pcap_geterr(c->pcap));
		return -1;
	}
	if (pcap_setfilter(c->pcap, &prog) != 0) {
		snprintf(err, errlen, "filter '%s': %s", filter, pcap_geterr(c->pcap));
		pcap_freecode(&prog);
		return -1;
	}
	pcap_freecode(&prog);
	counts_baseline(c);
	return 0;
}

int capture_check_filter(const char *filter, char *err, size_t errlen)
{
	struct bpf_program prog;
	pcap_t *dead = pcap_open_dead(DLT_EN10MB, CAPTURE_MAX_SNAPLEN);
	int rc = 0;

	if (dead == NULL) {
		snprintf(err, errlen, "filter '%s': out of memory", filter);
		return -1;
	}
	if (pcap_compile(dead, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "filter '%s': %s", filter, pcap_geterr(dead));
		rc = -1;
	} else {
		pcap_freecode(&prog);
	}
	pcap_close(dead);
	return rc;
}

int capture_tee_fd(struct capture *c, int fd, char *err, size_t errlen)
{
	FILE *fp = fdopen(fd, "wb");

	if (fp == NULL) {
		snprintf(err, errlen, "%s: cannot keep a copy of the frames: %s", c->path, strerror(errno));
		close(fd);
		return -1;
	}
	c->tee = pcap_dump_fopen(c->pcap, fp);
	if (c->tee == NULL) {
		snprintf(err, errlen, "%s: cannot keep a copy of the frames: %s", c->path, pcap_geterr(c->pcap));
		fclose(fp);
		return -1;
	}
	return 0;
}

bool capture_is_live(const struct capture *c)
{
	return c->live;
}

const char *capture_name(const struct capture *c)
{
	return c->path;
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

static enum capture_status fail_read(struct capture *c, const char *why, char *err, size_t errlen)
{
	snprintf(c->failed, sizeof(c->failed), "%s: after frame %llu: %s", c->path, (unsigned long long)c->frames,
		 why);
	snprintf(err, errlen, "%s", c->failed);
	return CAPTURE_ERROR;
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
	if (rc == 0 && c->live && c->fd >= 0) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int n = poll(&pfd, 1, c->wait_ms);
		if (n < 0 && errno != EINTR)
			return fail_read(c, strerror(errno), err, errlen);
		if (n <= 0)
			return CAPTURE_AGAIN; /* the wait ended, or a signal came */
		rc = pcap_next_ex(c->pcap, &hdr, &data);
	}
	if (rc == 1) {
		c->frames++;
		f->num = c->frames;
		f->ts_us = ts_to_us(hdr->ts.tv_sec, hdr->ts.tv_usec);
		f->data = data;
		f->caplen = hdr->caplen;
		f->wirelen = hdr->len < hdr->caplen ? hdr->caplen : hdr->len;
		if (c->tee != NULL)
			pcap_dump((u_char *)c->tee, hdr, data);
		return CAPTURE_FRAME;
	}
	if (rc == 0 && c->live)
		return CAPTURE_AGAIN; /* read timeout, or poll woke for nothing */
	if (rc == PCAP_ERROR_BREAK && !c->live) /* -2: end of file */
		return CAPTURE_END;
	/* 0 cannot happen for a savefile; treat it as an error rather than spin. */
	return fail_read(c, rc == PCAP_ERROR ? pcap_geterr(c->pcap) : "unexpected read result", err, errlen);
}

int capture_counts(struct capture *c, struct capture_counts *out, char *err, size_t errlen)
{
	struct pcap_stat ps;

	memset(out, 0, sizeof(*out));
	if (!c->live) {
		snprintf(err, errlen, "%s: a file has no drop counters", c->path);
		return -1;
	}
	if (pcap_stats(c->pcap, &ps) != 0) {
		snprintf(err, errlen, "%s: %s", c->path, pcap_geterr(c->pcap));
		return -1;
	}
	/* u_int counters wrap; the differences stay right across one wrap. */
	out->received = (u_int)(ps.ps_recv - c->base.ps_recv);
	out->dropped = (u_int)(ps.ps_drop - c->base.ps_drop);
	out->if_dropped = (u_int)(ps.ps_ifdrop - c->base.ps_ifdrop);
	return 0;
}

void capture_close(struct capture *c)
{
	if (c == NULL)
		return;
	if (c->tee != NULL)
		pcap_dump_close(c->tee); /* flushes and closes the tee's FILE */
	if (c->pcap != NULL)
		pcap_close(c->pcap); /* closes the FILE too, so its buffer can go */
	free(c->iobuf);
	free(c->path);
	free(c);
}
