/* The sniffer's whole path over one capture file, for callers that only want
 * the engine's events (`wirewarden why`): capture -> link -> tcp_stream ->
 * packets -> engine (passive, capture time) -> <sinks>. */
#ifndef WW_SNIFF_PIPELINE_H
#define WW_SNIFF_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "sink/sink.h"

/* Runs <path> through the sniffer; every event goes to <sinks>. <ports>
 * are the TCP ports taken as MQTT (flows elsewhere count when they open with
 * CONNECT). Returns 0, or -1 with a one-line reason in <err>. */
int sniff_pipeline_file(const char *path, const uint16_t *ports, size_t n_ports, const struct evt_sinks *sinks,
			char *err, size_t errlen);

/* The same, with TCP ports <amps_ports> decoded as 60East AMPS (as `sniff --amps-port`). */
int sniff_pipeline_file_amps(const char *path, const uint16_t *ports, size_t n_ports, const uint16_t *amps_ports,
			     size_t n_amps_ports, const struct evt_sinks *sinks, char *err, size_t errlen);

#endif
