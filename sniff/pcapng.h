/* A pcapng writer (the pcapng draft, IETF opsawg, "PCAP Next Generation
 * Dump File Format"): a Section Header Block, one Interface Description Block
 * per link type, and Enhanced Packet Blocks with opt_comment options, which
 * Wireshark shows as packet comments (frame.comment). libpcap writes no
 * comments, so this writes the blocks itself, in host byte order (the byte
 * order magic tells readers which). */
#ifndef WW_SNIFF_PCAPNG_H
#define WW_SNIFF_PCAPNG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct pcapng_writer;

/* Creates <path> (truncating it) and writes the section header. NULL on
 * failure, with a one-line reason in <err>. */
struct pcapng_writer *pcapng_open(const char *path, const char *app, char *err, size_t errlen);

/* Declares an interface with link type <linktype> (a LINKTYPE_ value);
 * returns its id (0, 1, ...) or -1. Timestamps are in microseconds. */
int pcapng_add_interface(struct pcapng_writer *w, int linktype, uint32_t snaplen);

/* Writes one packet of <caplen> bytes (<origlen> on the wire) at <ts_us>, with
 * <n> comments (UTF-8, each cut at 65,000 bytes). 0, or -1 on a write error. */
int pcapng_write_packet(struct pcapng_writer *w, uint32_t ifid, int64_t ts_us, const uint8_t *data, uint32_t caplen,
			uint32_t origlen, const char *const *comments, unsigned n);

/* Flushes and closes; 0, or -1 if any write failed. Safe on NULL. */
int pcapng_close(struct pcapng_writer *w);

#endif
