/* pcapng writer (see pcapng.h). Every block is built in a bounded buffer and
 * written with one fwrite, so a failed write never leaves half a block that
 * a later block would be read as.
 *
 *   block:  type (4) | total length (4) | body ... | total length (4)
 *   option: code (2) | length (2) | value, padded to 4 | ... | opt_endofopt (0, 0)
 */
#include "sniff/pcapng.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 0x00000001u
#define BT_EPB 0x00000006u
#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_TSRESOL 9
#define COMMENT_MAX 65000u

struct pcapng_writer {
	FILE *fp;
	bool failed;
	unsigned n_if;
	uint8_t *buf;
	size_t cap;
};

struct blk {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void put(struct blk *b, const void *src, size_t n)
{
	if (n == 0)
		return;
	if (b->overflow || b->cap - b->len < n) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void put32(struct blk *b, uint32_t v) { put(b, &v, 4); }
static void put16(struct blk *b, uint16_t v) { put(b, &v, 2); }

static void pad4(struct blk *b)
{
	static const uint8_t zero[4];
	put(b, zero, (4 - b->len % 4) % 4);
}

static void option(struct blk *b, uint16_t code, const void *v, size_t n)
{
	put16(b, code);
	put16(b, (uint16_t)n);
	put(b, v, n);
	pad4(b);
}

/* Finishes block <b> started with its type and a length placeholder. */
static int block_write(struct pcapng_writer *w, struct blk *b)
{
	uint32_t total = (uint32_t)b->len + 4;
	put32(b, total);
	if (b->overflow) {
		w->failed = true;
		return -1;
	}
	memcpy(b->p + 4, &total, 4);
	if (fwrite(b->p, 1, b->len, w->fp) != b->len) {
		w->failed = true;
		return -1;
	}
	return 0;
}

static struct blk block_start(struct pcapng_writer *w, uint32_t type, size_t need)
{
	if (need > w->cap) {
		uint8_t *nb = realloc(w->buf, need);
		if (nb) {
			w->buf = nb;
			w->cap = need;
		}
	}
	struct blk b = { w->buf, 0, w->cap, w->buf == NULL };
	put32(&b, type);
	put32(&b, 0);
	return b;
}

struct pcapng_writer *pcapng_open(const char *path, const char *app, char *err, size_t errlen)
{
	struct pcapng_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->fp = fopen(path, "wb"))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(w);
		return NULL;
	}
	size_t applen = app ? strnlen(app, 256) : 0;
	struct blk b = block_start(w, BT_SHB, 64 + applen);
	put32(&b, 0x1A2B3C4Du); /* byte-order magic */
	put16(&b, 1);
	put16(&b, 0);
	put32(&b, 0xFFFFFFFFu); /* section length unknown */
	put32(&b, 0xFFFFFFFFu);
	if (applen)
		option(&b, SHB_USERAPPL, app, applen);
	option(&b, OPT_END, NULL, 0);
	if (block_write(w, &b) != 0) {
		snprintf(err, errlen, "%s: cannot write the section header", path);
		pcapng_close(w);
		return NULL;
	}
	return w;
}

int pcapng_add_interface(struct pcapng_writer *w, int linktype, uint32_t snaplen)
{
	struct blk b = block_start(w, BT_IDB, 64);
	put16(&b, (uint16_t)linktype);
	put16(&b, 0);
	put32(&b, snaplen);
	uint8_t res = 6; /* microseconds */
	option(&b, IF_TSRESOL, &res, 1);
	option(&b, OPT_END, NULL, 0);
	if (block_write(w, &b) != 0)
		return -1;
	return (int)w->n_if++;
}

int pcapng_write_packet(struct pcapng_writer *w, uint32_t ifid, int64_t ts_us, const uint8_t *data, uint32_t caplen,
			uint32_t origlen, const char *const *comments, unsigned n)
{
	size_t need = 64 + (size_t)caplen;
	for (unsigned i = 0; i < n; i++)
		need += 8 + strnlen(comments[i], COMMENT_MAX);
	struct blk b = block_start(w, BT_EPB, need);
	uint64_t ts = (uint64_t)ts_us;
	put32(&b, ifid);
	put32(&b, (uint32_t)(ts >> 32));
	put32(&b, (uint32_t)ts);
	put32(&b, caplen);
	put32(&b, origlen);
	put(&b, data, caplen);
	pad4(&b);
	for (unsigned i = 0; i < n; i++)
		option(&b, OPT_COMMENT, comments[i], strnlen(comments[i], COMMENT_MAX));
	if (n)
		option(&b, OPT_END, NULL, 0);
	return block_write(w, &b);
}

int pcapng_close(struct pcapng_writer *w)
{
	if (!w)
		return 0;
	int rc = w->failed ? -1 : 0;
	if (w->fp && fclose(w->fp) != 0)
		rc = -1;
	free(w->buf);
	free(w);
	return rc;
}
