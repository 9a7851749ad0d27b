/* Names for the protocol-neutral result classes of proto/. */
#include "proto/proto.h"

const char *proto_err_class_name(enum proto_err e)
{
	static const char *const names[PROTO_E__COUNT] = {
		[PROTO_OK] = "ok",
		[PROTO_NEED_MORE] = "need_more",
		[PROTO_E_MALFORMED] = "malformed",
		[PROTO_E_PROTOCOL] = "protocol_error",
		[PROTO_E_TOO_LARGE] = "too_large",
		[PROTO_E_VERSION] = "unsupported_version",
		[PROTO_E_NOT_PROTO] = "not_this_protocol",
	};
	return (unsigned)e < PROTO_E__COUNT ? names[e] : "invalid";
}
