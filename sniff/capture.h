/* Where frames come from: the only sniff file that talks to libpcap. It opens
 * a pcap or pcapng file (or standard input for "-"), or a live interface in
 * immediate mode, optionally with a BPF filter, and hands out frames one at a
 * time with a 1-based frame number (as Wireshark numbers them) and a
 * microsecond timestamp taken from the capture. Every libpcap failure becomes
 * one line of text naming the file or interface. What the frame bytes mean is
 * sniff/link.c's job. */
#ifndef WW_SNIFF_CAPTURE_H
#define WW_SNIFF_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAPTURE_ERR_LEN 512 /* room for one error line: file name + libpcap's text */
#define CAPTURE_MAX_SNAPLEN 262144 /* libpcap's MAXIMUM_SNAPLEN */

struct capture; /* opaque; owned by the caller of capture_open() or capture_open_live() */

/* One frame as read from the file. <data> is valid until the next call to
 * capture_next() or capture_close(); <caplen> bytes of it were captured out of
 * <wirelen> on the wire (caplen < wirelen: cut by the snap length). */
struct capture_frame {
	uint64_t num;   /* 1-based frame number */
	int64_t ts_us;  /* capture time, microseconds since the epoch */
	const uint8_t *data;
	uint32_t caplen;
	uint32_t wirelen;
};

enum capture_status {
	CAPTURE_FRAME = 0, /* <f> holds the next frame */
	CAPTURE_END,       /* no more frames: the file ended cleanly */
	CAPTURE_ERROR,     /* read failure (truncated or corrupt file, interface gone); <err> says which */
	CAPTURE_AGAIN,     /* live only: no frame within the wait, or a signal arrived; call again */
};

/* A live capture. */
struct capture_live_config {
	const char *iface;     /* "lo", "eth0", "any" */
	uint32_t snaplen;      /* bytes kept per frame; 0 = CAPTURE_MAX_SNAPLEN */
	uint32_t buffer_bytes; /* kernel ring size; 0 = libpcap's default (2 MiB) */
	int wait_ms;           /* longest capture_next() waits for a frame; 0 = 200 */
};

/* Packet counts of a live capture (libpcap's pcap_stats: since the start). */
struct capture_counts {
	uint64_t received;   /* frames the filter passed (ps_recv) */
	uint64_t dropped;    /* dropped because the buffer was full (ps_drop) */
	uint64_t if_dropped; /* dropped by the interface or its driver (ps_ifdrop) */
};

/* Opens <path> ("-" for standard input) as a pcap or pcapng capture.
 * Returns the capture, or NULL with "<path>: <libpcap's reason>" in <err> of
 * <errlen> bytes. The caller owns the result and frees it with capture_close(). */
struct capture *capture_open(const char *path, char *err, size_t errlen);

/* Starts capturing on <cfg>->iface in immediate mode (each frame is handed
 * out as it arrives, not when a kernel block fills). Returns the capture, or
 * NULL with "<iface>: <libpcap's reason>" in <err> (no such device, no
 * permission, ...). The caller owns the result; capture_close() frees it. */
struct capture *capture_open_live(const struct capture_live_config *cfg, char *err, size_t errlen);

/* Applies the BPF program <filter> (tcpdump syntax) to <c>, file or live.
 * 0, or -1 with "<filter>: <libpcap's reason>" in <err>. */
int capture_set_filter(struct capture *c, const char *filter, char *err, size_t errlen);

/* Checks that <filter> compiles (for Ethernet frames), before any capture is
 * opened. 0, or -1 with "filter '<filter>': <libpcap's reason>" in <err>. */
int capture_check_filter(const char *filter, char *err, size_t errlen);

/* Also writes every frame capture_next() hands out to <fd> as a classic pcap
 * file (used to read a live capture a second time). Takes <fd> over whatever
 * the result: it is closed by capture_close() or here on failure.
 * 0, or -1 with the reason in <err>. */
int capture_tee_fd(struct capture *c, int fd, char *err, size_t errlen);

/* True for a capture made by capture_open_live(). */
bool capture_is_live(const struct capture *c);

/* The file path ("(stdin)") or the interface name, for messages. */
const char *capture_name(const struct capture *c);

/* The link-layer type of the capture's frames, as a libpcap DLT_ value
 * (DLT_EN10MB, DLT_LINUX_SLL, DLT_RAW, ...). For pcapng, the first interface's. */
int capture_link_type(const struct capture *c);

/* A readable name for capture_link_type() ("EN10MB"), never NULL. */
const char *capture_link_name(const struct capture *c);

/* Reads the next frame into <f>. CAPTURE_FRAME: <f> is set. CAPTURE_END: the
 * file is used up (never for a live capture). CAPTURE_AGAIN (live only): no
 * frame arrived within the configured wait, or a signal interrupted it; the
 * caller checks its clock and flags and calls again. CAPTURE_ERROR: <err> (of
 * <errlen> bytes) names the file or interface, the frame number reached and
 * libpcap's reason; every later call returns CAPTURE_ERROR again. */
enum capture_status capture_next(struct capture *c, struct capture_frame *f, char *err, size_t errlen);

/* Live only: copies libpcap's counters into <out>. 0, or -1 with the reason
 * in <err> (a file has no such counters). */
int capture_counts(struct capture *c, struct capture_counts *out, char *err, size_t errlen);

/* Closes the file or interface (and a tee) and frees <c>; capture_close(NULL) does nothing. */
void capture_close(struct capture *c);

#endif
