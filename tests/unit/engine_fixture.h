/* The prelude the engine tests share: one engine on the test's config, whose
 * sink records each event's fields so that a test can find an event by code
 * and assert on what it said. Header-only, with file-local state, because each
 * test program owns its engine and its recorded events. Include after
 * <cmocka.h>. */
#ifndef WW_TESTS_ENGINE_FIXTURE_H
#define WW_TESTS_ENGINE_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "policy/engine.h"
#include "sink/sink.h"

#define S(x) ((int64_t)((x) * 1000000.0))

struct seen {
	enum evt_code code;
	enum evt_reason reason;
	enum evt_party closed_by;
	enum evt_mode mode;
	enum evt_confidence conf;
	int wire;
	int64_t count;
	char policy[32], amps[32], protocol[8];
	char detail[256], evidence[1024];
};
static struct seen events[64];
static unsigned n_events;

static void capture(void *ctx, const struct evt *e)
{
	(void)ctx;
	if (n_events >= 64)
		return;
	struct seen *s = &events[n_events++];
	s->code = e->code;
	s->reason = e->reason;
	s->closed_by = e->closed_by;
	s->mode = e->mode;
	s->conf = e->confidence;
	s->wire = e->wire_reason;
	s->count = e->count;
	snprintf(s->policy, sizeof s->policy, "%s", e->policy ? e->policy : "");
	snprintf(s->amps, sizeof s->amps, "%s", e->amps_reason ? e->amps_reason : "");
	snprintf(s->protocol, sizeof s->protocol, "%s", e->protocol ? e->protocol : "");
	snprintf(s->detail, sizeof s->detail, "%s", e->detail);
	s->evidence[0] = 0;
	for (unsigned i = 0; i < e->n_evidence; i++) {
		size_t at = strlen(s->evidence);
		snprintf(s->evidence + at, sizeof s->evidence - at, "%s | ", e->evidence[i].text);
	}
}

/* The <nth> (from 0) recorded event with <code>; NULL if there is none. */
static const struct seen *find(enum evt_code code, unsigned nth)
{
	for (unsigned i = 0; i < n_events; i++)
		if (events[i].code == code && nth-- == 0)
			return &events[i];
	return NULL;
}

static struct engine *eng;
static struct ww_config cfg;

/* A fresh engine on <cfg> as the test has set it; forgets recorded events.
 * (engine_config.protocol is left out: each session says its own.) */
static void make_engine(void)
{
	struct evt_sinks sinks = { 0 };
	evt_sinks_add(&sinks, capture, NULL);
	struct engine_config ec = { .pol = cfg.policies };
	eng = engine_new(&ec, &sinks);
	assert_non_null(eng);
	n_events = 0;
}

/* A fresh engine whose only non-default policy is slow_client in <mode>,
 * offline at 1000 bytes queued, cut at <disconnect_bytes>, 2 s of grace. */
static void make_slow_client_engine(enum ww_mode mode, uint64_t disconnect_bytes)
{
	cfg.policies.slow_client.mode = mode;
	cfg.policies.slow_client.offline_bytes = 1000;
	cfg.policies.slow_client.disconnect_bytes = disconnect_bytes;
	cfg.policies.slow_client.grace_ms = 2000;
	make_engine();
}

static int setup(void **state)
{
	(void)state;
	ww_config_defaults(&cfg);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	engine_free(eng);
	eng = NULL;
	return 0;
}

#endif
