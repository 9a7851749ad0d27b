/* The sink set and the two stdio file sinks (see sink.h). Rendering is in
 * text.c and json.c; this file only dispatches and writes. */
#include "sink/sink.h"

#include <stdlib.h>
#include <string.h>

int evt_sinks_add(struct evt_sinks *ss, evt_sink_fn fn, void *ctx)
{
	if (ss->n >= EVT_SINKS_MAX)
		return -1;
	ss->s[ss->n].fn = fn;
	ss->s[ss->n].ctx = ctx;
	ss->n++;
	return 0;
}

void evt_emit(const struct evt_sinks *ss, const struct evt *e)
{
	for (unsigned i = 0; i < ss->n && i < EVT_SINKS_MAX; i++)
		ss->s[i].fn(ss->s[i].ctx, e);
}

struct evt_file_sink evt_file_sink_make(FILE *fp, bool flush_each)
{
	struct evt_file_sink fs = { fp, flush_each, 0 };
	return fs;
}

/* Writes <len> bytes of <line> and a newline in one stdio call sequence; a
 * short write counts as a failure but is not retried (the stream is broken). */
void evt_file_sink_write_line(struct evt_file_sink *fs, const char *line, size_t len)
{
	if (fwrite(line, 1, len, fs->fp) != len || fputc('\n', fs->fp) == EOF ||
	    (fs->flush_each && fflush(fs->fp) != 0))
		fs->failed++;
}

void evt_text_sink_fn(void *ctx, const struct evt *e)
{
	struct evt_file_sink *fs = ctx;
	char line[EVT_TEXT_MAX];
	size_t len = evt_render_text(e, line, sizeof line);

	evt_file_sink_write_line(fs, line, len);
}

void evt_json_sink_fn(void *ctx, const struct evt *e)
{
	struct evt_file_sink *fs = ctx;
	char *s = evt_render_json(e);

	if (s == NULL) {
		fs->failed++;
		return;
	}
	evt_file_sink_write_line(fs, s, strlen(s));
	free(s);
}

int evt_sinks_add_text(struct evt_sinks *ss, struct evt_file_sink *fs)
{
	return evt_sinks_add(ss, evt_text_sink_fn, fs);
}

int evt_sinks_add_json(struct evt_sinks *ss, struct evt_file_sink *fs)
{
	return evt_sinks_add(ss, evt_json_sink_fn, fs);
}
