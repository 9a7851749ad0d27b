/* TLS for the proxy (OpenSSL 3 under libevent's bufferevent_openssl): the
 * contexts of a listener (toward clients, and toward its broker), and the
 * hooks conn.c calls for a connection with a TLS side. A plain connection
 * never comes here: its sockets are read by conn.c itself. Private to proxy/. */
#ifndef WW_PROXY_TLS_H
#define WW_PROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>

#include "common/config.h"

struct conn;
struct proxy_tls;

/* A server context from <cfg>: certificate chain, key, versions, ciphers,
 * ALPN, client certificates. NULL with <why> set (OpenSSL's reason). */
struct proxy_tls *tls_server_new(const struct ww_tls_server_cfg *cfg, char *why, size_t cap);

/* A client context toward the broker at <upstream> ("host:port"): trust
 * store, verification of its name, SNI. NULL with <why> set. */
struct proxy_tls *tls_client_new(const struct ww_tls_client_cfg *cfg, const char *upstream, char *why, size_t cap);

/* Reload: <into> takes <from>'s context and settings (new connections get
 * them; open ones keep theirs); <from> is freed. From any thread. */
void tls_replace(struct proxy_tls *into, struct proxy_tls *from);
void tls_free(struct proxy_tls *t);

/* The client's side of <c> over TLS on socket <fd>, the handshake started
 * with its timeout. NULL on failure (<fd> is then closed). */
struct bufferevent *tls_accept_bev(struct conn *c, evutil_socket_t fd);

/* The broker's side of <c> over TLS, not yet connected. NULL on failure. */
struct bufferevent *tls_upstream_bev(struct conn *c);

/* The client's handshake is done: identity, expiry timer, counters. */
void tls_client_ready(struct conn *c);

/* The client's bufferevent reported <what> before its handshake completed:
 * logs tls_handshake_failed with OpenSSL's reason and alert, counts it and
 * ends the connection. */
void tls_client_failed(struct conn *c, short what);

/* The broker's TLS side failed before it was up: logs tls_handshake_failed
 * (phase upstream) with OpenSSL's reason. The caller goes on as for an
 * unreachable broker. */
void tls_upstream_failed(struct conn *c);

/* /readyz: a TLS handshake with the broker on the connected, blocking socket
 * <fd>, verified as the proxy's own connections are, bounded by <timeout_ms>
 * per read or write. true, or false with <why> (OpenSSL's reason). */
bool tls_probe(struct proxy_tls *t, int fd, int timeout_ms, char *why, size_t cap);

/* Frees <c>'s TLS timer. */
void tls_conn_free(struct conn *c);

#endif
