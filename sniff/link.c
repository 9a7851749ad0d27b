/* Frame -> IP -> TCP segment, every read through struct cursor. The link
 * layer yields an EtherType-like protocol number and a view of the network
 * packet; IPv4 trims Ethernet padding with its Total Length, IPv6 walks its
 * extension headers; the TCP header gives ports, sequence numbers, flags and
 * the payload view. Fragments are described for sniff/ipfrag.c, which puts
 * IPv4 ones back together. Snap-length
 * truncation is not an error once the TCP header is whole: the payload is what
 * was captured and the segment says it was cut.
 * Specs: RFC 791, RFC 8200 section 4, RFC 9293 section 3.1, IEEE 802.1Q/802.1ad,
 * https://www.tcpdump.org/linktypes.html for the link headers. */
#include "sniff/link.h"

#include <arpa/inet.h>
#include <pcap/dlt.h>
#include <stdio.h>
#include <string.h>

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100 /* 802.1Q */
#define ETHERTYPE_QINQ 0x88a8 /* 802.1ad service tag */
#define ETHERTYPE_QINQ_OLD 0x9100
#define MAX_VLAN_TAGS 4       /* more than QinQ-in-QinQ is not a real frame */
#define MAX_IPV6_EXT 8        /* bound on the extension header walk */

#define IPPROTO_NUM_TCP 6
#define IP6_HOPOPTS 0
#define IP6_ROUTING 43
#define IP6_FRAGMENT 44
#define IP6_AH 51
#define IP6_NONE 59
#define IP6_DSTOPTS 60

static enum link_status fail(const char **why, enum link_status st, const char *what)
{
	if (why != NULL)
		*why = what;
	return st;
}

/* Ethernet II: dst(6) src(6) type(2), then any number of 4-byte VLAN tags
 * (TCI(2) type(2)). A type below 0x0600 is an 802.3 length: not IP for us. */
static enum link_status eth_header(struct cursor *c, uint16_t *proto, const char **why)
{
	uint16_t type;
	int tags = 0;

	if (!cursor_skip(c, 12) || !cursor_be16(c, &type))
		return fail(why, LINK_MALFORMED, "ethernet header");
	while (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ || type == ETHERTYPE_QINQ_OLD) {
		if (++tags > MAX_VLAN_TAGS)
			return fail(why, LINK_MALFORMED, "too many vlan tags");
		if (!cursor_skip(c, 2) || !cursor_be16(c, &type))
			return fail(why, LINK_MALFORMED, "vlan tag");
	}
	*proto = type;
	return LINK_TCP;
}

/* Linux cooked v1, 16 bytes:
 *   packet type(2) ARPHRD type(2) addr len(2) addr(8) protocol(2) */
static enum link_status sll_header(struct cursor *c, uint16_t *proto, const char **why)
{
	if (!cursor_skip(c, 14) || !cursor_be16(c, proto))
		return fail(why, LINK_MALFORMED, "sll header");
	return LINK_TCP;
}

/* Linux cooked v2, 20 bytes:
 *   protocol(2) reserved(2) ifindex(4) ARPHRD type(2) packet type(1) addr len(1) addr(8) */
static enum link_status sll2_header(struct cursor *c, uint16_t *proto, const char **why)
{
	if (!cursor_be16(c, proto) || !cursor_skip(c, 18))
		return fail(why, LINK_MALFORMED, "sll2 header");
	return LINK_TCP;
}

/* BSD loopback: a 4-byte address family, in the writer's byte order for
 * DLT_NULL and in network order for DLT_LOOP. AF_INET is 2 everywhere; AF_INET6
 * is 24, 28 or 30 depending on the BSD (10 on Linux). Both orders are tried. */
static enum link_status null_header(struct cursor *c, uint16_t *proto, const char **why)
{
	uint32_t be, af;

	if (!cursor_be32(c, &be))
		return fail(why, LINK_MALFORMED, "loopback header");
	af = be;
	if (af > 0xffff) /* little-endian writer: the family sits in the top byte */
		af = ((be & 0xff) << 24) | ((be & 0xff00) << 8) | ((be >> 8) & 0xff00) | (be >> 24);
	if (af == 2)
		*proto = ETHERTYPE_IPV4;
	else if (af == 10 || af == 24 || af == 28 || af == 30)
		*proto = ETHERTYPE_IPV6;
	else
		*proto = 0;
	return LINK_TCP;
}

/* TCP options (RFC 9293 3.1): kind 0 ends the list, kind 1 is one byte of
 * padding, every other kind is kind(1) length(2..) data. Only Window Scale
 * (kind 3, length 3, RFC 7323 2.2) is kept; a malformed list is left unread. */
static int8_t tcp_wscale(struct cursor opts)
{
	uint8_t kind, len, shift;

	while (cursor_u8(&opts, &kind) && kind != 0) {
		if (kind == 1)
			continue;
		if (!cursor_u8(&opts, &len) || len < 2)
			return -1;
		if (kind == 3 && len == 3)
			return cursor_u8(&opts, &shift) ? (int8_t)(shift > 14 ? 14 : shift) : -1; /* 2.3: at most 14 */
		if (!cursor_skip(&opts, (size_t)len - 2))
			return -1;
	}
	return -1;
}

/* TCP header (RFC 9293 3.1), <seg> being exactly the IP payload as captured,
 * <wire_len> its length according to the IP header.
 *   sport(2) dport(2) seq(4) ack(4) offset:4 rsvd:4 flags(1) window(2) sum(2) urg(2) options */
static enum link_status tcp_header(struct cursor seg, uint32_t wire_len, struct link_tcp *out, const char **why)
{
	uint8_t off_byte, flags;
	uint16_t window;
	size_t hdr_len;
	struct cursor opts;

	if (!cursor_be16(&seg, &out->sport) || !cursor_be16(&seg, &out->dport) || !cursor_be32(&seg, &out->seq) ||
	    !cursor_be32(&seg, &out->ack) || !cursor_u8(&seg, &off_byte) || !cursor_u8(&seg, &flags) ||
	    !cursor_be16(&seg, &window) || !cursor_skip(&seg, 4))
		return fail(why, LINK_MALFORMED, "tcp header");
	hdr_len = (size_t)(off_byte >> 4) * 4;
	if (hdr_len < 20 || hdr_len > wire_len)
		return fail(why, LINK_MALFORMED, "tcp data offset");
	out->flags = flags;
	out->window = window;
	out->opt_len = (uint8_t)(hdr_len - 20);
	out->payload_len = wire_len - (uint32_t)hdr_len;
	out->wscale = -1;
	if (!cursor_take(&seg, hdr_len - 20, &opts)) {
		/* The snap length cut the options: the segment is known, its
		 * payload was not captured at all. */
		out->payload = cursor_make(NULL, 0);
		out->truncated = out->payload_len > 0;
		return LINK_TCP;
	}
	if (flags & TCPF_SYN)
		out->wscale = tcp_wscale(opts);
	out->payload = seg;
	out->truncated = cursor_left(&seg) < out->payload_len;
	return LINK_TCP;
}

/* Copies the next <n> bytes of <c> into <dst>. */
static bool take_bytes(struct cursor *c, void *dst, size_t n)
{
	struct cursor sub;

	if (!cursor_take(c, n, &sub))
		return false;
	memcpy(dst, sub.p, n);
	return true;
}

/* IPv4 (RFC 791 3.1):
 *   ver:4 ihl:4 | tos | total length(2) | id(2) | flags:3 frag offset:13 | ttl | proto | sum(2) | src(4) dst(4) */
static enum link_status ipv4_packet(struct cursor c, struct link_tcp *out, const char **why)
{
	uint8_t vihl, proto;
	uint16_t total, frag, id;
	size_t ihl;
	struct cursor whole = c;

	memset(&out->src, 0, sizeof(out->src));
	memset(&out->dst, 0, sizeof(out->dst));
	out->src.family = out->dst.family = 4;
	if (!cursor_u8(&c, &vihl) || !cursor_skip(&c, 1) || !cursor_be16(&c, &total) || !cursor_be16(&c, &id) ||
	    !cursor_be16(&c, &frag) || !cursor_skip(&c, 1) || !cursor_u8(&c, &proto) || !cursor_skip(&c, 2) ||
	    !take_bytes(&c, out->src.b, 4) || !take_bytes(&c, out->dst.b, 4))
		return fail(why, LINK_MALFORMED, "ipv4 header");
	ihl = (size_t)(vihl & 0x0f) * 4;
	if ((vihl >> 4) != 4 || ihl < 20 || total < ihl)
		return fail(why, LINK_MALFORMED, "ipv4 header length");
	if (!cursor_skip(&c, ihl - 20))
		return fail(why, LINK_MALFORMED, "ipv4 options");
	if ((frag & 0x3fff) != 0) { /* More Fragments set, or a non-zero offset */
		struct link_frag *fr = &out->frag;
		fr->family = 4;
		fr->proto = proto;
		fr->id = id;
		fr->offset = (uint32_t)(frag & 0x1fff) * 8;
		fr->more = (frag & 0x2000) != 0;
		if (!cursor_take(&whole, ihl, &fr->header))
			return fail(why, LINK_MALFORMED, "ipv4 header");
		fr->data = c;
		if (cursor_left(&fr->data) > (size_t)(total - ihl)) /* Ethernet padding */
			fr->data.left = total - ihl;
		fr->data_len = (uint32_t)(total - ihl);
		return fail(why, LINK_FRAGMENT, "ipv4 fragment");
	}
	if (proto != IPPROTO_NUM_TCP)
		return LINK_NOT_TCP;
	/* Total Length trims Ethernet padding; a shorter capture keeps what it has. */
	if (cursor_left(&c) > total - ihl)
		c.left = total - ihl;
	return tcp_header(c, (uint32_t)(total - ihl), out, why);
}

/* IPv6 (RFC 8200 3): ver:4 tc:8 flow:20 | payload length(2) | next header | hop limit | src(16) dst(16),
 * then extension headers (section 4). Each starts with next header(1) and a
 * length byte; the fragment header is 8 bytes: next(1) res(1) offset:13 res:2 M:1 (2) id(4). */
static enum link_status ipv6_packet(struct cursor c, struct link_tcp *out, const char **why)
{
	uint8_t v, next, ext_next, ext_len;
	uint16_t plen, fragword;
	uint32_t wire_len;
	size_t len;
	int n;

	memset(&out->src, 0, sizeof(out->src));
	memset(&out->dst, 0, sizeof(out->dst));
	out->src.family = out->dst.family = 6;
	if (!cursor_u8(&c, &v) || !cursor_skip(&c, 3) || !cursor_be16(&c, &plen) || !cursor_u8(&c, &next) ||
	    !cursor_skip(&c, 1) || !take_bytes(&c, out->src.b, 16) || !take_bytes(&c, out->dst.b, 16))
		return fail(why, LINK_MALFORMED, "ipv6 header");
	if ((v >> 4) != 6)
		return fail(why, LINK_MALFORMED, "ipv6 version");
	/* Payload Length 0 is a jumbogram (RFC 2675): take what was captured. */
	wire_len = plen != 0 ? plen : (uint32_t)cursor_left(&c);
	if (cursor_left(&c) > wire_len) /* trims link-layer padding */
		c.left = wire_len;
	for (n = 0; n <= MAX_IPV6_EXT; n++) {
		struct cursor ext = c;

		if (next == IPPROTO_NUM_TCP)
			return tcp_header(c, wire_len, out, why);
		if (next != IP6_HOPOPTS && next != IP6_ROUTING && next != IP6_DSTOPTS && next != IP6_FRAGMENT &&
		    next != IP6_AH)
			return LINK_NOT_TCP; /* IP6_NONE, ESP, UDP, ICMPv6, ... */
		if (!cursor_u8(&ext, &ext_next) || !cursor_u8(&ext, &ext_len))
			return fail(why, LINK_MALFORMED, "ipv6 extension header");
		if (next == IP6_FRAGMENT) {
			if (!cursor_be16(&ext, &fragword))
				return fail(why, LINK_MALFORMED, "ipv6 fragment header");
			if ((fragword & 0xfff9) != 0) { /* an offset, or More Fragments */
				out->frag.family = 0; /* not reassembled */
				return fail(why, LINK_FRAGMENT, "ipv6 fragment");
			}
			len = 8; /* an atomic fragment (RFC 6946): the packet is whole */
		} else if (next == IP6_AH) {
			len = ((size_t)ext_len + 2) * 4; /* 4-octet units, minus 2 (RFC 4302 2.2) */
		} else {
			len = ((size_t)ext_len + 1) * 8; /* 8-octet units, not counting the first 8 */
		}
		if (len > wire_len || !cursor_skip(&c, len))
			return fail(why, LINK_MALFORMED, "ipv6 extension length");
		wire_len -= (uint32_t)len;
		next = ext_next;
	}
	return fail(why, LINK_MALFORMED, "too many ipv6 extension headers");
}

enum link_status link_decode_ip(struct cursor ip, struct link_tcp *out, const char **why)
{
	if (cursor_left(&ip) < 1)
		return fail(why, LINK_MALFORMED, "ip header");
	switch (ip.p[0] >> 4) {
	case 4:
		return ipv4_packet(ip, out, why);
	case 6:
		return ipv6_packet(ip, out, why);
	default:
		return fail(why, LINK_MALFORMED, "ip version");
	}
}

bool link_type_supported(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
	case DLT_NULL:
	case DLT_LOOP:
		return true;
	default:
		return false;
	}
}

enum link_status link_decode(int dlt, struct cursor frame, struct link_tcp *out, const char **why)
{
	uint16_t proto = 0;
	enum link_status st;

	switch (dlt) {
	case DLT_EN10MB:
		st = eth_header(&frame, &proto, why);
		break;
	case DLT_LINUX_SLL:
		st = sll_header(&frame, &proto, why);
		break;
	case DLT_LINUX_SLL2:
		st = sll2_header(&frame, &proto, why);
		break;
	case DLT_NULL:
	case DLT_LOOP:
		st = null_header(&frame, &proto, why);
		break;
	case DLT_RAW:
		return link_decode_ip(frame, out, why);
	case DLT_IPV4:
		return ipv4_packet(frame, out, why);
	case DLT_IPV6:
		return ipv6_packet(frame, out, why);
	default:
		return fail(why, LINK_UNSUPPORTED, "link type");
	}
	if (st != LINK_TCP)
		return st;
	if (proto == ETHERTYPE_IPV4)
		return ipv4_packet(frame, out, why);
	if (proto == ETHERTYPE_IPV6)
		return ipv6_packet(frame, out, why);
	return LINK_NOT_TCP;
}

char *link_endpoint_str(const struct link_addr *a, uint16_t port, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->family == 6) {
		if (inet_ntop(AF_INET6, a->b, ip, sizeof(ip)) == NULL)
			snprintf(ip, sizeof(ip), "?");
		snprintf(buf, cap, "[%s]:%u", ip, (unsigned)port);
	} else {
		if (inet_ntop(AF_INET, a->b, ip, sizeof(ip)) == NULL)
			snprintf(ip, sizeof(ip), "?");
		snprintf(buf, cap, "%s:%u", ip, (unsigned)port);
	}
	return buf;
}
