/* See pipeline.h. */
#include "sniff/pipeline.h"

#include <stdio.h>
#include <string.h>

#include "policy/engine.h"
#include "sniff/capture.h"
#include "sniff/ipfrag.h"
#include "sniff/link.h"
#include "sniff/packets.h"
#include "sniff/shutdown.h"
#include "sniff/tcp_stream.h"

int sniff_pipeline_file(const char *path, const uint16_t *ports, size_t n_ports, const struct evt_sinks *sinks,
			char *err, size_t errlen)
{
	return sniff_pipeline_file_amps(path, ports, n_ports, NULL, 0, sinks, err, errlen);
}

int sniff_pipeline_file_amps(const char *path, const uint16_t *ports, size_t n_ports, const uint16_t *amps_ports,
			     size_t n_amps_ports, const struct evt_sinks *sinks, char *err, size_t errlen)
{
	char cerr[CAPTURE_ERR_LEN];
	struct capture *cap = capture_open(path, cerr, sizeof cerr);
	if (!cap) {
		snprintf(err, errlen, "%s", cerr);
		return -1;
	}
	int dlt = capture_link_type(cap);
	if (!link_type_supported(dlt)) {
		snprintf(err, errlen, "%s: link type %s is not supported", path, capture_link_name(cap));
		capture_close(cap);
		return -1;
	}
	struct engine_config ec = { .passive = true, .protocol = "mqtt" };
	struct evt_sinks watched = { 0 };
	struct shutdown_watch *sw = shutdown_watch_new(sinks);
	struct engine *eng = sw && evt_sinks_add(&watched, shutdown_watch_sink, sw) == 0 ? engine_new(&ec, &watched) : NULL;
	struct packets_config pcfg = { .out = stdout, .quiet = true, .eng = eng };
	struct tcp_stream_config tcfg = { 0 };
	if (n_ports > TCP_STREAM_MAX_PORTS)
		n_ports = TCP_STREAM_MAX_PORTS;
	memcpy(pcfg.ports, ports, n_ports * sizeof *ports);
	/* AMPS ports are decoded as AMPS, and tracked like the others */
	for (size_t i = 0; i < n_amps_ports && pcfg.n_amps_ports < TCP_STREAM_MAX_PORTS; i++) {
		pcfg.amps_ports[pcfg.n_amps_ports++] = amps_ports[i];
		if (n_ports < TCP_STREAM_MAX_PORTS)
			pcfg.ports[n_ports++] = amps_ports[i];
	}
	memcpy(tcfg.ports, pcfg.ports, n_ports * sizeof *ports);
	pcfg.n_ports = tcfg.n_ports = n_ports;
	struct packets *pk = eng ? packets_new(&pcfg) : NULL;
	struct tcp_stream *ts = NULL;
	struct tcp_stream_ops ops;
	if (pk) {
		packets_stream_ops(pk, &ops);
		ts = tcp_stream_new(&tcfg, &ops);
	}
	struct ipfrag *frags = ipfrag_new(NULL);
	int rc = 0;
	if (!ts || !frags) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	} else {
		struct capture_frame fr;
		enum capture_status st;
		while ((st = capture_next(cap, &fr, cerr, sizeof cerr)) == CAPTURE_FRAME) {
			struct link_tcp seg;
			struct tcp_when at = { fr.num, fr.ts_us };
			if (ipfrag_link_decode(frags, dlt, cursor_make(fr.data, fr.caplen), fr.ts_us, &seg, NULL) ==
			    LINK_TCP)
				tcp_stream_segment(ts, &seg, &at);
			shutdown_watch_tick(sw, fr.ts_us);
		}
		tcp_stream_finish(ts);
		shutdown_watch_flush(sw);
		if (st == CAPTURE_ERROR) {
			snprintf(err, errlen, "%s", cerr);
			rc = -1;
		}
	}
	tcp_stream_free(ts);
	ipfrag_free(frags);
	packets_free(pk);
	engine_free(eng);
	shutdown_watch_free(sw);
	capture_close(cap);
	return rc;
}
