/* The proxy shell: libevent workers that accept clients, connect each to the
 * broker, frame every packet both ways, feed the engine, and carry out its
 * decisions. Private to proxy/.
 *
 * Ownership: struct proxy owns the workers, the engine and the sinks; a
 * worker owns its event base, its listeners and its connections; a struct
 * conn owns its two bufferevents and its session. A connection is never
 * freed inside its own callback: conn_close() queues it and the worker's
 * reaper frees it. */
#ifndef WW_PROXY_PROXY_H
#define WW_PROXY_PROXY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "common/config.h"
#include "policy/engine.h"
#include "proto/amps.h"
#include "proto/mqtt.h"
#include "sink/sink.h"

#define PROXY_STREAM_HEAD (64 * 1024) /* PUBLISH heads decoded from a prefix past this size */
#define PROXY_BOUNDARIES 16

struct proxy_tls;

struct proxy_listener {
	const struct ww_listener_cfg *cfg; /* swapped on reload: read it once per use */
	unsigned index;
	bool disabled;                     /* admin: refuse new connections (atomic) */
	struct proxy_tls *tls;             /* TLS toward clients, NULL = plain (tls.c) */
	struct proxy_tls *upstream_tls;    /* TLS toward the broker, NULL = plain */
	struct sockaddr_storage listen_addr, upstream_addr;
	socklen_t listen_len, upstream_len;
	char upstream_str[64];
};

struct worker;
struct worker_handoff;
struct conn;

/* A protocol as the proxy sees it (wire.c): one table per protocol, so the
 * relay and the connection never ask which protocol they carry. */
struct wire_ops {
	const char *name;
	enum proto_id id;
	unsigned head_len;  /* bytes that always hold a frame's length header */
	void (*init)(struct conn *c);
	/* A frame at the start of <head>: as mqtt_frame_peek(). <cap> is the
	 * configured cap (0: the protocol's own default, UINT32_MAX: none). */
	enum proto_err (*peek)(struct conn *c, enum proto_dir d, struct cursor head, uint32_t cap,
			       struct proto_frame *fr, struct proto_diag *diag);
	/* Facts of the frame of <total> bytes whose first <bytes> are at hand (all
	 * of it, or the head of a frame streams() allows); PROTO_NEED_MORE: the
	 * head is not enough yet. */
	enum proto_err (*facts)(struct conn *c, enum proto_dir d, struct cursor bytes, uint64_t total,
				struct proto_facts *f, struct proto_diag *diag);
	bool (*streams)(const struct proto_frame *fr);
	/* Bytes the framer called not this protocol: names what they are from
	 * more of them (<diag> refined); false if <head> is too short to say. NULL: no more to say. */
	bool (*explain)(struct cursor head, struct proto_diag *diag);
	/* Frames the proxy writes; each returns its length, 0 for none. */
	size_t (*refuse)(struct conn *c, const struct eng_action *act, uint8_t *buf, size_t cap);
	size_t (*goodbye)(struct conn *c, const struct eng_action *act, uint8_t *buf, size_t cap);
	size_t (*unavailable)(struct conn *c, uint8_t *buf, size_t cap);
	size_t (*upstream_goodbye)(struct conn *c, uint8_t *buf, size_t cap);
};
extern const struct wire_ops wire_mqtt, wire_amps;
/* "mqtt", "amps"; NULL for "auto" (the first client bytes decide). */
const struct wire_ops *wire_for_listener(const char *protocol);
const struct wire_ops *wire_for_id(enum proto_id id);

struct conn_dir {
	uint64_t skip_left;  /* bytes of a frame being streamed through (or dropped) */
	bool skip_drop;      /* the frame being skipped is held: drop, do not forward */
	bool blind;          /* framing lost: forward without looking */
	uint8_t rd_shift;    /* reads reserve READ_MIN << rd_shift bytes (conn.c) */
};

struct conn {
	struct worker *w;
	struct proxy_listener *lst;
	struct bufferevent *cbev, *ubev; /* writing; reading is rev[] (conn.c) */
	struct event *rev[2];            /* readable: [PROTO_C2S] client socket, [PROTO_S2C] broker socket */
	/* The same sockets' descriptors, -1 until known: read and written once
	 * per packet run, where bufferevent_getfd() was 1% of the proxy's time. */
	evutil_socket_t fd[2];
	bool rd_on[2], in_full[2];
	struct conn *prev, *next;        /* worker's list */
	struct conn *reap_next;
	struct session s;
	const struct wire_ops *ops;      /* NULL until an auto listener's client has shown its first bytes */
	union { struct mqtt_codec mqtt; struct amps_codec amps; } codec;
	struct conn_dir dir[2];          /* indexed by enum proto_dir */
	bool upstream_started, upstream_up, upstream_failed;
	bool closing, reaping, client_eof, upstream_eof;
	bool paused_slow, paused_c2s_bp, paused_s2c_bp;
	enum eng_close close_how;
	/* packet boundaries toward the client, to cut a slow client's queue */
	uint64_t s2c_added;
	uint64_t s2c_at_depth_check;     /* s2c_added when the queue depth was last read */
	uint64_t boundary[PROXY_BOUNDARIES];
	unsigned n_boundary;
	struct event *linger;            /* closes after a final flush */
	bool linger_armed;               /* a paused broker socket's FIN started the linger (conn.c) */
	int64_t relay_now_us;            /* the time relay() was entered: the frames it walks get it */
	/* TLS (tls.c): a TLS side is read by its bufferevent, not by rev[] */
	bool tls_side[2];                /* [PROTO_C2S] client socket, [PROTO_S2C] broker socket */
	bool tls_done;                   /* the client's handshake completed */
	bool tls_alert_sent;
	const char *tls_alert;           /* last alert, OpenSSL's static text */
	uint8_t tls_alert_code;
	struct event *tls_timer;         /* handshake timeout, then the certificate's notAfter */
	int64_t cert_not_after_us;       /* 0 = no client certificate */
};

/* Counters of one worker, touched only by its thread and summed at a scrape
 * (worker_call()): no atomics on the relay path. */
#define METRIC_DEPTH_BUCKETS 10
#define METRIC_GAP_BUCKETS 10
struct worker_metrics {
	uint64_t accepted, refused_disabled;
	uint64_t moved;                  /* accepted here, handed to a less loaded worker */
	uint64_t bytes[2];               /* [PROTO_C2S] from clients, [PROTO_S2C] toward clients */
	uint64_t packets[2][16];         /* by MQTT packet type */
	uint64_t tls_handshakes, tls_failed;
	uint64_t depth_bucket[METRIC_DEPTH_BUCKETS + 1], depth_count; /* +Inf last */
	double depth_sum;
	uint64_t gap_bucket[METRIC_GAP_BUCKETS + 1], gap_count;
	double gap_sum;
};
extern const double metric_depth_bounds[METRIC_DEPTH_BUCKETS];
extern const double metric_gap_bounds[METRIC_GAP_BUCKETS];

/* A function run on a worker's thread, asked for from another thread. */
struct worker_cmd {
	void (*fn)(struct worker *w, void *arg);
	void *arg;
	bool done;
	struct worker_cmd *next;
};

struct worker {
	struct proxy *px;
	unsigned index;
	pthread_t thread;
	struct event_base *base;
	struct evconnlistener **lis;
	struct event *sweep, *reaper, *stop;
	struct conn *conns;
	struct conn *reap;
	unsigned n_conns;                /* read by other threads with __atomic_load_n */
	/* Connections placed here and not yet freed, handed-over sockets not
	 * yet taken included: what the placement in accept_cb compares.
	 * Updated with atomics from any worker. */
	unsigned load;
	uint64_t relays;                 /* relay() calls, plain or TLS: the loop's sign of work */
	bool stopping;
	struct worker_metrics m;
	/* worker_call(): a queue under <cmd_lock>, run by <cmd_ev> */
	pthread_mutex_t cmd_lock;
	pthread_cond_t cmd_cond;
	struct worker_cmd *cmds;
	struct event *cmd_ev;
	struct worker_handoff *handoffs; /* sockets other workers placed here, under <cmd_lock> */
	struct event *handoff_ev;
	bool gone;                       /* its loop has ended: calls fail */
};

/* An event log file (logfile.c): a file sink behind its own lock, so that
 * SIGHUP can swap in a newly opened file. <path> NULL: stderr or stdout. */
struct log_file {
	pthread_mutex_t lock;
	struct evt_file_sink fs;
	char *path;
	bool json;
};
/* Opens <path> for appending ("-" or NULL: <dash>). 0, or -1 (errno). */
int log_file_open(struct log_file *lf, const char *path, FILE *dash, bool json);
void log_file_sink_fn(void *ctx, const struct evt *e);
void log_file_flush(struct log_file *lf);
/* Opens the path again (after logrotate moved the file). 0, or -1 with the
 * old file kept (logged). */
int log_file_reopen(struct log_file *lf);
void log_file_close(struct log_file *lf);

struct admin;
struct ring;

/* A configuration replaced by a reload: kept until exit, since the engine's
 * policies and the listeners may still point into it. */
struct retired_cfg {
	struct ww_config cfg;
	struct retired_cfg *next;
};

struct proxy {
	struct ww_config cfg;
	struct engine *eng;
	struct evt_sinks sinks;
	struct log_file text_log, json_log;
	bool has_json;
	struct proxy_listener *listeners;
	unsigned n_listeners;
	struct worker *workers;
	unsigned n_workers;
	uint64_t next_conn_id;           /* atomic */
	uint64_t out_cap_c2s, out_cap_s2c, in_cap;
	struct retired_cfg *retired;
	const char *cfgfile;             /* for SIGHUP; NULL: flags only, nothing to reload */
	const char *flag_listen, *flag_upstream; /* --listen, --upstream: over the file's first listener */
	long cli_workers;                /* --workers, -1 = not given */
	bool draining;                   /* SIGTERM seen: no new connections */
	struct ring *ring;               /* recent events for GET /events */
	struct admin *admin;
	uint64_t reloads, reload_failures;
};

/* conn.c */
void conn_rst_on_close(evutil_socket_t fd); /* SO_LINGER 0: the close sends RST, not FIN */
void conn_accept(struct worker *w, struct proxy_listener *lst, evutil_socket_t fd, const struct sockaddr *sa, int salen);
void conn_close(struct conn *c, enum eng_close how);
void conn_apply(struct conn *c, const struct eng_action *act);
void conn_sweep(struct conn *c, int64_t now_us);
void conn_free(struct conn *c);
bool conn_start_upstream(struct conn *c);
void conn_queued(struct bufferevent *bev);
int64_t proxy_now_us(void);

/* relay.c */
void relay(struct conn *c, enum proto_dir dir);
void relay_note_s2c_boundary(struct conn *c, uint64_t at);
void relay_cut_client_queue(struct conn *c);
uint64_t relay_client_depth(struct conn *c);

/* worker.c */
int worker_start(struct worker *w);
void worker_stop(struct worker *w);
/* Runs <fn>(<w>, <arg>) on <w>'s thread and waits for it. From any thread but
 * <w>'s own. 0, or -1 when the worker has ended (<fn> not run). */
int worker_call(struct worker *w, void (*fn)(struct worker *w, void *arg), void *arg);
/* On the worker's thread: closes (<open> false) or opens again its listening
 * socket of listener <i>. 0, or -1 (bind failed, logged). */
int worker_listener_set(struct worker *w, unsigned i, bool open);
/* On the worker's thread: ends connection <c> for an operator reason. */
void worker_end_conn(struct conn *c, enum evt_reason why, const char *detail);

/* metrics.c: a client's packets came <gap_us> after its previous ones */
void metrics_client_gap(struct worker *w, int64_t gap_us);

/* run.c */
unsigned proxy_open_conns(struct proxy *px);

#endif
