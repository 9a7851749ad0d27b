/* IPv4 fragments put back together (RFC 791 3.2, RFC 815's hole list), for
 * the sniffer: link.c describes a fragment, this file keeps the pieces of
 * each datagram (keyed by source, destination, protocol and identification)
 * until they cover it, then hands out the whole datagram, which link.c
 * decodes as if it had come in one frame. Bounded: a cap on the data of one
 * datagram (what IPv4 can carry), on the bytes held over all datagrams and on
 * their number (the oldest is given up to make room), a timeout on capture
 * time, and a cap on the pieces of one datagram. Overlapping fragments are
 * accepted when the bytes they share agree (a resent fragment); when they
 * differ the datagram is given up (which copy the receiver kept cannot be
 * told from the wire), as it is when a fragment was cut by the snap length
 * or contradicts the datagram's length; a fragment that disagrees with a
 * datagram already handed out is ignored and counted. A datagram given up is never handed
 * out: its bytes are missing, and the TCP layer reports them as a gap. */
#ifndef WW_SNIFF_IPFRAG_H
#define WW_SNIFF_IPFRAG_H

#include <stdint.h>

#include "sniff/link.h"

struct ipfrag_config {
	uint32_t max_datagrams; /* pending at once; 0 = 1024 */
	uint64_t max_bytes;     /* data held over all pending datagrams; 0 = 16 MiB */
	int64_t timeout_us;     /* a datagram not whole after this long (capture time) is given up; 0 = 30 s */
};

struct ipfrag_stats {
	uint64_t fragments;    /* fed */
	uint64_t reassembled;  /* datagrams handed out whole */
	uint64_t given_up;     /* datagrams given up, for any of the reasons below */
	uint64_t timeouts;     /* ... not whole in time (or at the end) */
	uint64_t conflicts;    /* ... overlapping fragments that disagree, or a contradicting length */
	uint64_t cut;          /* ... a fragment cut by the snap length */
	uint64_t evicted;      /* ... to make room under the caps */
	uint64_t duplicates;   /* fragments of a datagram already rebuilt, sent again (ignored) */
	uint64_t contradicted; /* fragments that disagree with a datagram already rebuilt (ignored:
				* the first copy was used) */
};

struct ipfrag;

/* NULL when out of memory; <cfg> may be NULL for the defaults. */
struct ipfrag *ipfrag_new(const struct ipfrag_config *cfg);

/* link_decode() with IPv4 fragments put back together through <r>: for a
 * fragment that completes its datagram, the result of decoding the whole
 * datagram (LINK_TCP with <out> viewing <r>'s copy of it, valid until the
 * next call); for any other fragment LINK_FRAGMENT. <ts_us> is the frame's
 * capture time. Everything else is link_decode()'s answer as is. */
enum link_status ipfrag_link_decode(struct ipfrag *r, int dlt, struct cursor frame, int64_t ts_us,
				    struct link_tcp *out, const char **why);

/* The datagrams still pending at the end of the capture count as given up. */
void ipfrag_finish(struct ipfrag *r);

const struct ipfrag_stats *ipfrag_stats(const struct ipfrag *r);

/* Frees <r>; NULL does nothing. */
void ipfrag_free(struct ipfrag *r);

#endif
