/* Reading a capture file: the only sniff file that talks to libpcap. It opens
 * a pcap or pcapng file (or standard input for "-"), hands out its frames one
 * at a time with a 1-based frame number (as Wireshark numbers them) and a
 * microsecond timestamp, and turns every libpcap failure into one line of text
 * naming the file. What the frame bytes mean is sniff/link.c's job. */
#ifndef WW_SNIFF_CAPTURE_H
#define WW_SNIFF_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#define CAPTURE_ERR_LEN 512 /* room for one error line: file name + libpcap's text */

struct capture; /* opaque; owned by the caller of capture_open() */

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
	CAPTURE_ERROR,     /* read failure (truncated or corrupt file); <err> says which */
};

/* Opens <path> ("-" for standard input) as a pcap or pcapng capture.
 * Returns the capture, or NULL with "<path>: <libpcap's reason>" in <err> of
 * <errlen> bytes. The caller owns the result and frees it with capture_close(). */
struct capture *capture_open(const char *path, char *err, size_t errlen);

/* The link-layer type of the capture's frames, as a libpcap DLT_ value
 * (DLT_EN10MB, DLT_LINUX_SLL, DLT_RAW, ...). For pcapng, the first interface's. */
int capture_link_type(const struct capture *c);

/* A readable name for capture_link_type() ("EN10MB"), never NULL. */
const char *capture_link_name(const struct capture *c);

/* Reads the next frame into <f>. CAPTURE_FRAME: <f> is set. CAPTURE_END: the
 * file is used up. CAPTURE_ERROR: <err> (of <errlen> bytes) names the file,
 * the frame number reached and libpcap's reason; every later call returns
 * CAPTURE_ERROR again without reading. */
enum capture_status capture_next(struct capture *c, struct capture_frame *f, char *err, size_t errlen);

/* Closes the file and frees <c>; capture_close(NULL) does nothing. */
void capture_close(struct capture *c);

#endif
