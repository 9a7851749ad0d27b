/* The lines `wirewarden sniff --packets` writes (see packets.h): one JSON
 * line per MQTT packet, decoded or not (its header facts, then the decoder's
 * error or the fields of its type, MQTT 5 properties included), and one line
 * per flow when the flow ends, JSON or, in summary mode, text. Strings from
 * the wire are escaped and cut here. Framing, decoding, buffering and
 * resynchronisation, and the counts these lines report, are packets.c's; this
 * file only formats what it is handed and counts failed writes. */
#include "sniff/packets_internal.h"

#include <jansson.h>
#include <stdio.h>

#include "common/escape.h"

#define WIRE_STR_MAX 1024 /* bytes of a wire string shown in JSON, escapes included */

/* ---- wire strings -------------------------------------------------------- */

/* A string from the wire as valid UTF-8 for JSON (bad bytes as \xNN), cut
 * with "..." past WIRE_STR_MAX bytes. */
static json_t *wire_json(struct cursor s)
{
	char buf[WIRE_STR_MAX];
	size_t n = escape_utf8(s.p, cursor_left(&s), buf, sizeof(buf));
	return json_stringn(buf, n);
}

static json_t *hex_json(struct cursor s)
{
	char buf[2 * 256 + 8];
	size_t n = escape_hex(s.p, cursor_left(&s), buf, sizeof(buf));
	return json_stringn(buf, n);
}

/* ---- JSON lines ------------------------------------------------------------ */

static void set(json_t *o, const char *k, json_t *v)
{
	if (v != NULL)
		json_object_set_new(o, k, v);
}

/* MQTT 5 properties as {"Name": value}; strings escaped, binary data in hex.
 * User Property ([key, value] pairs) and Subscription Identifier may repeat,
 * so they are always arrays. NULL when the packet has no properties. */
static json_t *props_json(const struct mqtt_props *pr)
{
	struct cursor it = pr->raw;
	struct mqtt_prop pp;
	json_t *o, *v, *arr;

	if (cursor_empty(&pr->raw))
		return NULL;
	o = json_object();
	while (mqtt_props_next(&it, &pp)) {
		const char *name = mqtt_prop_name(pp.id);
		switch (pp.id) {
		case MQTT_P_USER_PROPERTY:
			v = json_pack("[oo]", wire_json(pp.str), wire_json(pp.str2));
			break;
		case MQTT_P_CORRELATION_DATA: case MQTT_P_AUTH_DATA:
			v = hex_json(pp.str);
			break;
		case MQTT_P_CONTENT_TYPE: case MQTT_P_RESPONSE_TOPIC: case MQTT_P_ASSIGNED_CLIENT_ID:
		case MQTT_P_AUTH_METHOD: case MQTT_P_RESPONSE_INFO: case MQTT_P_SERVER_REFERENCE:
		case MQTT_P_REASON_STRING:
			v = wire_json(pp.str);
			break;
		default:
			v = json_integer(pp.num);
		}
		if (pp.id != MQTT_P_USER_PROPERTY && pp.id != MQTT_P_SUBSCRIPTION_ID) {
			json_object_set_new(o, name, v);
			continue;
		}
		if ((arr = json_object_get(o, name)) == NULL)
			json_object_set_new(o, name, arr = json_array());
		json_array_append_new(arr, v);
	}
	return o;
}

static void ts_text(int64_t ts_us, char *buf, size_t cap)
{
	uint64_t a = ts_us < 0 ? (uint64_t)0 - (uint64_t)ts_us : (uint64_t)ts_us;
	snprintf(buf, cap, "%s%llu.%06llu", ts_us < 0 ? "-" : "", (unsigned long long)(a / 1000000),
		 (unsigned long long)(a % 1000000));
}

static void write_line(struct packets *p, json_t *o)
{
	if (json_dumpf(o, p->cfg.out, JSON_COMPACT) != 0 || fputc('\n', p->cfg.out) == EOF)
		p->stats.write_errors++;
	json_decref(o);
}

/* The fields of a decoded packet (spec section 3 per type). */
static void packet_fields(json_t *o, const struct mqtt_packet *pkt)
{
	struct cursor it, filter;
	uint8_t opt;
	json_t *arr;
	size_t i;

	switch (pkt->type) {
	case MQTT_T_CONNECT: {
		const struct mqtt_connect *c = &pkt->u.connect;
		set(o, "client_id", wire_json(c->client_id));
		if (c->has_username)
			set(o, "username", wire_json(c->username));
		set(o, "keepalive", json_integer(c->keep_alive_s));
		set(o, "clean_start", json_boolean(c->clean_start));
		set(o, "will", json_boolean(c->will));
		set(o, "props", props_json(&c->props));
		break;
	}
	case MQTT_T_CONNACK:
		set(o, "session_present", json_boolean(pkt->u.connack.session_present));
		set(o, "rc", json_integer(pkt->u.connack.code));
		set(o, "props", props_json(&pkt->u.connack.props));
		break;
	case MQTT_T_PUBLISH:
		if (pkt->u.publish.qos > 0)
			set(o, "packet_id", json_integer(pkt->u.publish.packet_id));
		set(o, "topic", wire_json(pkt->u.publish.topic));
		set(o, "payload_len", json_integer((json_int_t)cursor_left(&pkt->u.publish.payload)));
		set(o, "props", props_json(&pkt->u.publish.props));
		break;
	case MQTT_T_PUBACK: case MQTT_T_PUBREC: case MQTT_T_PUBREL: case MQTT_T_PUBCOMP:
		set(o, "packet_id", json_integer(pkt->u.ack.packet_id));
		if (pkt->u.ack.has_reason)
			set(o, "rc", json_integer(pkt->u.ack.reason));
		set(o, "props", props_json(&pkt->u.ack.props));
		break;
	case MQTT_T_SUBSCRIBE: case MQTT_T_UNSUBSCRIBE: {
		bool sub = pkt->type == MQTT_T_SUBSCRIBE;
		json_t *opts = sub ? json_array() : NULL;
		set(o, "packet_id", json_integer(pkt->u.subscribe.packet_id));
		arr = json_array();
		it = pkt->u.subscribe.entries;
		while (mqtt_topic_list_next(&it, sub, &filter, &opt)) {
			json_array_append_new(arr, wire_json(filter));
			if (opts != NULL)
				json_array_append_new(opts, json_integer(opt));
		}
		set(o, "topics", arr);
		set(o, "options", opts);
		set(o, "props", props_json(&pkt->u.subscribe.props));
		break;
	}
	case MQTT_T_SUBACK: case MQTT_T_UNSUBACK:
		set(o, "packet_id", json_integer(pkt->u.suback.packet_id));
		arr = json_array();
		for (i = 0; i < pkt->u.suback.codes.left; i++)
			json_array_append_new(arr, json_integer(pkt->u.suback.codes.p[i]));
		set(o, "rc", arr);
		set(o, "props", props_json(&pkt->u.suback.props));
		break;
	case MQTT_T_DISCONNECT:
		if (pkt->u.disconnect.has_reason)
			set(o, "rc", json_integer(pkt->u.disconnect.reason));
		set(o, "props", props_json(&pkt->u.disconnect.props));
		break;
	case MQTT_T_AUTH:
		if (pkt->u.auth.has_reason)
			set(o, "rc", json_integer(pkt->u.auth.reason));
		set(o, "props", props_json(&pkt->u.auth.props));
		break;
	default:
		break;
	}
}

/* One packet line. <pkt> is NULL for a packet whose body was never decoded
 * (too large, bad fixed header); <first> and <remlen> then describe it. */
void packets_emit_packet(struct packets *p, const struct tcp_flow *f, enum proto_dir dir, uint8_t first,
			 uint32_t remlen, uint8_t level, const struct mqtt_packet *pkt, const struct proto_diag *d,
			 const struct tcp_when *at)
{
	const struct tcp_endpoint *src = dir == PROTO_C2S ? &f->client : &f->server;
	const struct tcp_endpoint *dst = dir == PROTO_C2S ? &f->server : &f->client;
	char a[80], b[80], ts[32];
	uint8_t type = first >> 4;
	json_t *o;

	if (!p->cfg.json || p->cfg.quiet)
		return;
	ts_text(at->ts_us, ts, sizeof(ts));
	o = json_pack("{sIsssIsssssssssIsIsIsI}", "frame", (json_int_t)at->frame, "ts", ts, "stream",
		      (json_int_t)f->index, "dir", dir == PROTO_C2S ? "c2s" : "s2c", "src",
		      link_endpoint_str(&src->addr, src->port, a, sizeof(a)), "dst",
		      link_endpoint_str(&dst->addr, dst->port, b, sizeof(b)), "type", mqtt_type_name(type), "type_num",
		      (json_int_t)type, "flags", (json_int_t)first, "remlen", (json_int_t)remlen, "level",
		      (json_int_t)level);
	if (o == NULL)
		return;
	if (type == MQTT_T_PUBLISH) { /* header facts, stated even when the body is bad */
		set(o, "qos", json_integer((first >> 1) & 3));
		set(o, "retain", json_boolean(first & 1));
		set(o, "dup", json_boolean(first & 8));
	}
	if (d != NULL && d->cls != PROTO_OK) {
		set(o, "error", json_string(d->name != NULL ? d->name : proto_err_class_name(d->cls)));
		if (d->field != NULL)
			set(o, "error_field", json_string(d->field));
		set(o, "error_offset", json_integer(d->offset));
	} else if (pkt != NULL) {
		packet_fields(o, pkt);
	}
	write_line(p, o);
}

static void closed_text(const struct tcp_flow *f, char *buf, size_t cap)
{
	if (!f->closed)
		snprintf(buf, cap, "open-at-end");
	else
		snprintf(buf, cap, "%s-%s@%llu", f->closed_side == PROTO_C2S ? "client" : "server",
			 f->closed_rst ? "RST" : "FIN", (unsigned long long)f->closed_frame);
}

void packets_emit_flow(struct packets *p, const struct tcp_flow *f, const struct pkt_flow *pf)
{
	char a[80], b[80], closed[64];
	json_t *o;
	int dir, t;

	if (p->cfg.quiet)
		return;
	link_endpoint_str(&f->client.addr, f->client.port, a, sizeof(a));
	link_endpoint_str(&f->server.addr, f->server.port, b, sizeof(b));
	closed_text(f, closed, sizeof(closed));
	if (!p->cfg.json) {
		FILE *out = p->cfg.out;
		fprintf(out, "stream %llu %s -> %s server_by=%s packets=%llu errors=%llu gaps=%u closed_by=%s",
			(unsigned long long)f->index, a, b, tcp_server_by_name(f->server_by),
			(unsigned long long)pf->packets, (unsigned long long)pf->errors, f->gaps, closed);
		if (pf->amps)
			fputs(" protocol=amps", out);
		for (dir = 0; dir < 2 && !pf->amps; dir++) {
			const char *sep = dir == 0 ? " c2s=" : " s2c=";
			for (t = 0; t < 16; t++) {
				if (pf->counts[dir][t] == 0)
					continue;
				fprintf(out, "%s%s:%u", sep, mqtt_type_name((uint8_t)t), pf->counts[dir][t]);
				sep = ",";
			}
		}
		if (pf->tls)
			fputs(" tls", out);
		if (fputc('\n', out) == EOF)
			p->stats.write_errors++;
		return;
	}
	o = json_pack("{sssIsssssssbsIsIsssIsIsIsIsb}", "type", "flow", "stream", (json_int_t)f->index, "client", a,
		      "server", b, "server_by", tcp_server_by_name(f->server_by), "syn_seen", f->syn_seen,
		      "first_frame", (json_int_t)f->first.frame, "last_frame", (json_int_t)f->last.frame, "closed_by",
		      closed, "gaps", (json_int_t)f->gaps, "gap_bytes", (json_int_t)f->gap_bytes, "packets",
		      (json_int_t)pf->packets, "errors", (json_int_t)pf->errors, "tls", pf->tls);
	if (o == NULL)
		return;
	if (pf->amps)
		set(o, "protocol", json_string("amps"));
	else
		set(o, "level", pf->codec.level ? json_integer(pf->codec.level) : json_null());
	if (pf->lost > 0)
		set(o, "lost_packets", json_integer((json_int_t)pf->lost));
	write_line(p, o);
}

/* One AMPS frame line: where, the payload length, then the decoder's error
 * or the header fields an operator greps for (amps.md key table). */
void packets_emit_amps(struct packets *p, const struct tcp_flow *f, enum proto_dir dir, uint32_t payload_len,
		       const struct amps_header *h, const struct proto_diag *d, const struct tcp_when *at)
{
	static const struct { enum amps_field f; const char *key; } shown[] = {
		{ AMPS_F_COMMAND, "command" },   { AMPS_F_CID, "cid" },         { AMPS_F_CLIENT_NAME, "client_name" },
		{ AMPS_F_USER_ID, "user_id" },   { AMPS_F_TOPIC, "topic" },     { AMPS_F_ACK_TYPE, "ack_type" },
		{ AMPS_F_STATUS, "status" },     { AMPS_F_REASON, "reason" },   { AMPS_F_OPTIONS, "options" },
		{ AMPS_F_SUB_ID, "sub_id" },     { AMPS_F_SEQ, "seq" },         { AMPS_F_VERSION, "version" },
	};
	const struct tcp_endpoint *src = dir == PROTO_C2S ? &f->client : &f->server;
	const struct tcp_endpoint *dst = dir == PROTO_C2S ? &f->server : &f->client;
	char a[80], b[80], ts[32];
	json_t *o;

	if (!p->cfg.json || p->cfg.quiet)
		return;
	ts_text(at->ts_us, ts, sizeof(ts));
	o = json_pack("{sIsssIsssssssssssI}", "frame", (json_int_t)at->frame, "ts", ts, "stream", (json_int_t)f->index,
		      "dir", dir == PROTO_C2S ? "c2s" : "s2c", "src", link_endpoint_str(&src->addr, src->port, a, sizeof(a)),
		      "dst", link_endpoint_str(&dst->addr, dst->port, b, sizeof(b)), "protocol", "amps", "type",
		      h ? amps_cmd_name(h->cmd) : "?", "len", (json_int_t)payload_len);
	if (o == NULL)
		return;
	if (h != NULL) {
		for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
			if (AMPS_HAS(h, shown[i].f) && shown[i].f != AMPS_F_COMMAND)
				set(o, shown[i].key, wire_json(h->f[shown[i].f]));
		if (h->cmd == AMPS_CMD_UNKNOWN && AMPS_HAS(h, AMPS_F_COMMAND))
			set(o, "command", wire_json(h->f[AMPS_F_COMMAND]));
		if (h->hb_op == AMPS_HB_START)
			set(o, "heartbeat_s", json_integer(h->hb_interval_s));
		if (h->logon_ack)
			set(o, "logon_ack", json_true());
		set(o, "body_len", json_integer((json_int_t)cursor_left(&h->body)));
	}
	if (d != NULL && d->cls != PROTO_OK) {
		set(o, "error", json_string(d->name != NULL ? d->name : proto_err_class_name(d->cls)));
		if (d->field != NULL)
			set(o, "error_field", json_string(d->field));
		set(o, "error_offset", json_integer(d->offset));
	}
	write_line(p, o);
}
