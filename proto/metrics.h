/*
 * proto/metrics.c: GET /metrics over plain HTTP (libevent's evhttp), for Prometheus and the like
 * (docs/METRICS.md). Loopback by default: the text names no secret, but it is no one else's
 * business either; an operator who scrapes from another host says so in metrics_listen.
 *
 * Limits as the TLS listener's (docs/ARCHITECTURE.md, "Limits"): at most METRICS_HTTP_CONNECTIONS
 * connections at once (accepting stops until one closes), accepting pauses at EMFILE, a connection
 * idle or slow for METRICS_HTTP_TIMEOUT_S seconds is closed, headers and bodies are bounded.
 */
#ifndef GCA_PROTO_METRICS_H
#define GCA_PROTO_METRICS_H

#include <stddef.h>

#define METRICS_HTTP_CONNECTIONS	16
#define METRICS_HTTP_TIMEOUT_S		10

struct event_base;
struct metrics_http;

/* Listens on listen ("host:port"; port 0 picks one). NULL with err ("cannot listen on ...") if the
 * address is not one or cannot be bound. */
struct metrics_http *metrics_http_new(struct event_base *base, const char *listen, char *err,
	size_t errlen);
int  metrics_http_port(const struct metrics_http *m);
/* "http://host:port/metrics" */
void metrics_http_url(const struct metrics_http *m, char *out, size_t len);
void metrics_http_free(struct metrics_http *m);

/* A daemon's metrics, once it defined its families: on_scrape(arg) before each scrape, served on
 * listen (NULL or "": not served, *out NULL) and its URL logged. 0, or -1 with err. */
int  metrics_serve(struct event_base *base, const char *listen, void (*on_scrape)(void *arg),
	void *arg, struct metrics_http **out, char *err, size_t errlen);
/* Stops serving *m (NULL: none) and forgets every family, so the daemon can define them again. */
void metrics_stop(struct metrics_http **m);

/* The handshake refusals the TLS servers count (conn.c, server.c), by reason. */
void metrics_tls_define(void);
void metrics_tls_refused(const char *reason);

#endif
