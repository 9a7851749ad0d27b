/* The session engine: the one place that turns what a shell sees (decoded
 * packets, byte counts, queue depths, closes, the clock) into observations,
 * decisions and catalogued events. The proxy and the sniffer both drive it;
 * unit tests drive it with a fake clock. No sockets, no libevent, no pcap.
 *
 * Ownership: the engine owns the client-id table (shared by every worker,
 * behind one lock) and nothing else. Each struct session is owned by the
 * shell's connection object and used by one thread only; the engine keeps
 * no pointer to it after engine_session_close(). Times are microseconds on
 * whatever clock the shell uses (wall clock, or capture time in sniff). */
#ifndef WW_POLICY_ENGINE_H
#define WW_POLICY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "policy/evt.h"
#include "proto/amps.h"
#include "proto/mqtt.h"

struct evt_sinks;
struct engine;
struct id_entry;

/* What the shell should do after a call. Flags combine. */
enum eng_act {
	ENG_HOLD = 1 << 0,            /* do not forward the frame just fed */
	ENG_REFUSE_CONNACK = 1 << 1,  /* refuse the logon: MQTT a refusing CONNACK, AMPS a failure ack
				       * with <amps_reason>; then close */
	ENG_DISCONNECT = 1 << 2,      /* send the client a v5 DISCONNECT (if level 5), then close; AMPS
				       * has no such message: close both sides */
	ENG_CLOSE = 1 << 3,           /* close the client connection and its upstream */
	ENG_PAUSE_UPSTREAM = 1 << 4,  /* stop reading from the broker for this client */
	ENG_RESUME_UPSTREAM = 1 << 5, /* read from the broker again */
	ENG_CUT_QUEUE = 1 << 6,       /* drop bytes queued toward the client back to a packet boundary */
	ENG_BLIND = 1 << 7,           /* framing is lost in this direction: pass bytes without framing */
};

struct eng_action {
	unsigned flags;
	uint8_t v5_code;          /* reason code for the DISCONNECT or CONNACK */
	uint8_t v3_code;          /* CONNACK return code for 3.1/3.1.1 clients */
	enum evt_reason reason;
	const char *policy;
	char text[128];           /* Reason String for a v5 client */
	const char *amps_reason;  /* AMPS: the failure ack's reason ("name in use"), static */
};

/* How a connection ended, as the shell saw it. */
enum eng_close {
	ENG_CLOSE_CLIENT_FIN,      /* the client side closed (orderly) */
	ENG_CLOSE_CLIENT_RST,      /* the client side reset or errored */
	ENG_CLOSE_BROKER_FIN,
	ENG_CLOSE_BROKER_RST,
	ENG_CLOSE_PROXY,           /* wirewarden closed it after an ENG_* action */
	ENG_CLOSE_UPSTREAM_FAILED, /* the broker could not be reached */
	ENG_CLOSE_CAPTURE_END,     /* sniff: the capture ended with it open */
	ENG_CLOSE_SHUTDOWN,        /* wirewarden is shutting down */
};

struct engine_config {
	struct ww_policies pol;
	bool passive;            /* sniff: never act, infer reasons for closes */
	const char *protocol;    /* "mqtt" (unused: each session says its own) */
	uint32_t max_ids;        /* cap on the client-id table (0 = 1,000,000) */
};

/* Counters an operator compares before switching a policy to enforce. */
enum eng_policy { POL_HEARTBEAT, POL_SLOW, POL_TAKEOVER, POL_PROTOCOL, POL_RECEIVE_MAX, POL_LIMITS, POL_ACCESS,
		  POL__COUNT };
struct engine_stats {
	uint64_t observed[POL__COUNT], enforced[POL__COUNT];
	uint64_t disconnects[EVT_R__COUNT];
	uint64_t connections, sessions_open;
};

#define SESSION_ID_MAX 256   /* bytes of a client id we keep */
#define SESSION_USER_MAX 128 /* bytes of a user name we keep */
#define SESSION_TEXT_MAX 160 /* bytes of an identity, refusal or decision detail we keep */

/* Per-connection session watch. Owned by the shell's connection object. */
struct session {
	uint64_t conn_id;
	enum proto_id protocol;            /* what the connection speaks */
	char client[64], broker[64];       /* "ip:port" */
	char client_ip[48];
	enum evt_phase phase;
	uint8_t level;
	bool connect_seen, connack_seen, refused, will, credentials;
	bool client_disconnect_seen, broker_disconnect_seen, ended;
	uint8_t client_disconnect_code, broker_disconnect_code, connack_code;
	uint16_t keepalive_s;                /* effective: the client's, or the Server Keep Alive; AMPS: the
					      * heartbeat interval the client started (0 before) */
	char *refusal;                       /* AMPS: the reason text of the failure ack that refused the logon */
	uint16_t recv_max_broker, recv_max_client;   /* 65535 when not announced */
	uint32_t max_packet_broker, max_packet_client; /* 0 = not announced */
	uint32_t inflight_c2s, inflight_s2c; /* QoS 1/2 PUBLISH not yet acknowledged */
	uint16_t id_len, user_len;
	uint32_t id_true_len;
	/* The session's texts live on the heap, sized to what they hold: an idle
	 * proxy keeps a session per client, and fixed arrays for the longest id,
	 * user name, identity and detail were 700 bytes of each. NULL when not
	 * set; engine_session_free() frees them. */
	uint8_t *id, *user;                  /* id_len, user_len bytes (NUL after them) */
	int64_t opened_us, connect_us, connected_us, last_client_us, last_broker_us;
	uint64_t bytes_c2s, bytes_s2c, packets_c2s, packets_s2c;
	uint64_t queued_to_client;           /* last depth the shell reported */
	int64_t slow_since_us, over_cut_since_us;
	bool slow_paused, limit_refuse, counted_ip;
	uint16_t observed_mask;              /* policies that already reported would_disconnect */
	double tokens_msgs, tokens_bytes;
	int64_t tokens_at_us;
	/* the decision that ends this session, if wirewarden made one */
	enum evt_reason decided;
	enum evt_mode decided_mode;
	int decided_wire;                    /* the code wirewarden sent the client, -1 = none */
	const char *decided_policy;
	char *decided_detail;
	/* last client-side violation, for inference when the broker closes */
	const char *last_violation;
	enum evt_reason last_violation_reason;
	/* Where things happened, for evidence: capture frame numbers in sniff
	 * (the shell sets <frame> before each call), 0 in the proxy. */
	uint64_t frame, connect_frame, connack_frame, last_client_frame, disconnect_frame, violation_frame;
	bool midstream;                      /* sniff: picked up after the handshake; no CONNECT to expect */
	/* sniff: the client's receive window as TCP showed it, set by the shell
	 * before each engine_on_queue(): zero since <client_window_zero_us>
	 * (frame <client_window_zero_frame>) while <client_window_zero>, and the
	 * broker's window probes in that time. */
	bool client_window_zero;
	int64_t client_window_zero_us;
	uint64_t client_window_zero_frame;
	uint32_t client_window_probes;
	/* sniff: payload bytes the capture lost per direction, and the frame at
	 * which the first loss showed; set by the shell. */
	uint64_t lost_c2s, lost_s2c, lost_frame;
	/* proxy: the subject (CN, else first SAN) of the client's verified TLS
	 * certificate, set by the shell before the first packet
	 * (engine_session_set_identity); NULL = none */
	char *identity;
	struct id_entry *ide;                /* client-id table entry (engine lock) */
	uint32_t id_generation;              /* entry generation when this session connected */
};

struct engine *engine_new(const struct engine_config *cfg, const struct evt_sinks *sinks);
void engine_free(struct engine *eng);

/* Replaces the policies (hot reload); sessions keep running. */
void engine_set_policies(struct engine *eng, const struct ww_policies *pol);

/* Copies the engine's counters into <out> (under the engine lock). */
void engine_stats(struct engine *eng, struct engine_stats *out);

/* A TCP connection opened from <client> to <broker>. Fills <s>, emits
 * connection_opened; <act> may say ENG_CLOSE (connection limits). */
void engine_session_open(struct engine *eng, struct session *s, uint64_t conn_id, const char *client,
			 const char *client_ip, const char *broker, int64_t now_us, struct eng_action *act);
/* The same for a connection speaking <proto>. */
void engine_session_open_proto(struct engine *eng, struct session *s, enum proto_id proto, uint64_t conn_id,
			       const char *client, const char *client_ip, const char *broker, int64_t now_us,
			       struct eng_action *act);
/* A listener in auto mode learnt the protocol from the first bytes (before
 * any frame was fed). */
void engine_session_set_protocol(struct session *s, enum proto_id proto);

/* One decoded frame flowing <dir> (<wire_len> bytes on the wire), as the
 * protocol-neutral facts its codec gives (mqtt_packet_facts(),
 * amps_header_facts()): what every policy reads. */
void engine_on_facts(struct engine *eng, struct session *s, enum proto_dir dir, const struct proto_facts *f,
		     uint32_t wire_len, int64_t now_us, struct eng_action *act);

/* An MQTT packet: engine_on_facts() with mqtt_packet_facts(<pkt>). */
void engine_on_packet(struct engine *eng, struct session *s, enum proto_dir dir, const struct mqtt_packet *pkt,
		      uint32_t wire_len, int64_t now_us, struct eng_action *act);

/* A frame that failed to decode, or a header that failed to frame (<frame_len>
 * 0 if unknown): malformed, too large, protocol error; for AMPS also an
 * unknown command and bytes that are not AMPS at all. <type> is the MQTT
 * packet type (ignored for AMPS). */
void engine_on_bad_frame(struct engine *eng, struct session *s, enum proto_dir dir, const struct proto_diag *d,
			 uint8_t type, uint64_t frame_len, int64_t now_us, struct eng_action *act);

/* Bytes queued toward the client (proxy buffer + kernel send queue). */
void engine_on_queue(struct engine *eng, struct session *s, uint64_t queued_bytes, int64_t now_us,
		     struct eng_action *act);

/* Timers: heartbeat, connect timeout, slow-client grace. Call at least every
 * second per session (the shells sweep). */
void engine_tick(struct engine *eng, struct session *s, int64_t now_us, struct eng_action *act);

/* Asks to end a session for an operator reason (admin_disconnect,
 * listener_disabled, server_shutdown, credentials_expired). Always enforced. */
void engine_request_close(struct engine *eng, struct session *s, enum evt_reason why, const char *detail,
			  int64_t now_us, struct eng_action *act);

/* The connection is gone: emits its one disconnect event, with the reason
 * the engine settles on, and forgets the session. Safe to call once only;
 * a second call does nothing. */
void engine_session_close(struct engine *eng, struct session *s, enum eng_close how, int64_t now_us);

/* An event about <s> with its connection fields filled, and handing one to
 * the sinks: for shells that emit operational events of their own (TLS,
 * admin). Sinks are called from every thread that drives the engine at
 * once, outside the engine lock: a sink locks what it shares. */
struct evt engine_evt(const struct session *s, enum evt_code code, int64_t now_us);
void engine_emit(struct engine *eng, const struct evt *e);
const char *engine_policy_name(enum eng_policy p); /* "heartbeat", ...; static */

/* Capped copy of the session's client id as a C string (for tables, logs). */
size_t session_client_id(const struct session *s, char *buf, size_t cap);

/* The client's verified certificate subject (capped at SESSION_TEXT_MAX);
 * "" or NULL clears it. */
void engine_session_set_identity(struct session *s, const char *identity);

/* Frees what the session holds on the heap. The shell calls it when it is
 * done with <s>, after engine_session_close(); <s> itself is the shell's. */
void engine_session_free(struct session *s);

#endif
