/* Renders the event catalog as Markdown: doc/events.md is this output,
 * committed, and tests/unit/test_events.c fails when the file and the tables
 * disagree. Everything printed comes from policy/events.def and
 * policy/reasons.def through the evt_* lookups, and the MQTT spec's names
 * for reason codes, from proto/mqtt_reason.c. */
#include "sink/sink.h"
#include "proto/mqtt.h"

#include <stdio.h>

/* The spec's names come from proto/'s tables, DISCONNECT wording for 0x00. */
static const char *v5_spec_name(int code)
{
	const char *n = mqtt_reason_name((uint8_t)code, MQTT_T_DISCONNECT);
	return n ? n : "?";
}

/* Table cells: a '|' would end the cell early. */
static void cell(FILE *fp, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', fp);
		fputc(*s, fp);
	}
}

/* "a b c" as "`a` `b` `c`"; an empty list as "–". */
static void field_list(FILE *fp, const char *fields)
{
	bool any = false, in_word = false;

	for (const char *s = fields; *s; s++) {
		if (*s == ' ') {
			if (in_word)
				fputc('`', fp);
			in_word = false;
			continue;
		}
		if (!in_word)
			fputs(any ? " `" : "`", fp);
		in_word = any = true;
		fputc(*s, fp);
	}
	fputs(in_word ? "`" : any ? "" : "–", fp);
}

static void intro(FILE *fp)
{
	fputs("<!-- Generated from policy/events.def and policy/reasons.def: do not edit. "
	      "Regenerate with: tools/gen_events_md > doc/events.md -->\n"
	      "# wirewarden event catalog\n\n"
	      "Every fact wirewarden reports about a client or a connection is one of the events below, "
	      "and every connection ends with exactly one `disconnect` event, its last, which names the "
	      "reason. Ids are `W` and four digits and are never reused; the first digit groups them: "
	      "W1 connection lifecycle, W2 disconnect, W3 session and policy observations, W4 protocol, "
	      "W5 auth and access, W6 admin and operations, W7 capture and sniffing. A `disconnect` "
	      "carries the id of its reason (`W2101` is always a keep-alive timeout, as AMPS's `07-0042` "
	      "is always a missed heartbeat), so `grep W2101` finds every such end; its severity is "
	      "`info` for an orderly end (DISCONNECT from the client, capture ended) and `warning` "
	      "otherwise. The text sink writes one line per event, "
	      "`<time> <severity> <id> client[<client id>] <name>: <message> (<field>=<value> ...)`, "
	      "with the client id escaped so that it can never break or forge a line; the JSON sink "
	      "writes one object per line with the field names below. In a message, `{field}` stands "
	      "for that field of the event. This file is generated from the tables: edit "
	      "`policy/events.def` or `policy/reasons.def`, then run `tools/gen_events_md > doc/events.md`; "
	      "a unit test fails while the two disagree.\n\n",
	      fp);
}

static void events_table(FILE *fp)
{
	fputs("## Events\n\n"
	      "Fields listed are the ones the event fills beyond those any event about a connection "
	      "may carry (`conn`, `client_id`, `username`, `identity`, `client`, `broker`, `protocol`, `level`).\n\n"
	      "| id | name | severity | message | fields |\n"
	      "|---|---|---|---|---|\n",
	      fp);
	for (int c = 0; c < EVT__COUNT; c++) {
		enum evt_code code = (enum evt_code)c;

		fprintf(fp, "| %s | `%s` | ", evt_id(code), evt_name(code));
		if (evt_is_retired(code))
			fputs("retired", fp);
		else if (code == EVT_DISCONNECT)
			fputs("info or warning", fp);
		else
			fputs(evt_severity_name(evt_severity(code)), fp);
		fputs(" | ", fp);
		cell(fp, evt_template(code));
		fputs(" | ", fp);
		field_list(fp, evt_fields(code));
		fputs(" |\n", fp);
	}
	fputs("\n", fp);
}

static void reasons_table(FILE *fp)
{
	fputs("## Disconnect reasons\n\n"
	      "The `reason` of a `disconnect` (and of `connect_refused` and `would_disconnect`). The id is "
	      "the one the `disconnect` event carries. Several reasons may share a wire code when "
	      "wirewarden knows more than the wire says; the usual closer is who normally ends the "
	      "connection for this reason; the AMPS column gives the AMPS `07-0013` reason with the same "
	      "meaning.\n\n"
	      "| id | reason | MQTT 5 code | usual closer | AMPS | meaning |\n"
	      "|---|---|---|---|---|---|\n",
	      fp);
	for (int r = EVT_R_NONE + 1; r < EVT_R__COUNT; r++) {
		enum evt_reason reason = (enum evt_reason)r;
		int v5 = evt_reason_wire_code(reason);

		fprintf(fp, "| %s | `%s` | ", evt_reason_id(reason), evt_reason_name(reason));
		if (v5 >= 0)
			fprintf(fp, "0x%02X %s", (unsigned)v5, v5_spec_name(v5));
		else
			fputs("–", fp);
		fprintf(fp, " | %s | %s | ", evt_reason_closer(reason),
			evt_reason_amps(reason) ? evt_reason_amps(reason) : "–");
		cell(fp, evt_reason_meaning(reason));
		fputs(" |\n", fp);
	}
	fputs("\n", fp);
}

static void code_maps(FILE *fp)
{
	fputs("## Wire codes to reasons\n\n"
	      "How a code sent by a broker is read. MQTT 5 DISCONNECT or CONNACK reason codes below "
	      "0x80 are not errors and give no reason by themselves; an error code not listed here "
	      "gives `unknown`.\n\n"
	      "| MQTT 5 code | spec name | reason | id |\n"
	      "|---|---|---|---|\n",
	      fp);
	for (int code = 0x80; code <= 0xFF; code++) {
		enum evt_reason r = evt_reason_from_v5((uint8_t)code);

		if (r == EVT_R_UNKNOWN)
			continue;
		fprintf(fp, "| 0x%02X | %s | `%s` | %s |\n", (unsigned)code, v5_spec_name(code),
			evt_reason_name(r), evt_reason_id(r));
	}
	fputs("\n| 3.1/3.1.1 CONNACK code | spec name | reason | id |\n"
	      "|---|---|---|---|\n",
	      fp);
	for (int rc = 1; rc <= 5; rc++) {
		enum evt_reason r = evt_reason_from_v3_connack((uint8_t)rc);

		fprintf(fp, "| %d | %s | `%s` | %s |\n", rc, mqtt_v3_connack_name((uint8_t)rc), evt_reason_name(r),
			evt_reason_id(r));
	}
}

int evt_catalog_markdown(FILE *fp)
{
	intro(fp);
	events_table(fp);
	reasons_table(fp);
	code_maps(fp);
	return ferror(fp) ? -1 : 0;
}
