/* Private to policy/: the client-id table. One entry per client id seen on a
 * live session or in a recent take-over: which connection holds the id now,
 * the recent take-overs (for storm detection) and a storm cooldown. Callers
 * hold the engine lock. Memory: a fixed-size open-addressing table whose
 * entries are allocated on first use and freed when idle. */
#ifndef WW_POLICY_IDTABLE_H
#define WW_POLICY_IDTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDT_HISTORY 16
#define IDT_KEY_MAX 256       /* bytes of a client id the table tells apart */

struct id_takeover {
	int64_t ts_us;
	char ip[48];          /* source address of the connection that took the id */
};

/* Recent take-overs of one id: allocated at its first take-over, since most
 * ids are never taken over and an idle proxy holds one entry per client. */
struct id_history {
	unsigned n, head;
	struct id_takeover at[IDT_HISTORY];
};

struct id_entry {
	uint32_t refs;        /* sessions pointing here */
	uint32_t live;        /* sessions that sent CONNECT with this id and are still open */
	uint32_t generation;  /* bumped by every CONNECT with this id */
	int64_t last_connect_us;
	char last_client[64]; /* "ip:port" of the newest connection */
	uint64_t last_conn_id;
	uint64_t last_connect_frame;
	struct id_history *hist;
	int64_t cooldown_until_us;
	char cooldown_ip[48];
	int64_t storm_reported_us;
	bool storm_reported;
	uint16_t key_len;
	uint8_t key[];        /* key_len bytes */
};

struct id_table {
	struct id_entry **slots;
	size_t cap;           /* power of two */
	size_t used;
	size_t max;
};

int idt_init(struct id_table *t, size_t max_entries);
void idt_fini(struct id_table *t);
/* Finds or creates the entry for <key>; NULL when the table is full. */
struct id_entry *idt_get(struct id_table *t, const uint8_t *key, size_t len, bool create);
/* Drops one reference; frees the entry when nothing needs it any more. */
void idt_release(struct id_table *t, struct id_entry *e, int64_t now_us, int64_t keep_us);
/* Records a take-over by <ip> at <now_us>; returns how many take-overs of the
 * entry fall within <window_us>, and in <sources> how many distinct addresses. */
unsigned idt_takeover(struct id_entry *e, const char *ip, int64_t now_us, int64_t window_us, unsigned *sources);
/* Forgets the entry's take-overs (a storm was acted on: counting starts anew). */
void idt_forget_takeovers(struct id_entry *e);

#endif
