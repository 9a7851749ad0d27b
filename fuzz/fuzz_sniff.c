/* libFuzzer target over the sniffer's whole path below the capture file:
 * link_decode (link layer, IPv4/IPv6, TCP header; IPv4 fragments through
 * sniff/ipfrag.c) -> tcp_stream_segment
 * (flows, reassembly, holes, FIN/RST, idle expiry, eviction) -> packets
 * (MQTT framing, resync, decoding) -> the passive session engine (verdicts)
 * -> the shutdown watch (sniff/shutdown.c), with no output, as `wirewarden
 * sniff` runs it.
 *
 * Input:
 *   byte 0   bits 0-2 link type (EN10MB, LINUX_SLL, LINUX_SLL2, RAW, IPV4,
 *            IPV6, NULL, LOOP); bit 3 tiny caps (4 flows, small held-bytes
 *            caps, 2 s idle timeout); bit 4 --packets JSON lines to /dev/null
 *            instead of quiet; bit 5 a 64-byte packet cap; bit 6 the
 *            take-over watch with a storm count of 2; bit 7 ports 1883 and 8883
 *            are AMPS (--amps-port: sniff/packets_amps.c) instead of MQTT
 *   then records, until the input ends:
 *            dt(1)  capture time step: 0-249 x 10 ms; 250 +1 s; 251 +10 s;
 *                   252 +100 s; 253 +1 h; 254 -1 s (clocks step back); 255 0
 *            len(2) big-endian frame length, cut to what is left
 *            frame(len)
 * fuzz/make_sniff_seeds.py writes seeds in this form from the test captures.
 *
 * Invariant checked: the engine emits exactly one disconnect (a verdict) for
 * every connection it opened, after the open and never twice. Also linked into
 * tests/unit/test_fuzz_regress_sniff to replay fuzz/regress/sniff and
 * fuzz/seeds/sniff under `make check`. */
#include <pcap/dlt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/engine.h"
#include "sink/sink.h"
#include "sniff/ipfrag.h"
#include "sniff/link.h"
#include "sniff/packets.h"
#include "sniff/shutdown.h"
#include "sniff/tcp_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static const int link_types[8] = { DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW,
				   DLT_IPV4,   DLT_IPV6,      DLT_NULL,       DLT_LOOP };

/* Per input: which connections are open (1), closed (2) or never seen (0). */
struct verdict_check {
	uint8_t *state;
	size_t cap;
	uint64_t opened, closed;
};

static void check_sink(void *ctx, const struct evt *e)
{
	struct verdict_check *vc = ctx;

	if (e->code != EVT_CONNECTION_OPENED && e->code != EVT_DISCONNECT)
		return;
	CHECK(e->conn_id >= 1 && e->conn_id <= vc->cap);
	uint8_t *st = &vc->state[e->conn_id - 1];
	if (e->code == EVT_CONNECTION_OPENED) {
		CHECK(*st == 0); /* connection ids are never reused */
		*st = 1;
		vc->opened++;
	} else {
		CHECK(*st == 1);          /* one verdict, after the open */
		CHECK(e->reason != EVT_R_NONE);
		*st = 2;
		vc->closed++;
	}
}

static int64_t time_step(uint8_t dt)
{
	switch (dt) {
	case 250: return INT64_C(1000000);
	case 251: return INT64_C(10000000);
	case 252: return INT64_C(100000000);
	case 253: return INT64_C(3600000000);
	case 254: return -INT64_C(1000000);
	case 255: return 0;
	default: return (int64_t)dt * 10000;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct verdict_check vc = { 0 };
	struct evt_sinks sinks = { 0 };
	struct engine_config ec = { .passive = true, .protocol = "mqtt" };
	struct packets_config pcfg = { 0 };
	struct tcp_stream_config tcfg = { 0 };
	struct tcp_stream_ops ops;
	struct engine *eng;
	struct packets *pk;
	struct tcp_stream *ts;
	struct cursor in = cursor_make(data, size);
	uint8_t ctl;
	int64_t now_us = INT64_C(1700000000000000);
	uint64_t frame = 0;

	if (!cursor_u8(&in, &ctl))
		return 0;
	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return 0;
	/* Every segment can open at most one connection. */
	vc.cap = size / 3 + 1;
	vc.state = calloc(vc.cap, 1);
	if (vc.state == NULL)
		return 0;
	evt_sinks_add(&sinks, check_sink, &vc);
	struct evt_sinks watched = { 0 };
	struct shutdown_watch *sw = shutdown_watch_new(&sinks);
	struct ipfrag_config fc = { 0 };
	if (sw == NULL || evt_sinks_add(&watched, shutdown_watch_sink, sw) != 0) {
		shutdown_watch_free(sw);
		free(vc.state);
		return 0;
	}
	if (ctl & 0x40) {
		ec.pol.takeover.mode = WW_MODE_OBSERVE;
		ec.pol.takeover.storm_count = 2;
		ec.pol.takeover.storm_window_ms = 60000;
		ec.pol.takeover.cooldown_ms = 30000;
	}
	eng = engine_new(&ec, &watched);
	pcfg.out = devnull;
	pcfg.json = (ctl & 0x10) != 0;
	pcfg.quiet = !pcfg.json;
	pcfg.eng = eng;
	pcfg.max_packet = (ctl & 0x20) ? 64 : 0;
	pcfg.ports[0] = 1883;
	pcfg.ports[1] = 8883;
	pcfg.n_ports = 2;
	memcpy(tcfg.ports, pcfg.ports, sizeof(tcfg.ports));
	tcfg.n_ports = 2;
	if (ctl & 0x80) {
		memcpy(pcfg.amps_ports, pcfg.ports, sizeof(pcfg.amps_ports));
		pcfg.n_amps_ports = 2;
	}
	if (ctl & 0x08) {
		tcfg.max_flows = 4;
		tcfg.max_held_per_flow = 2048;
		tcfg.max_held_total = 4096;
		tcfg.idle_timeout_us = 2000000;
		pcfg.max_buffered = 8192;
		fc.max_datagrams = 2;
		fc.max_bytes = 4096;
		fc.timeout_us = 2000000;
	}
	struct ipfrag *frags = ipfrag_new(&fc);
	pk = eng ? packets_new(&pcfg) : NULL;
	ts = NULL;
	if (pk) {
		packets_stream_ops(pk, &ops);
		ts = tcp_stream_new(&tcfg, &ops);
	}
	if (ts && frags) {
		uint8_t dt;
		uint16_t len;
		while (cursor_u8(&in, &dt) && cursor_be16(&in, &len)) {
			struct cursor fr;
			struct link_tcp seg;
			size_t n = len < cursor_left(&in) ? len : cursor_left(&in);
			if (!cursor_take(&in, n, &fr))
				break;
			now_us += time_step(dt);
			frame++;
			struct tcp_when at = { frame, now_us };
			if (ipfrag_link_decode(frags, link_types[ctl & 7], fr, now_us, &seg, NULL) == LINK_TCP)
				tcp_stream_segment(ts, &seg, &at);
			shutdown_watch_tick(sw, now_us);
		}
		ipfrag_finish(frags);
		tcp_stream_finish(ts);
		shutdown_watch_flush(sw);
		CHECK(vc.opened == vc.closed);
	}
	tcp_stream_free(ts);
	ipfrag_free(frags);
	shutdown_watch_free(sw);
	packets_free(pk);
	engine_free(eng);
	free(vc.state);
	return 0;
}
