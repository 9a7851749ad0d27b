/* AMPS names and tables (violations, commands, header keys), the per-
 * connection codec that picks the header syntax and recognises the server's
 * answer to the logon, sow batches, and the facts the session engine reads. */
#include "proto/amps_internal.h"

struct amps_err_row { const char *name; enum proto_err cls; const char *spec; };

static const struct amps_err_row err_rows[AMPS_E__COUNT] = {
#define X(id, nm, c, s) [AMPS_E_##id] = { nm, c, s },
#include "proto/amps_errors.def"
#undef X
};

const char *amps_err_name(enum amps_err e) { return (unsigned)e < AMPS_E__COUNT ? err_rows[e].name : "invalid"; }
enum proto_err amps_err_class(enum amps_err e)
{
	return (unsigned)e < AMPS_E__COUNT ? err_rows[e].cls : PROTO_E_MALFORMED;
}
const char *amps_err_spec(enum amps_err e) { return (unsigned)e < AMPS_E__COUNT ? err_rows[e].spec : ""; }

enum proto_err amps_fail(struct proto_diag *d, enum amps_err e, const char *field, uint32_t offset)
{
	d->cls = amps_err_class(e);
	d->code = (uint16_t)e;
	d->reason = 0; /* AMPS has no reason codes on the wire */
	d->name = amps_err_name(e);
	d->field = field;
	d->offset = offset;
	d->value = cursor_make(NULL, 0);
	return d->cls;
}

/* ---- commands -------------------------------------------------------------- */

static const char *const cmd_names[AMPS_CMD__COUNT] = {
	[AMPS_CMD_NONE] = "none", [AMPS_CMD_NOOP] = "noop", [AMPS_CMD_UNKNOWN] = "unknown",
	[AMPS_CMD_LOGON] = "logon", [AMPS_CMD_HEARTBEAT] = "heartbeat", [AMPS_CMD_PUBLISH] = "publish",
	[AMPS_CMD_DELTA_PUBLISH] = "delta_publish", [AMPS_CMD_SUBSCRIBE] = "subscribe",
	[AMPS_CMD_DELTA_SUBSCRIBE] = "delta_subscribe", [AMPS_CMD_SOW] = "sow",
	[AMPS_CMD_SOW_AND_SUBSCRIBE] = "sow_and_subscribe",
	[AMPS_CMD_SOW_AND_DELTA_SUBSCRIBE] = "sow_and_delta_subscribe", [AMPS_CMD_UNSUBSCRIBE] = "unsubscribe",
	[AMPS_CMD_SOW_DELETE] = "sow_delete", [AMPS_CMD_FLUSH] = "flush", [AMPS_CMD_ACK] = "ack",
	[AMPS_CMD_START_TIMER] = "start_timer", [AMPS_CMD_STOP_TIMER] = "stop_timer", [AMPS_CMD_OOF] = "oof",
	[AMPS_CMD_GROUP_BEGIN] = "group_begin", [AMPS_CMD_GROUP_END] = "group_end",
};

const char *amps_cmd_name(enum amps_cmd c) { return (unsigned)c < AMPS_CMD__COUNT ? cmd_names[c] : "?"; }

enum amps_cmd amps_cmd_from_view(struct cursor v)
{
	if (v.left == 0)
		return AMPS_CMD_UNKNOWN;
	if (v.left == 1 && v.p[0] == 'p')
		return AMPS_CMD_PUBLISH;
	/* Runs once per frame: the first letter rules most names out before
	 * their length is taken (strlen was a tenth of the relay's time). */
	for (int c = AMPS_CMD_LOGON; c < AMPS_CMD__COUNT; c++)
		if (cmd_names[c][0] == (char)v.p[0] && cursor_eq_str(v, cmd_names[c]))
			return (enum amps_cmd)c;
	return AMPS_CMD_UNKNOWN;
}

/* ---- header keys, both spellings (amps.md key table) ------------------------ */

/* With each key's length, so a lookup (every key of every frame) compares
 * lengths before bytes. */
struct key_row { const char *key; uint8_t len; enum amps_field field; };
#define K(s, f) { s, sizeof s - 1, f }

static const struct key_row keys[] = {
	K("c", AMPS_F_COMMAND),         K("cmd", AMPS_F_COMMAND),       K("command", AMPS_F_COMMAND),
	K("cid", AMPS_F_CID),           K("cmd_id", AMPS_F_CID),        K("command_id", AMPS_F_CID),
	K("t", AMPS_F_TOPIC),           K("topic", AMPS_F_TOPIC),
	K("client_name", AMPS_F_CLIENT_NAME),
	K("user_id", AMPS_F_USER_ID),
	K("pw", AMPS_F_PASSWORD),       K("auth_key", AMPS_F_PASSWORD), K("password", AMPS_F_PASSWORD),
	K("a", AMPS_F_ACK_TYPE),        K("ack", AMPS_F_ACK_TYPE),      K("ack_type", AMPS_F_ACK_TYPE),
	K("status", AMPS_F_STATUS),
	K("reason", AMPS_F_REASON),
	K("version", AMPS_F_VERSION),
	K("o", AMPS_F_OPTIONS),         K("opts", AMPS_F_OPTIONS),      K("options", AMPS_F_OPTIONS),
	K("sub_id", AMPS_F_SUB_ID),     K("sid", AMPS_F_SUB_ID),        K("sids", AMPS_F_SUB_ID),
	K("sub_ids", AMPS_F_SUB_ID),
	K("s", AMPS_F_SEQ),             K("seq", AMPS_F_SEQ),
	K("bm", AMPS_F_BOOKMARK),       K("bookmark", AMPS_F_BOOKMARK),
	K("filter", AMPS_F_FILTER),
	K("l", AMPS_F_LEN),
	K("k", AMPS_F_SOW_KEY),
	K("x", AMPS_F_CORRELATION),
	K("bs", AMPS_F_BATCH_SIZE),     K("batch_size", AMPS_F_BATCH_SIZE),
	K("query_id", AMPS_F_QUERY_ID),
};
#undef K

int amps_field_from_key(struct cursor key)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (key.left == keys[i].len && memcmp(key.p, keys[i].key, key.left) == 0)
			return (int)keys[i].field;
	return -1;
}

bool amps_view_u64(struct cursor v, uint64_t *out)
{
	uint64_t n = 0;
	if (v.left == 0 || v.left > 19)
		return false;
	for (size_t i = 0; i < v.left; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	*out = n;
	return true;
}

/* A short field as plain text (unescaped when it has escapes): for comparing
 * commands, statuses and options. False if it does not fit. */
static bool small_text(const struct amps_header *h, enum amps_field f, char *buf, size_t cap)
{
	struct cursor v = h->f[f];
	if (h->escaped & (1u << f))
		return amps_json_unescape(v, buf, cap) >= 0;
	if (v.left >= cap)
		return false;
	if (v.left)
		memcpy(buf, v.p, v.left);
	buf[v.left] = 0;
	return true;
}

void amps_header_finish(struct amps_header *h)
{
	char t[48];
	h->cmd = AMPS_CMD_NONE;
	if (AMPS_HAS(h, AMPS_F_COMMAND))
		h->cmd = small_text(h, AMPS_F_COMMAND, t, sizeof t) ? amps_cmd_from_view(cursor_make(t, strlen(t)))
								    : AMPS_CMD_UNKNOWN;
	if (AMPS_HAS(h, AMPS_F_STATUS)) {
		h->status = AMPS_STATUS_OTHER;
		if (small_text(h, AMPS_F_STATUS, t, sizeof t)) {
			if (!strcmp(t, "success"))
				h->status = AMPS_STATUS_SUCCESS;
			else if (!strcmp(t, "failure"))
				h->status = AMPS_STATUS_FAILURE;
			else if (!strcmp(t, "retry"))
				h->status = AMPS_STATUS_RETRY;
		}
	}
	/* heartbeat options: "start,N" (N seconds), "beat", "stop" */
	if (h->cmd == AMPS_CMD_HEARTBEAT && AMPS_HAS(h, AMPS_F_OPTIONS) && small_text(h, AMPS_F_OPTIONS, t, sizeof t)) {
		if (!strncmp(t, "start", 5)) {
			h->hb_op = AMPS_HB_START;
			uint64_t n;
			const char *num = t[5] == ',' ? t + 6 : t + 5;
			if (amps_view_u64(cursor_make(num, strlen(num)), &n) && n <= 86400)
				h->hb_interval_s = (uint32_t)n;
		} else if (!strcmp(t, "beat")) {
			h->hb_op = AMPS_HB_BEAT;
		} else if (!strcmp(t, "stop")) {
			h->hb_op = AMPS_HB_STOP;
		}
	} else if (h->cmd == AMPS_CMD_HEARTBEAT) {
		h->hb_op = AMPS_HB_BEAT;
	}
}

/* ---- the codec ------------------------------------------------------------ */

void amps_codec_init(struct amps_codec *c, enum amps_wire wire)
{
	memset(c, 0, sizeof *c);
	c->wire = wire;
}

static enum amps_wire wire_of(struct cursor payload)
{
	for (size_t i = 0; i < payload.left; i++) {
		uint8_t b = payload.p[i];
		if (b == ' ' || b == '\t' || b == '\r' || b == '\n')
			continue;
		if (b == '{')
			return AMPS_WIRE_JSON;
		if (b >= '0' && b <= '9')
			return AMPS_WIRE_FIX;
		return AMPS_WIRE_NVFIX;
	}
	return AMPS_WIRE_AUTO;
}

static uint32_t amps_off_of(struct cursor payload, struct cursor v)
{
	return v.p && v.p >= payload.p ? (uint32_t)(v.p - payload.p) : 0;
}

static bool cid_matches(const struct amps_codec *c, const struct amps_header *h)
{
	if (c->logon_cid_len == 0 || !AMPS_HAS(h, AMPS_F_CID))
		return true; /* nothing to compare: the first answer is the logon's */
	return h->f[AMPS_F_CID].left == c->logon_cid_len && memcmp(h->f[AMPS_F_CID].p, c->logon_cid, c->logon_cid_len) == 0;
}

enum proto_err amps_decode(struct amps_codec *c, enum proto_dir dir, struct cursor payload, struct amps_header *out,
			   struct proto_diag *d)
{
	if (payload.left == 0) {
		memset(out, 0, sizeof *out);
		out->wire = c->wire;
		out->cmd = AMPS_CMD_NOOP;
		out->body = payload;
		return PROTO_OK;
	}
	enum amps_wire w = c->wire;
	if (w == AMPS_WIRE_AUTO)
		w = wire_of(payload);
	enum proto_err r;
	if (w == AMPS_WIRE_JSON || w == AMPS_WIRE_AUTO)
		r = amps_json_header(payload, out, d);
	else
		r = amps_fix_header(payload, w == AMPS_WIRE_NVFIX, out, d);
	if (r != PROTO_OK)
		return r;
	if (c->wire == AMPS_WIRE_AUTO)
		c->wire = w; /* a connection keeps one syntax */
	if (out->cmd == AMPS_CMD_UNKNOWN) {
		amps_fail(d, AMPS_E_UNKNOWN_COMMAND, "command", amps_off_of(payload, out->f[AMPS_F_COMMAND]));
		d->value = out->f[AMPS_F_COMMAND];
		return d->cls;
	}
	if (dir == PROTO_C2S && out->cmd == AMPS_CMD_NONE)
		return amps_fail(d, AMPS_E_NO_COMMAND, "command", 0);
	if (dir == PROTO_C2S && out->cmd == AMPS_CMD_LOGON && !c->logon_seen) {
		c->logon_seen = true;
		struct cursor cid = out->f[AMPS_F_CID];
		c->logon_cid_len = (uint8_t)(AMPS_HAS(out, AMPS_F_CID) && cid.left <= sizeof c->logon_cid ? cid.left : 0);
		if (c->logon_cid_len)
			memcpy(c->logon_cid, cid.p, c->logon_cid_len);
	}
	if (dir == PROTO_S2C && out->cmd == AMPS_CMD_ACK && c->logon_seen && !c->logon_answered &&
	    out->status != AMPS_STATUS_NONE && cid_matches(c, out)) {
		c->logon_answered = true;
		out->logon_ack = true;
	}
	return PROTO_OK;
}

/* ---- sow batches ------------------------------------------------------------ */

enum proto_err amps_sow_next(struct cursor *it, struct amps_sow_record *rec, struct proto_diag *d)
{
	const uint8_t *base = it->p;
	if (cursor_empty(it))
		return PROTO_NEED_MORE;
	enum proto_err r = amps_json_header(*it, &rec->hdr, d);
	if (r != PROTO_OK)
		return r;
	uint64_t len;
	if (!AMPS_HAS(&rec->hdr, AMPS_F_LEN) || !amps_view_u64(rec->hdr.f[AMPS_F_LEN], &len))
		return amps_fail(d, AMPS_E_SOW_RECORD, "l", 0);
	struct cursor rest = rec->hdr.body;
	if (!cursor_take(&rest, len, &rec->data))
		return amps_fail(d, AMPS_E_SOW_LENGTH, "l", amps_off(base, &rest));
	rec->hdr.body = rec->data;
	*it = rest;
	return PROTO_OK;
}

/* ---- facts ------------------------------------------------------------------ */

void amps_header_facts(const struct amps_codec *c, enum proto_dir dir, const struct amps_header *h,
		       struct proto_facts *out)
{
	(void)c;
	memset(out, 0, sizeof *out);
	out->protocol = PROTO_ID_AMPS;
	out->type_name = amps_cmd_name(h->cmd);
	out->cid = h->f[AMPS_F_CID];
	if (AMPS_HAS(h, AMPS_F_REASON)) {
		out->text = h->f[AMPS_F_REASON];
		out->has_reason = true;
	}
	switch (h->cmd) {
	case AMPS_CMD_NOOP:
		out->kind = FACT_NOOP;
		break;
	case AMPS_CMD_LOGON:
		if (dir != PROTO_C2S)
			break;
		out->kind = FACT_LOGON;
		out->identity = h->f[AMPS_F_CLIENT_NAME];
		out->user = h->f[AMPS_F_USER_ID];
		out->has_user = AMPS_HAS(h, AMPS_F_USER_ID);
		out->has_credentials = AMPS_HAS(h, AMPS_F_USER_ID) || AMPS_HAS(h, AMPS_F_PASSWORD);
		break;
	case AMPS_CMD_ACK:
		if (h->logon_ack) {
			out->kind = FACT_LOGON_ACK;
			out->refused = h->status == AMPS_STATUS_FAILURE;
			out->identity = h->f[AMPS_F_CLIENT_NAME];
		}
		break;
	case AMPS_CMD_HEARTBEAT:
		out->kind = FACT_HEARTBEAT;
		out->heartbeat_s = h->hb_op == AMPS_HB_START ? h->hb_interval_s : 0;
		break;
	case AMPS_CMD_PUBLISH:
	case AMPS_CMD_DELTA_PUBLISH:
		out->kind = FACT_PUBLISH;
		break;
	case AMPS_CMD_SUBSCRIBE:
	case AMPS_CMD_DELTA_SUBSCRIBE:
	case AMPS_CMD_SOW_AND_SUBSCRIBE:
	case AMPS_CMD_SOW_AND_DELTA_SUBSCRIBE:
		out->kind = dir == PROTO_C2S ? FACT_SUBSCRIBE : FACT_OTHER;
		break;
	default:
		break;
	}
}
