/* The recorded vectors of an independent parser (mqttjs/mqtt-packet, see
 * tests/data/vectors/SOURCES.md): every valid vector must decode to the same
 * packets with the same field values; every error vector that breaks the
 * MQTT spec must be rejected. The few error vectors that are only that
 * parser's policy are listed below with the reason we accept them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "proto/mqtt.h"
#include "tests/unit/testutil.h"

/* Error vectors that do not break the spec: mqtt-packet's own policy. */
static const struct {
	const char *hex_prefix;
	const char *why;
} policy_only[] = {
	{ NULL, NULL },
};

/* Valid vectors that break the spec: mqtt-packet is lenient, we are not. */
static const struct {
	const char *hex;
	const char *why;
} lenient_only[] = {
	{ "200101", "CONNACK with Remaining Length 1 has no reason code: truncated in 3.1.1 and 5.0 (3.2.2)" },
	{ "205700005411000004d22101b02402", "Maximum QoS 2: a value other than 0 or 1 is a Protocol Error (MQTT 5.0 3.2.2.3.4)" },
	{ "206400006111000004d22101b02402", "Maximum QoS 2: a value other than 0 or 1 is a Protocol Error (MQTT 5.0 3.2.2.3.4)" },
	{ NULL, NULL },
};

static bool is_lenient_only(const char *hex)
{
	for (size_t k = 0; lenient_only[k].hex; k++)
		if (strncmp(hex, lenient_only[k].hex, strlen(lenient_only[k].hex)) == 0)
			return true;
	return false;
}

static json_t *vectors;

static int load(void **state)
{
	(void)state;
	size_t n;
	char *text = tu_read_file(tu_data_path("vectors/mqtt-packet-vectors.jsonl"), &n);
	if (!text)
		return -1;
	vectors = json_array();
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		json_error_t e;
		json_t *v = json_loads(line, 0, &e);
		if (!v)
			return -1;
		json_array_append_new(vectors, v);
	}
	free(text);
	return 0;
}

static int unload(void **state)
{
	(void)state;
	json_decref(vectors);
	return 0;
}

/* The direction a packet type flows in, for vectors that hold no direction. */
static enum proto_dir dir_of(uint8_t first)
{
	switch (first >> 4) {
	case MQTT_T_CONNACK: case MQTT_T_SUBACK: case MQTT_T_UNSUBACK: case MQTT_T_PINGRESP:
		return PROTO_S2C;
	default:
		return PROTO_C2S;
	}
}

/* Decodes the whole of <buf>; returns packets decoded, sets *<err>. */
static size_t decode_all(int level, const uint8_t *buf, size_t n, struct mqtt_packet *pkts, size_t max,
			 enum proto_err *err, struct proto_diag *d)
{
	struct mqtt_codec codec;
	mqtt_codec_init(&codec);
	codec.assumed_level = (uint8_t)level;
	size_t count = 0, off = 0;
	*err = PROTO_OK;
	while (off < n) {
		struct proto_frame fr;
		enum proto_err r = mqtt_frame_peek(cursor_make(buf + off, n - off), 0, &fr, d);
		if (r == PROTO_OK) {
			struct mqtt_packet tmp;
			struct cursor frame = cursor_make(buf + off, (size_t)proto_frame_len(&fr));
			struct mqtt_packet *p = count < max ? &pkts[count] : &tmp;
			r = mqtt_decode(&codec, dir_of(buf[off]), frame, p, d);
			/* A vector has no direction: a PUBLISH is valid if either side
			 * may send it (only servers add Subscription Identifiers). */
			if (r != PROTO_OK && (buf[off] >> 4) == MQTT_T_PUBLISH)
				r = mqtt_decode(&codec, PROTO_S2C, frame, p, d);
		}
		if (r != PROTO_OK) {
			*err = r;
			return count;
		}
		count++;
		off += (size_t)proto_frame_len(&fr);
	}
	return count;
}

static char *hex_of(struct cursor c)
{
	char *s = malloc(c.left * 2 + 1);
	for (size_t i = 0; i < c.left; i++)
		sprintf(s + 2 * i, "%02x", c.p[i]);
	s[c.left * 2] = 0;
	return s;
}

static int fails;
__attribute__((format(printf, 3, 4)))
static void mismatch(const char *hex, const char *field, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "vector %.60s: %s: ", hex, field);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fails++;
}

static void want_int(const char *hex, json_t *obj, const char *key, long long got)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return;
	long long want = json_is_boolean(v) ? json_is_true(v) : json_integer_value(v);
	if (want != got)
		mismatch(hex, key, "want %lld got %lld", want, got);
}

static void want_str(const char *hex, json_t *obj, const char *key, struct cursor got)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return;
	const char *want;
	char *gotstr = NULL;
	if (json_is_object(v)) { /* {"$hex": "..."}: binary data */
		want = json_string_value(json_object_get(v, "$hex"));
		gotstr = hex_of(got);
	} else {
		want = json_string_value(v);
		gotstr = malloc(got.left + 1);
		memcpy(gotstr, got.p ? (const char *)got.p : "", got.left);
		gotstr[got.left] = 0;
	}
	if (!want || strcmp(want, gotstr) != 0)
		mismatch(hex, key, "want '%s' got '%s'", want ? want : "?", gotstr);
	free(gotstr);
}

/* Checks the v5 properties object <props> against <p>. */
static void check_props(const char *hex, json_t *props, const struct mqtt_props *p)
{
	static const struct { const char *key; uint8_t id; } nums[] = {
		{ "sessionExpiryInterval", MQTT_P_SESSION_EXPIRY }, { "receiveMaximum", MQTT_P_RECEIVE_MAXIMUM },
		{ "maximumPacketSize", MQTT_P_MAXIMUM_PACKET_SIZE }, { "topicAliasMaximum", MQTT_P_TOPIC_ALIAS_MAXIMUM },
		{ "requestResponseInformation", MQTT_P_REQUEST_RESPONSE_INFO },
		{ "requestProblemInformation", MQTT_P_REQUEST_PROBLEM_INFO }, { "payloadFormatIndicator", MQTT_P_PAYLOAD_FORMAT },
		{ "messageExpiryInterval", MQTT_P_MESSAGE_EXPIRY }, { "topicAlias", MQTT_P_TOPIC_ALIAS },
		{ "maximumQoS", MQTT_P_MAXIMUM_QOS }, { "retainAvailable", MQTT_P_RETAIN_AVAILABLE },
		{ "wildcardSubscriptionAvailable", MQTT_P_WILDCARD_SUB_AVAILABLE },
		{ "subscriptionIdentifiersAvailable", MQTT_P_SUB_ID_AVAILABLE },
		{ "sharedSubscriptionAvailable", MQTT_P_SHARED_SUB_AVAILABLE }, { "serverKeepAlive", MQTT_P_SERVER_KEEP_ALIVE },
		{ "willDelayInterval", MQTT_P_WILL_DELAY },
	};
	static const struct { const char *key; uint8_t id; } strs[] = {
		{ "authenticationMethod", MQTT_P_AUTH_METHOD }, { "authenticationData", MQTT_P_AUTH_DATA },
		{ "reasonString", MQTT_P_REASON_STRING }, { "serverReference", MQTT_P_SERVER_REFERENCE },
		{ "assignedClientIdentifier", MQTT_P_ASSIGNED_CLIENT_ID }, { "responseInformation", MQTT_P_RESPONSE_INFO },
		{ "responseTopic", MQTT_P_RESPONSE_TOPIC }, { "correlationData", MQTT_P_CORRELATION_DATA },
		{ "contentType", MQTT_P_CONTENT_TYPE },
	};
	const char *key;
	json_t *val;
	json_object_foreach(props, key, val) {
		bool known = false;
		for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
			if (strcmp(key, nums[i].key) != 0)
				continue;
			known = true;
			struct cursor it = p->raw;
			struct mqtt_prop pr;
			long long got = -1;
			while (mqtt_props_next(&it, &pr))
				if (pr.id == nums[i].id)
					got = pr.num;
			long long want = json_is_boolean(val) ? json_is_true(val) : json_integer_value(val);
			if (got != want)
				mismatch(hex, key, "want %lld got %lld", want, got);
		}
		for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
			if (strcmp(key, strs[i].key) != 0)
				continue;
			known = true;
			struct cursor it = p->raw, got = { NULL, 0 };
			struct mqtt_prop pr;
			bool seen = false;
			while (mqtt_props_next(&it, &pr))
				if (pr.id == strs[i].id)
					got = pr.str, seen = true;
			json_t *wrap = json_object();
			json_object_set(wrap, key, val);
			if (!seen)
				mismatch(hex, key, "missing");
			else
				want_str(hex, wrap, key, got);
			json_decref(wrap);
		}
		if (strcmp(key, "subscriptionIdentifier") == 0) {
			known = true;
			size_t nwant = json_is_array(val) ? json_array_size(val) : 1;
			size_t k = 0;
			struct cursor it = p->raw;
			struct mqtt_prop pr;
			while (mqtt_props_next(&it, &pr)) {
				if (pr.id != MQTT_P_SUBSCRIPTION_ID)
					continue;
				json_t *w = json_is_array(val) ? json_array_get(val, k) : val;
				if (!w || (long long)pr.num != json_integer_value(w))
					mismatch(hex, key, "entry %zu differs", k);
				k++;
			}
			if (k != nwant)
				mismatch(hex, key, "want %zu got %zu", nwant, k);
		}
		if (strcmp(key, "userProperties") == 0) {
			known = true;
			/* {key: value} or {key: [values]} in wire order per key. */
			size_t nwant = 0, ngot = p->user_property_count;
			const char *uk;
			json_t *uv;
			json_object_foreach(val, uk, uv) {
				size_t nv = json_is_array(uv) ? json_array_size(uv) : 1;
				nwant += nv;
				size_t idx = 0;
				struct cursor it = p->raw;
				struct mqtt_prop pr;
				while (mqtt_props_next(&it, &pr)) {
					if (pr.id != MQTT_P_USER_PROPERTY || !cursor_eq_str(pr.str, uk))
						continue;
					json_t *w = json_is_array(uv) ? json_array_get(uv, idx) : uv;
					const char *ws = json_string_value(w);
					if (!ws || !cursor_eq_str(pr.str2, ws))
						mismatch(hex, "userProperties", "%s[%zu] differs", uk, idx);
					idx++;
				}
				if (idx != nv)
					mismatch(hex, "userProperties", "%s: want %zu got %zu", uk, nv, idx);
			}
			if (nwant != ngot)
				mismatch(hex, "userProperties", "want %zu got %zu", nwant, ngot);
		}
		if (!known)
			mismatch(hex, key, "property not compared: add it to the test");
	}
}

static void check_packet(const char *hex, json_t *w, const struct mqtt_packet *p)
{
	char name[16];
	snprintf(name, sizeof name, "%s", mqtt_type_name(p->type));
	for (char *s = name; *s; s++)
		*s = (char)(*s - 'A' + 'a');
	const char *cmd = json_string_value(json_object_get(w, "cmd"));
	if (!cmd || strcmp(cmd, name) != 0) {
		mismatch(hex, "cmd", "want %s got %s", cmd ? cmd : "?", name);
		return;
	}
	want_int(hex, w, "length", p->remaining_len);
	switch (p->type) {
	case MQTT_T_CONNECT: {
		const struct mqtt_connect *c = &p->u.connect;
		want_str(hex, w, "protocolId", c->protocol_name);
		want_int(hex, w, "protocolVersion", c->level);
		want_int(hex, w, "bridgeMode", c->bridge);
		want_int(hex, w, "clean", c->clean_start);
		want_int(hex, w, "keepalive", c->keep_alive_s);
		want_str(hex, w, "clientId", c->client_id);
		want_str(hex, w, "username", c->username);
		want_str(hex, w, "password", c->password);
		json_t *will = json_object_get(w, "will");
		if (will && !json_is_null(will)) {
			if (!c->will)
				mismatch(hex, "will", "missing");
			want_str(hex, will, "topic", c->will_topic);
			want_str(hex, will, "payload", c->will_payload);
			want_int(hex, will, "qos", c->will_qos);
			want_int(hex, will, "retain", c->will_retain);
			json_t *wp = json_object_get(will, "properties");
			if (wp)
				check_props(hex, wp, &c->will_props);
		} else if (c->will) {
			mismatch(hex, "will", "unexpected");
		}
		json_t *props = json_object_get(w, "properties");
		if (props)
			check_props(hex, props, &c->props);
		break;
	}
	case MQTT_T_CONNACK:
		want_int(hex, w, "sessionPresent", p->u.connack.session_present);
		want_int(hex, w, "returnCode", p->u.connack.code);
		want_int(hex, w, "reasonCode", p->u.connack.code);
		if (json_object_get(w, "properties"))
			check_props(hex, json_object_get(w, "properties"), &p->u.connack.props);
		break;
	case MQTT_T_PUBLISH:
		want_int(hex, w, "qos", p->u.publish.qos);
		want_int(hex, w, "dup", p->u.publish.dup);
		want_int(hex, w, "retain", p->u.publish.retain);
		want_str(hex, w, "topic", p->u.publish.topic);
		want_int(hex, w, "messageId", p->u.publish.packet_id);
		want_str(hex, w, "payload", p->u.publish.payload);
		if (json_object_get(w, "properties"))
			check_props(hex, json_object_get(w, "properties"), &p->u.publish.props);
		break;
	case MQTT_T_PUBACK: case MQTT_T_PUBREC: case MQTT_T_PUBREL: case MQTT_T_PUBCOMP:
		want_int(hex, w, "messageId", p->u.ack.packet_id);
		want_int(hex, w, "reasonCode", p->u.ack.reason);
		if (json_object_get(w, "properties"))
			check_props(hex, json_object_get(w, "properties"), &p->u.ack.props);
		break;
	case MQTT_T_SUBSCRIBE: case MQTT_T_UNSUBSCRIBE: {
		bool sub = p->type == MQTT_T_SUBSCRIBE;
		want_int(hex, w, "messageId", p->u.subscribe.packet_id);
		json_t *list = json_object_get(w, sub ? "subscriptions" : "unsubscriptions");
		struct cursor it = p->u.subscribe.entries, filter;
		uint8_t opt;
		size_t i = 0;
		while (mqtt_topic_list_next(&it, sub, &filter, &opt)) {
			json_t *e = json_array_get(list, i++);
			if (!e) {
				mismatch(hex, "subscriptions", "extra entry");
				break;
			}
			if (!sub) {
				json_t *wrap = json_pack("{sO}", "t", e);
				want_str(hex, wrap, "t", filter);
				json_decref(wrap);
				continue;
			}
			want_str(hex, e, "topic", filter);
			want_int(hex, e, "qos", opt & 3);
			want_int(hex, e, "nl", (opt >> 2) & 1);
			want_int(hex, e, "rap", (opt >> 3) & 1);
			want_int(hex, e, "rh", (opt >> 4) & 3);
		}
		if (i != json_array_size(list))
			mismatch(hex, "subscriptions", "want %zu got %zu", json_array_size(list), i);
		if (json_object_get(w, "properties"))
			check_props(hex, json_object_get(w, "properties"), &p->u.subscribe.props);
		break;
	}
	case MQTT_T_SUBACK: case MQTT_T_UNSUBACK: {
		want_int(hex, w, "messageId", p->u.suback.packet_id);
		json_t *granted = json_object_get(w, "granted");
		if (granted && json_is_array(granted)) {
			if (json_array_size(granted) != p->u.suback.codes.left)
				mismatch(hex, "granted", "want %zu got %zu", json_array_size(granted), p->u.suback.codes.left);
			for (size_t i = 0; i < json_array_size(granted) && i < p->u.suback.codes.left; i++)
				if (json_integer_value(json_array_get(granted, i)) != p->u.suback.codes.p[i])
					mismatch(hex, "granted", "entry %zu differs", i);
		}
		if (json_object_get(w, "properties"))
			check_props(hex, json_object_get(w, "properties"), &p->u.suback.props);
		break;
	}
	case MQTT_T_DISCONNECT:
		want_int(hex, w, "reasonCode", p->u.disconnect.reason);
		if (json_object_get(w, "properties"))
			check_props(hex, json_object_get(w, "properties"), &p->u.disconnect.props);
		break;
	case MQTT_T_AUTH:
		want_int(hex, w, "reasonCode", p->u.auth.reason);
		if (json_object_get(w, "properties"))
			check_props(hex, json_object_get(w, "properties"), &p->u.auth.props);
		break;
	}
}

static bool is_split_test(json_t *v)
{
	json_t *t = json_array_get(json_object_get(v, "tests"), 0);
	const char *s = json_string_value(t);
	return s && strncmp(s, "split", 5) == 0;
}

static void test_valid_vectors_decode_to_the_same_fields(void **state)
{
	(void)state;
	size_t i, checked = 0;
	json_t *v;
	fails = 0;
	json_array_foreach(vectors, i, v) {
		if (strcmp(json_string_value(json_object_get(v, "kind")), "valid") != 0 || is_split_test(v))
			continue;
		const char *hex = json_string_value(json_object_get(v, "hex"));
		size_t n;
		uint8_t *buf = tu_hex(hex, &n);
		struct mqtt_packet pkts[8];
		struct proto_diag d;
		enum proto_err err;
		size_t got = decode_all((int)json_integer_value(json_object_get(v, "protocolVersion")), buf, n, pkts, 8, &err, &d);
		json_t *want = json_object_get(v, "packets");
		if (is_lenient_only(hex)) {
			if (err == PROTO_OK)
				mismatch(hex, "lenient", "now accepted: drop it from lenient_only");
		} else if (err != PROTO_OK)
			mismatch(hex, "decode", "%s in %s at %u", d.name, d.field ? d.field : "-", d.offset);
		else if (got != json_array_size(want))
			mismatch(hex, "packets", "want %zu got %zu", json_array_size(want), got);
		else
			for (size_t k = 0; k < got; k++)
				check_packet(hex, json_array_get(want, k), &pkts[k]);
		checked++;
		free(buf);
	}
	assert_true(checked >= 70);
	assert_int_equal(fails, 0);
}

/* The "split" tests fed one packet in pieces: joined in file order, each
 * test's pieces must decode to the packet it recorded. */
static void test_split_vectors_join_to_one_packet(void **state)
{
	(void)state;
	static const char *names[] = { "splitted publish parse", "split publish longer", "split length parse" };
	fails = 0;
	for (size_t t = 0; t < 3; t++) {
		/* Identical records of two tests were merged at the first one's
		 * place, so a test's pieces may start mid-list: join them in file
		 * order starting from the piece that opens with the PUBLISH header. */
		const char *piece[8];
		size_t np = 0, start = 0;
		json_t *last = NULL, *v;
		size_t i;
		json_array_foreach(vectors, i, v) {
			json_t *tn;
			size_t k;
			json_array_foreach(json_object_get(v, "tests"), k, tn) {
				if (strcmp(json_string_value(tn), names[t]) == 0 && np < 8) {
					piece[np] = json_string_value(json_object_get(v, "hex"));
					if (strncmp(piece[np], "30", 2) == 0 && (np == 0 || strncmp(piece[start], "30", 2) != 0))
						start = np;
					np++;
					last = v;
				}
			}
		}
		char hex[8192] = "";
		for (size_t k = 0; k < np; k++)
			strncat(hex, piece[(start + k) % np], sizeof hex - strlen(hex) - 1);
		assert_non_null(last);
		size_t n;
		uint8_t *buf = tu_hex(hex, &n);
		struct mqtt_packet pkt;
		struct proto_diag d;
		enum proto_err err;
		size_t got = decode_all(4, buf, n, &pkt, 1, &err, &d);
		if (err != PROTO_OK || got != 1)
			mismatch(hex, "split", "decoded %zu packets, %s", got, d.name ? d.name : "ok");
		else
			check_packet(hex, json_array_get(json_object_get(last, "packets"), 0), &pkt);
		free(buf);
	}
	assert_int_equal(fails, 0);
}

static void test_error_vectors_are_rejected(void **state)
{
	(void)state;
	size_t i, checked = 0;
	json_t *v;
	fails = 0;
	json_array_foreach(vectors, i, v) {
		if (strcmp(json_string_value(json_object_get(v, "kind")), "error") != 0)
			continue;
		const char *hex = json_string_value(json_object_get(v, "hex"));
		bool policy = false;
		for (size_t k = 0; policy_only[k].hex_prefix; k++)
			policy = policy || strncmp(hex, policy_only[k].hex_prefix, strlen(policy_only[k].hex_prefix)) == 0;
		size_t n;
		uint8_t *buf = tu_hex(hex, &n);
		struct mqtt_packet pkts[8];
		struct proto_diag d;
		enum proto_err err;
		decode_all((int)json_integer_value(json_object_get(v, "protocolVersion")), buf, n, pkts, 8, &err, &d);
		/* A stream that ends inside a packet is an error for mqtt-packet
		 * ("Packet too short") only when the length says the bytes are
		 * there; a framer waiting for more is not a rejection. */
		bool rejected = err != PROTO_OK && err != PROTO_NEED_MORE;
		if (!rejected && !policy)
			mismatch(hex, "error", "accepted, mqtt-packet says: %s", json_string_value(json_object_get(v, "error")));
		if (rejected && policy)
			mismatch(hex, "policy", "now rejected (%s): drop it from policy_only", d.name);
		checked++;
		free(buf);
	}
	assert_true(checked >= 60);
	assert_int_equal(fails, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_vectors_decode_to_the_same_fields),
		cmocka_unit_test(test_split_vectors_join_to_one_packet),
		cmocka_unit_test(test_error_vectors_are_rejected),
	};
	return cmocka_run_group_tests(tests, load, unload);
}
