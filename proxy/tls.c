/* TLS contexts and the TLS side of a connection (tls.h). Each SSL_CTX carries
 * its own settings (ALPN list, handshake timeout, expiry mode) as ex_data,
 * freed with the context, so that a reload can swap a listener's context
 * while connections made with the old one keep theirs: SSL_new() holds a
 * reference to its context. */
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "proxy/proxy.h"

/* What a context was made with; one per SSL_CTX, freed by OpenSSL with it. */
struct ctx_info {
	unsigned char alpn[256]; /* wire format: length-prefixed names */
	unsigned alpn_len;
	uint64_t handshake_timeout_ms;
	enum ww_mode expiry;
	bool verify;             /* client side: verify the broker */
	char sni[254];           /* client side: name sent and verified; "" = none */
	char ip[64];             /* client side: IP literal to verify when no name */
};

struct proxy_tls {
	pthread_mutex_t lock;
	SSL_CTX *ctx;
};

static int info_idx = -1;
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static void info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

static void info_index_init(void) { info_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, info_free); }

static const struct ctx_info *info_of(const SSL *ssl) { return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), info_idx); }

/* OpenSSL's reasons for the last failure, from its error queue (emptied). */
static void ossl_why(char *why, size_t cap, const char *what)
{
	unsigned long e;
	size_t n = (size_t)snprintf(why, cap, "%s", what);
	while ((e = ERR_get_error()) != 0 && n < cap) {
		const char *r = ERR_reason_error_string(e);
		n += (size_t)snprintf(why + n, cap - n, ": %s", r ? r : "unknown");
	}
}

static struct proxy_tls *wrap(SSL_CTX *ctx, struct ctx_info *info, char *why, size_t cap)
{
	struct proxy_tls *t = calloc(1, sizeof *t);
	if (!t || SSL_CTX_set_ex_data(ctx, info_idx, info) != 1) {
		snprintf(why, cap, "out of memory");
		free(t);
		free(info);
		SSL_CTX_free(ctx);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->ctx = ctx;
	return t;
}

/* Remembers the last alert each connection sent or received, for the
 * handshake failure event. */
static void info_cb(const SSL *ssl, int where, int ret)
{
	if (!(where & SSL_CB_ALERT))
		return;
	struct conn *c = SSL_get_app_data(ssl);
	if (!c)
		return;
	c->tls_alert = SSL_alert_desc_string_long(ret);
	c->tls_alert_code = (uint8_t)(ret & 0xff);
	c->tls_alert_sent = (where & SSL_CB_WRITE) != 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned inlen, void *arg)
{
	(void)arg;
	const struct ctx_info *info = info_of(ssl);
	unsigned char *o;
	if (SSL_select_next_proto(&o, outlen, info->alpn, info->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301: no_application_protocol */
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

static int tls_version(enum ww_tls_version v) { return v == WW_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION; }

struct proxy_tls *tls_server_new(const struct ww_tls_server_cfg *cfg, char *why, size_t cap)
{
	pthread_once(&info_once, info_index_init);
	struct ctx_info *info = calloc(1, sizeof *info);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!info || !ctx) {
		free(info);
		SSL_CTX_free(ctx);
		ossl_why(why, cap, "cannot make a TLS context");
		return NULL;
	}
	info->handshake_timeout_ms = cfg->handshake_timeout_ms;
	info->expiry = cfg->expiry;
	const char *fail = NULL;
	char what[300];
	ERR_clear_error();
	if (!SSL_CTX_set_min_proto_version(ctx, tls_version(cfg->min_version)) ||
	    !SSL_CTX_set_max_proto_version(ctx, tls_version(cfg->max_version)))
		fail = "TLS versions";
	else if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1)
		fail = cfg->cert;
	else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1)
		fail = cfg->key;
	else if (SSL_CTX_check_private_key(ctx) != 1)
		fail = "the key does not match the certificate";
	else if (cfg->ciphers && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1)
		fail = "tls.ciphers";
	else if (cfg->ciphersuites && SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1)
		fail = "tls.ciphersuites";
	else if (cfg->client_ca) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);
		if (!names || SSL_CTX_load_verify_locations(ctx, cfg->client_ca, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			fail = cfg->client_ca;
		} else {
			SSL_CTX_set_client_CA_list(ctx, names);
			int mode = SSL_VERIFY_PEER;
			if (cfg->client_cert == WW_CLIENT_CERT_REQUIRE)
				mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
			SSL_CTX_set_verify(ctx, cfg->client_cert == WW_CLIENT_CERT_NONE ? SSL_VERIFY_NONE : mode, NULL);
		}
	}
	if (fail) {
		snprintf(what, sizeof what, "TLS: %s", fail);
		ossl_why(why, cap, what);
		free(info);
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* ALPN, comma-separated in the config, to wire format. */
	const char *p = cfg->alpn ? cfg->alpn : "mqtt";
	while (*p) {
		size_t n = strcspn(p, ",");
		if (n && n < 256 && info->alpn_len + 1 + n <= sizeof info->alpn) {
			info->alpn[info->alpn_len++] = (unsigned char)n;
			memcpy(info->alpn + info->alpn_len, p, n);
			info->alpn_len += (unsigned)n;
		}
		p += n + (p[n] == ',');
	}
	if (info->alpn_len)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_info_callback(ctx, info_cb);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* An idle connection keeps no record buffers (about 34 KiB each). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	return wrap(ctx, info, why, cap);
}

struct proxy_tls *tls_client_new(const struct ww_tls_client_cfg *cfg, const char *upstream, char *why, size_t cap)
{
	pthread_once(&info_once, info_index_init);
	struct ctx_info *info = calloc(1, sizeof *info);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!info || !ctx) {
		free(info);
		SSL_CTX_free(ctx);
		ossl_why(why, cap, "cannot make a TLS context");
		return NULL;
	}
	char host[256];
	uint16_t port;
	struct in6_addr a;
	if (ww_parse_hostport(upstream, host, sizeof host, &port) != 0)
		host[0] = 0;
	bool literal = inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
	snprintf(info->sni, sizeof info->sni, "%s", cfg->sni ? cfg->sni : literal ? "" : host);
	if (literal)
		snprintf(info->ip, sizeof info->ip, "%s", host);
	info->verify = cfg->verify;
	const char *fail = NULL;
	char what[300];
	ERR_clear_error();
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (cfg->ca ? SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1 : SSL_CTX_set_default_verify_paths(ctx) != 1)
		fail = cfg->ca ? cfg->ca : "the system's trust store";
	else if (cfg->cert && SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1)
		fail = cfg->cert;
	else if (cfg->key && SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1)
		fail = cfg->key;
	if (fail) {
		snprintf(what, sizeof what, "upstream TLS: %s", fail);
		ossl_why(why, cap, what);
		free(info);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, cfg->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (!cfg->verify)
		fprintf(stderr, "wirewarden proxy: upstream %s: TLS without verifying the broker's certificate\n", upstream);
	static const unsigned char mqtt_alpn[] = { 4, 'm', 'q', 't', 't' };
	SSL_CTX_set_alpn_protos(ctx, mqtt_alpn, sizeof mqtt_alpn);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return wrap(ctx, info, why, cap);
}

void tls_replace(struct proxy_tls *into, struct proxy_tls *from)
{
	pthread_mutex_lock(&into->lock);
	SSL_CTX *old = into->ctx;
	into->ctx = from->ctx;
	pthread_mutex_unlock(&into->lock);
	SSL_CTX_free(old); /* connections made with it hold their own reference */
	pthread_mutex_destroy(&from->lock);
	free(from);
}

void tls_free(struct proxy_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static SSL *new_ssl(struct proxy_tls *t)
{
	pthread_mutex_lock(&t->lock);
	SSL *ssl = SSL_new(t->ctx);
	pthread_mutex_unlock(&t->lock);
	return ssl;
}

/* ---- a connection's TLS side ---- */

static void timer_cb(evutil_socket_t fd, short what, void *arg);

struct bufferevent *tls_accept_bev(struct conn *c, evutil_socket_t fd)
{
	SSL *ssl = new_ssl(c->lst->tls);
	if (!ssl) {
		evutil_closesocket(fd);
		return NULL;
	}
	SSL_set_app_data(ssl, c);
	struct bufferevent *bev =
		bufferevent_openssl_socket_new(c->w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		return NULL;
	}
	/* A client that closes without close_notify is an end of stream, as on
	 * a plain connection, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->tls_timer = evtimer_new(c->w->base, timer_cb, c);
	uint64_t ms = info_of(ssl)->handshake_timeout_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	if (c->tls_timer)
		evtimer_add(c->tls_timer, &tv);
	return bev;
}

/* A client SSL toward the broker: SNI, and the name or address verified. */
static SSL *upstream_ssl(struct proxy_tls *t)
{
	SSL *ssl = new_ssl(t);
	if (!ssl)
		return NULL;
	const struct ctx_info *info = info_of(ssl);
	if (info->sni[0])
		SSL_set_tlsext_host_name(ssl, info->sni);
	if (info->verify) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		if (info->sni[0])
			X509_VERIFY_PARAM_set1_host(vp, info->sni, 0);
		else if (info->ip[0])
			X509_VERIFY_PARAM_set1_ip_asc(vp, info->ip);
	}
	return ssl;
}

struct bufferevent *tls_upstream_bev(struct conn *c)
{
	SSL *ssl = upstream_ssl(c->lst->upstream_tls);
	if (!ssl)
		return NULL;
	SSL_set_app_data(ssl, c);
	struct bufferevent *bev =
		bufferevent_openssl_socket_new(c->w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

bool tls_probe(struct proxy_tls *t, int fd, int timeout_ms, char *why, size_t cap)
{
	SSL *ssl = upstream_ssl(t);
	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		snprintf(why, cap, "out of memory");
		return false;
	}
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	ERR_clear_error();
	bool ok = SSL_connect(ssl) == 1;
	if (!ok) {
		long v = SSL_get_verify_result(ssl);
		ossl_why(why, cap, "TLS");
		size_t n = strlen(why);
		if (v != X509_V_OK && n < cap)
			snprintf(why + n, cap - n, " (%s)", X509_verify_cert_error_string(v));
		else if (n == 3 && n < cap) /* nothing from OpenSSL: the socket's reason */
			snprintf(why + n, cap - n, ": %s", errno ? strerror(errno) : "handshake failed");
	} else {
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	return ok;
}

/* The certificate's subject CN, else its first DNS, e-mail or URI name. */
static void identity_of(X509 *cert, char *out, size_t cap)
{
	out[0] = 0;
	X509_NAME *subj = X509_get_subject_name(cert);
	int i = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
	if (i >= 0) {
		unsigned char *u = NULL;
		int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
		if (n > 0)
			snprintf(out, cap, "%.*s", n, (const char *)u);
		OPENSSL_free(u);
		if (out[0])
			return;
	}
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int k = 0; sans && k < sk_GENERAL_NAME_num(sans) && !out[0]; k++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, k);
		if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
			const ASN1_STRING *s = g->d.ia5;
			snprintf(out, cap, "%.*s", ASN1_STRING_length(s), (const char *)ASN1_STRING_get0_data(s));
		}
	}
	GENERAL_NAMES_free(sans);
}

static void arm(struct conn *c, int64_t in_us)
{
	/* At most an hour at a time: the wall clock is checked again then. */
	if (in_us > 3600 * 1000000LL)
		in_us = 3600 * 1000000LL;
	if (in_us < 0)
		in_us = 0;
	struct timeval tv = { (time_t)(in_us / 1000000), (suseconds_t)(in_us % 1000000) };
	evtimer_add(c->tls_timer, &tv);
}

void tls_client_ready(struct conn *c)
{
	c->tls_done = true;
	c->w->m.tls_handshakes++;
	if (c->tls_timer)
		evtimer_del(c->tls_timer);
	SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return;
	char identity[SESSION_TEXT_MAX + 1];
	identity_of(cert, identity, sizeof identity);
	engine_session_set_identity(&c->s, identity);
	struct tm tm;
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
		c->cert_not_after_us = (int64_t)timegm(&tm) * 1000000;
		if (c->tls_timer && info_of(ssl)->expiry != WW_MODE_OFF)
			arm(c, c->cert_not_after_us - proxy_now_us());
	}
}

static void fail_event(struct conn *c, const char *side, const char *reason)
{
	struct evt e = engine_evt(&c->s, EVT_TLS_HANDSHAKE_FAILED, proxy_now_us());
	e.phase = EVT_PHASE_CONNECTING;
	if (c->tls_alert)
		evt_set_detail(&e, "%s: %s; alert %s: %s (%u)", side, reason, c->tls_alert_sent ? "sent" : "received",
			       c->tls_alert, c->tls_alert_code);
	else
		evt_set_detail(&e, "%s: %s", side, reason);
	engine_emit(c->w->px->eng, &e);
}

/* What the bufferevent says went wrong: OpenSSL's reasons, else the socket's. */
static void bev_why(struct bufferevent *bev, short what, char *out, size_t cap)
{
	unsigned long e;
	size_t n = 0;
	out[0] = 0;
	while ((e = bufferevent_get_openssl_error(bev)) != 0 && n < cap) {
		const char *r = ERR_reason_error_string(e);
		if (r) /* libevent also queues entries without a reason: nothing to say */
			n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "; " : "", r);
	}
	if (!out[0]) {
		int err = EVUTIL_SOCKET_ERROR();
		snprintf(out, cap, "%s", (what & BEV_EVENT_EOF) ? "closed during the handshake"
					 : err			? evutil_socket_error_to_string(err)
								: "handshake failed");
	}
}

/* When the peer's certificate was refused, why ("certificate has expired"). */
static void verify_why(struct bufferevent *bev, char *why, size_t cap)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	size_t n = strlen(why);
	if (v != X509_V_OK && n < cap)
		snprintf(why + n, cap - n, " (%s)", X509_verify_cert_error_string(v));
}

static void end_failed(struct conn *c, const char *detail)
{
	c->w->m.tls_failed++;
	struct eng_action act;
	engine_request_close(c->w->px->eng, &c->s, EVT_R_TLS_HANDSHAKE_FAILED, detail, proxy_now_us(), &act);
	conn_close(c, ENG_CLOSE_PROXY);
}

void tls_client_failed(struct conn *c, short what)
{
	char why[200];
	bev_why(c->cbev, what, why, sizeof why);
	verify_why(c->cbev, why, sizeof why);
	fail_event(c, "client", why);
	end_failed(c, why);
}

void tls_upstream_failed(struct conn *c)
{
	char why[200];
	bev_why(c->ubev, BEV_EVENT_ERROR, why, sizeof why);
	verify_why(c->ubev, why, sizeof why);
	c->tls_alert = NULL; /* the client side's alert is not this one */
	fail_event(c, "broker", why);
	c->w->m.tls_failed++;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (c->closing)
		return;
	if (!c->tls_done) {
		char why[64];
		snprintf(why, sizeof why, "no handshake within %.1f s",
			 (double)info_of(bufferevent_openssl_get_ssl(c->cbev))->handshake_timeout_ms / 1000);
		fail_event(c, "client", why);
		end_failed(c, why);
		return;
	}
	int64_t now = proxy_now_us();
	if (now < c->cert_not_after_us) { /* woken early (the hour cap): sleep again */
		arm(c, c->cert_not_after_us - now);
		return;
	}
	char detail[256], when[EVT_TS_MAX];
	evt_format_ts(c->cert_not_after_us, when, sizeof when);
	snprintf(detail, sizeof detail, "client certificate of %s expired at %s",
		 c->s.identity ? c->s.identity : "(no subject)", when);
	if (info_of(bufferevent_openssl_get_ssl(c->cbev))->expiry == WW_MODE_ENFORCE) {
		worker_end_conn(c, EVT_R_CREDENTIALS_EXPIRED, detail);
		return;
	}
	struct evt e = engine_evt(&c->s, EVT_WOULD_DISCONNECT, now);
	e.reason = EVT_R_CREDENTIALS_EXPIRED;
	e.wire_reason = evt_reason_wire_code(EVT_R_CREDENTIALS_EXPIRED);
	e.policy = "tls";
	e.mode = EVT_MODE_OBSERVE;
	evt_set_detail(&e, "%s", detail);
	engine_emit(c->w->px->eng, &e);
}

void tls_conn_free(struct conn *c)
{
	if (c->tls_timer)
		event_free(c->tls_timer);
	c->tls_timer = NULL;
}
