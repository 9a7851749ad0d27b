/* From one captured frame to a TCP segment: link layer (Ethernet with 802.1Q
 * and QinQ tags, Linux cooked SLL and SLL2, raw IP, BSD loopback), IPv4 and
 * IPv6 (with extension headers), then the TCP header. Every read goes through
 * a struct cursor over the captured bytes, so nothing reads past the frame.
 * Reassembly and flows are sniff/tcp_stream.c's job.
 * Specs: RFC 791 (IPv4), RFC 8200 (IPv6), RFC 9293 (TCP), IEEE 802.1Q,
 * tcpdump.org/linktypes (LINKTYPE_LINUX_SLL, _SLL2, _NULL, _LOOP, _IPV4, _IPV6). */
#ifndef WW_SNIFF_LINK_H
#define WW_SNIFF_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cursor.h"

/* TCP flag bits as they sit in the header's 13th byte (RFC 9293 3.1). */
#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_PSH 0x08
#define TCPF_ACK 0x10
#define TCPF_URG 0x20

/* What link_decode() made of a frame. Everything but LINK_TCP means "no TCP
 * segment to feed"; the distinctions are for counters and diagnostics. */
enum link_status {
	LINK_TCP = 0,       /* <out> describes a TCP segment */
	LINK_NOT_TCP,       /* a well-formed frame of another protocol (ARP, UDP, ...) */
	LINK_FRAGMENT,      /* an IP fragment: <out>->frag describes an IPv4 one (sniff/ipfrag.c
			     * puts them back together); an IPv6 one is skipped */
	LINK_UNSUPPORTED,   /* a link type this reader does not know */
	LINK_MALFORMED,     /* a header is inconsistent or cut short before TCP's payload */
};

/* An IP address of either family; IPv4 uses the first 4 bytes of <b>. */
struct link_addr {
	uint8_t family; /* 4 or 6 */
	uint8_t b[16];
};

/* One IPv4 fragment (RFC 791 3.2): the datagram it belongs to, where its
 * data goes, and views of its header and of its data as captured. */
struct link_frag {
	uint8_t family;       /* 4; 0 = not described (an IPv6 fragment) */
	uint8_t proto;
	uint16_t id;
	uint32_t offset;      /* bytes into the datagram's data */
	bool more;            /* More Fragments */
	struct cursor header; /* the fragment's IP header, options included */
	struct cursor data;   /* its data as captured */
	uint32_t data_len;    /* its data's length by the header (more than captured: cut by the snap length) */
};

/* One TCP segment. <payload> views the captured payload bytes inside the
 * frame (valid while the frame is); <payload_len> is the length the IP header
 * announces. When the frame was cut by the snap length, <truncated> is set and
 * cursor_left(&payload) < payload_len: the missing tail was never captured.
 * A cut inside the TCP options still gives a segment (ports, sequence
 * numbers, flags and window are in the first 20 bytes), with no payload
 * captured and the options it lost unread. */
struct link_tcp {
	struct link_addr src, dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;       /* TCPF_* */
	uint16_t window;     /* raw, unscaled */
	uint8_t opt_len;     /* bytes of TCP options (0-40) */
	int8_t wscale;       /* a SYN's Window Scale option (RFC 7323 2.2), 0-14; -1 absent, not captured or no SYN */
	struct cursor payload;
	uint32_t payload_len;
	bool truncated;
	struct link_frag frag; /* LINK_FRAGMENT only */
};

/* Decodes the frame <frame> captured with link type <dlt> (a libpcap DLT_
 * value). LINK_TCP: <out> is filled. Otherwise <out> is unspecified and, for
 * LINK_MALFORMED and LINK_FRAGMENT, <why> (may be NULL) gets a static string
 * naming the header that failed. Never reads outside <frame>. */
enum link_status link_decode(int dlt, struct cursor frame, struct link_tcp *out, const char **why);

/* Decodes an IPv4 or IPv6 packet (first nibble decides) down to TCP, as
 * link_decode() does after the link header. For callers that already hold an
 * IP packet (tests, other encapsulations). */
enum link_status link_decode_ip(struct cursor ip, struct link_tcp *out, const char **why);

/* True if link_decode() understands frames of link type <dlt>. */
bool link_type_supported(int dlt);

/* Writes <a>:<port> into <buf> of <cap> bytes ("10.0.0.1:1883", IPv6 as
 * "[::1]:1883"); returns <buf>. <cap> of 64 always suffices. */
char *link_endpoint_str(const struct link_addr *a, uint16_t port, char *buf, size_t cap);

#endif
