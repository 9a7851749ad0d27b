/* From a decoded MQTT packet to the protocol-neutral facts the session engine
 * reads (proto.h). This is the only place policy/ learns MQTT meanings, so
 * AMPS can offer the same facts from its own packets. */
#include "proto/mqtt.h"

void mqtt_packet_facts(const struct mqtt_packet *pkt, struct proto_facts *out)
{
	memset(out, 0, sizeof *out);
	out->protocol = PROTO_ID_MQTT;
	out->type_name = mqtt_type_name(pkt->type);
	switch (pkt->type) {
	case MQTT_T_CONNECT: {
		const struct mqtt_connect *cn = &pkt->u.connect;
		out->kind = FACT_LOGON;
		out->level = cn->level;
		out->has_user = cn->has_username;
		out->heartbeat_s = cn->keep_alive_s;
		out->receive_max = mqtt_props_has(&cn->props, MQTT_P_RECEIVE_MAXIMUM) ? cn->props.receive_maximum : 0;
		out->max_packet = cn->props.max_packet_size;
		out->will = cn->will;
		out->identity = cn->client_id;
		out->user = cn->username;
		out->has_credentials = cn->has_username || cn->has_password;
		break;
	}
	case MQTT_T_CONNACK: {
		const struct mqtt_connack *ca = &pkt->u.connack;
		out->kind = FACT_LOGON_ACK;
		out->has_reason = true;
		out->reason = ca->code;
		out->refused = ca->code != 0;
		out->v3_form = ca->v3_form;
		out->heartbeat_s = mqtt_props_has(&ca->props, MQTT_P_SERVER_KEEP_ALIVE) ? ca->props.server_keep_alive : 0;
		out->receive_max = mqtt_props_has(&ca->props, MQTT_P_RECEIVE_MAXIMUM) ? ca->props.receive_maximum : 0;
		out->max_packet = ca->props.max_packet_size;
		out->identity = ca->props.assigned_client_id;
		out->text = ca->props.reason_string;
		break;
	}
	case MQTT_T_PUBLISH:
		out->kind = FACT_PUBLISH;
		out->qos = pkt->u.publish.qos;
		out->dup = pkt->u.publish.dup;
		out->packet_id = pkt->u.publish.packet_id;
		break;
	case MQTT_T_PUBACK:
	case MQTT_T_PUBCOMP:
	case MQTT_T_PUBREC:
	case MQTT_T_PUBREL:
		/* A PUBREC with an error code (>= 0x80) ends the flow [MQTT-4.3.3]. */
		out->kind = (pkt->type == MQTT_T_PUBREC && pkt->u.ack.reason < 0x80) || pkt->type == MQTT_T_PUBREL
				    ? FACT_PUB_ACK_MID
				    : FACT_PUB_ACK;
		out->packet_id = pkt->u.ack.packet_id;
		out->has_reason = pkt->u.ack.has_reason;
		out->reason = pkt->u.ack.reason;
		out->text = pkt->u.ack.props.reason_string;
		break;
	case MQTT_T_SUBSCRIBE:
		out->kind = FACT_SUBSCRIBE;
		out->packet_id = pkt->u.subscribe.packet_id;
		break;
	case MQTT_T_PINGREQ:
	case MQTT_T_PINGRESP:
		out->kind = FACT_HEARTBEAT;
		break;
	case MQTT_T_DISCONNECT:
		out->kind = FACT_DISCONNECT;
		out->has_reason = pkt->u.disconnect.has_reason;
		out->reason = pkt->u.disconnect.reason;
		out->refused = pkt->u.disconnect.reason >= 0x80;
		out->will = pkt->u.disconnect.reason == 0x04;
		out->text = pkt->u.disconnect.props.reason_string;
		break;
	case MQTT_T_AUTH:
		out->kind = FACT_AUTH;
		out->has_reason = pkt->u.auth.has_reason;
		out->reason = pkt->u.auth.reason;
		break;
	default:
		out->kind = FACT_OTHER;
		break;
	}
}
