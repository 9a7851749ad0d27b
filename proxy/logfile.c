/* The proxy's event log files (text and JSON lines), reopened on SIGHUP so
 * that logrotate can move them away: the new file is opened first and
 * swapped in under the file's own lock, which every write takes, so an event
 * is never split between the old file and the new one, and a file that
 * cannot be opened leaves the old one in use. */
#include "proxy/proxy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int log_file_open(struct log_file *lf, const char *path, FILE *dash, bool json)
{
	memset(lf, 0, sizeof *lf);
	pthread_mutex_init(&lf->lock, NULL);
	lf->json = json;
	FILE *fp = dash;
	if (path && strcmp(path, "-") != 0) {
		if (!(lf->path = strdup(path)) || !(fp = fopen(path, "a")))
			return -1;
	}
	lf->fs = evt_file_sink_make(fp, false);
	return 0;
}

/* Rendered before the lock is taken, so that workers logging at once wait
 * only for each other's fwrite, not for each other's formatting. */
void log_file_sink_fn(void *ctx, const struct evt *e)
{
	struct log_file *lf = ctx;
	char text[EVT_TEXT_MAX];
	char *json = NULL;
	const char *line = text;
	size_t len;
	if (lf->json) {
		if (!(json = evt_render_json(e))) {
			pthread_mutex_lock(&lf->lock);
			lf->fs.failed++;
			pthread_mutex_unlock(&lf->lock);
			return;
		}
		line = json;
		len = strlen(json);
	} else
		len = evt_render_text(e, text, sizeof text);
	pthread_mutex_lock(&lf->lock);
	evt_file_sink_write_line(&lf->fs, line, len);
	pthread_mutex_unlock(&lf->lock);
	free(json);
}

void log_file_flush(struct log_file *lf)
{
	pthread_mutex_lock(&lf->lock);
	if (lf->fs.fp)
		fflush(lf->fs.fp);
	pthread_mutex_unlock(&lf->lock);
}

int log_file_reopen(struct log_file *lf)
{
	if (!lf->path)
		return 0; /* standard error or output: nothing to reopen */
	FILE *fp = fopen(lf->path, "a");
	if (!fp) {
		fprintf(stderr, "wirewarden proxy: cannot reopen %s: %s; still writing to the old file\n", lf->path,
			strerror(errno));
		return -1;
	}
	pthread_mutex_lock(&lf->lock);
	FILE *old = lf->fs.fp;
	lf->fs.fp = fp;
	pthread_mutex_unlock(&lf->lock);
	fclose(old);
	return 0;
}

void log_file_close(struct log_file *lf)
{
	if (lf->path && lf->fs.fp)
		fclose(lf->fs.fp);
	free(lf->path);
	lf->path = NULL;
	lf->fs.fp = NULL;
	pthread_mutex_destroy(&lf->lock);
}
