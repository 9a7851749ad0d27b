/* Lines from a file, one at a time, through one fixed buffer: memory stays
 * the same whatever the file's size. A line longer than the buffer is cut at
 * the buffer's size (the rest skipped, counted in long_lines): log lines
 * that long are not ones a reader would match. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/why.h"

int why_lines_open(struct why_lines *l, const char *path, size_t cap)
{
	memset(l, 0, sizeof *l);
	l->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0)
		return -1;
#ifdef POSIX_FADV_SEQUENTIAL
	(void)posix_fadvise(l->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	l->buf = malloc(cap);
	if (!l->buf) {
		close(l->fd);
		l->fd = -1;
		errno = ENOMEM;
		return -1;
	}
	l->cap = cap;
	return 0;
}

static int fill(struct why_lines *l)
{
	if (l->off > 0) {
		memmove(l->buf, l->buf + l->off, l->len - l->off);
		l->len -= l->off;
		l->off = 0;
	}
	while (l->len < l->cap) {
		ssize_t r = read(l->fd, l->buf + l->len, l->cap - l->len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			l->eof = true;
			break;
		}
		l->len += (size_t)r;
		if (memchr(l->buf + l->len - (size_t)r, '\n', (size_t)r))
			break;
	}
	return 0;
}

int why_lines_next(struct why_lines *l, struct why_text *line)
{
	for (;;) {
		char *s = l->buf + l->off;
		size_t avail = l->len - l->off;
		char *nl = avail ? memchr(s, '\n', avail) : NULL;
		if (nl) {
			l->off += (size_t)(nl - s) + 1;
			if (l->skipping) { /* the tail of a line already given, cut */
				l->skipping = false;
				continue;
			}
			size_t n = (size_t)(nl - s);
			if (n && s[n - 1] == '\r')
				n--;
			line->p = s;
			line->n = n;
			return 1;
		}
		if (l->skipping) /* still inside a cut line: drop what has come of it */
			l->off = l->len, avail = 0;
		if (l->eof) {
			if (avail == 0) {
				l->off = l->len;
				return 0;
			}
			line->p = s;
			line->n = avail;
			l->off = l->len;
			return 1;
		}
		if (avail == l->cap && !l->skipping) { /* a line longer than the buffer: give its start, skip the rest */
			l->long_lines++;
			line->p = s;
			line->n = avail;
			l->off = l->len;
			l->skipping = true;
			return 1;
		}
		if (fill(l) != 0)
			return -1;
	}
}

void why_lines_close(struct why_lines *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->buf);
	l->fd = -1;
	l->buf = NULL;
}
