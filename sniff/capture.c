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
#include <sys/stat.h>
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
	/* A classic pcap file on disk is read here, not by libpcap (see
	 * direct_classic): a buffer of whole records, read with pread(). */
	int dfd;             /* the file's descriptor, -1 when libpcap reads */
	uint8_t *dbuf;
	size_t dlen, dpos;   /* bytes in dbuf, offset of the next record in it */
	uint64_t doff;       /* file offset of the byte after dbuf's last */
	bool dswapped, dnsec;
	uint32_t dsnaplen;
	struct bpf_program prog; /* the filter, applied by hand on a direct read */
	bool have_prog;
	struct pcap_pkthdr dhdr;
};

/* Bytes read at a time: four of the largest records. */
#define DIRECT_BUF (1u << 20)

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
	c->dfd = -1;
	return c;
}

static uint32_t rd32(const uint8_t *p, bool swapped)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	return swapped ? __builtin_bswap32(v) : v;
}

/* A classic pcap file (version 2.4, micro- or nanosecond, either byte
 * order) that is a regular file is read here: libpcap reads each record
 * with two fread() calls and copies it from the stdio buffer into its own,
 * which was a quarter of sniff's time on a large file. Here records are
 * handed out in place from a 1 MiB buffer. (A mapping of the file was
 * tried first and was slower: a page fault per page costs more than the
 * copy, in a VM.) Anything else (pcapng, stdin, an old version) stays with
 * libpcap. libpcap still opens the file (its header checks, link type and
 * error texts stay the same). The record checks and their error texts are
 * libpcap's (sf-pcap.c). */
static void direct_classic(struct capture *c, FILE *fp)
{
	struct stat st;
	uint8_t h[24];
	int fd = fileno(fp);

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
		return;
	uint32_t magic = rd32(h, false);
	bool swapped, nsec;
	if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
		swapped = false;
		nsec = magic == 0xa1b23c4d;
	} else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
		swapped = true;
		nsec = magic == 0x4d3cb2a1;
	} else {
		return;
	}
	uint16_t major = (uint16_t)(h[4] | h[5] << 8), minor = (uint16_t)(h[6] | h[7] << 8);
	if (swapped) {
		major = __builtin_bswap16(major);
		minor = __builtin_bswap16(minor);
	}
	if (major != 2 || minor != 4 || (c->dbuf = malloc(DIRECT_BUF)) == NULL)
		return;
	c->dfd = fd;
	c->doff = 24;
	c->dswapped = swapped;
	c->dnsec = nsec;
	c->dsnaplen = rd32(h + 16, swapped);
}

/* Makes at least <need> bytes from dpos on available, as far as the file
 * has them: moves the unread tail to the front and reads after it. */
static void direct_fill(struct capture *c, size_t need)
{
	if (c->dlen - c->dpos >= need)
		return;
	memmove(c->dbuf, c->dbuf + c->dpos, c->dlen - c->dpos);
	c->dlen -= c->dpos;
	c->dpos = 0;
	while (c->dlen < DIRECT_BUF) {
		ssize_t n = pread(c->dfd, c->dbuf + c->dlen, DIRECT_BUF - c->dlen, (off_t)c->doff);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		c->dlen += (size_t)n;
		c->doff += (uint64_t)n;
		if (c->dlen - c->dpos >= need)
			break;
	}
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
		if (fp != stdin)
			direct_classic(c, fp); /* then libpcap only reads the file header */
		c->iobuf = c->dfd < 0 ? malloc(CAPTURE_IOBUF) : NULL;
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
	if (c->dfd >= 0) { /* applied by capture_next() */
		if (c->have_prog)
			pcap_freecode(&c->prog);
		c->prog = prog;
		c->have_prog = true;
		return 0;
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

/* The next record of a file read directly (see direct_classic), checked
 * as libpcap's sf-pcap.c checks it. A read error looks like the end of the
 * data, as it does to libpcap's fread(). */
static enum capture_status direct_next(struct capture *c, struct capture_frame *f, char *err, size_t errlen)
{
	char why[160];

	for (;;) {
		direct_fill(c, 16);
		size_t left = c->dlen - c->dpos;
		if (left == 0)
			return CAPTURE_END;
		if (left < 16) {
			snprintf(why, sizeof why, "truncated dump file; tried to read 16 header bytes, only got %zu", left);
			return fail_read(c, why, err, errlen);
		}
		const uint8_t *r = c->dbuf + c->dpos;
		uint32_t sec = rd32(r, c->dswapped), frac = rd32(r + 4, c->dswapped);
		uint32_t caplen = rd32(r + 8, c->dswapped), len = rd32(r + 12, c->dswapped);
		if (caplen > CAPTURE_MAX_SNAPLEN) {
			snprintf(why, sizeof why, "invalid packet capture length %u, bigger than snaplen of %u", caplen,
				 (unsigned)CAPTURE_MAX_SNAPLEN);
			return fail_read(c, why, err, errlen);
		}
		direct_fill(c, 16 + (size_t)caplen);
		r = c->dbuf + c->dpos;
		left = c->dlen - c->dpos;
		if (caplen > left - 16) {
			snprintf(why, sizeof why, "truncated dump file; tried to read %u captured bytes, only got %zu", caplen,
				 left - 16);
			return fail_read(c, why, err, errlen);
		}
		c->dpos += 16 + (size_t)caplen;
		/* Like libpcap: a record longer than the file's snap length is cut to it. */
		uint32_t kept = c->dsnaplen != 0 && caplen > c->dsnaplen ? c->dsnaplen : caplen;
		if (c->have_prog) {
			c->dhdr.caplen = kept;
			c->dhdr.len = len;
			if (pcap_offline_filter(&c->prog, &c->dhdr, r + 16) == 0)
				continue; /* not counted: frames are numbered among those the filter passes, as before */
		}
		c->frames++;
		f->num = c->frames;
		f->ts_us = ts_to_us(sec, c->dnsec ? frac / 1000 : frac);
		f->data = r + 16;
		f->caplen = kept;
		f->wirelen = len < kept ? kept : len;
		return CAPTURE_FRAME;
	}
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
	if (c->dfd >= 0)
		return direct_next(c, f, err, errlen);
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
	free(c->dbuf);
	if (c->have_prog)
		pcap_freecode(&c->prog);
	if (c->pcap != NULL)
		pcap_close(c->pcap); /* closes the FILE too, so its buffer can go */
	free(c->iobuf);
	free(c->path);
	free(c);
}
