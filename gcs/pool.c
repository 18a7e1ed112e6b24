/*
 * The GCS's pooled connections to CTSes (do_checkpoint in router.c, job_moved in moved.c, image_gc
 * in grant.c): one mTLS client per CTS, kept on its registry entry (registry.c frees it when the
 * CTS moves or goes), made when first needed, counting the times it came up so a route can tell
 * a request that reached the CTS from one that never did.
 */
#include <stdio.h>

#include "common/common.h"
#include "gcs/gcs.h"

/* A connection to c came up: counted, so a route (router.c) knows whether its request could
 * have reached the CTS. */
static void
pool_on_state(bool up, const char *why, void *arg)
{
	struct gcs_cts *c = arg;

	(void)why;
	if (up)
		c->conn_ups++;
}

/* c's pooled connection, made when first needed: 0, or -1 and why in err. The GCS closes it
 * after a minute without a request: the pooled side closes first (the CTS never cuts a GCS's
 * connection for being quiet either). */
#define POOL_IDLE_MS 60000
int
pool_client(struct gcs *g, struct gcs_cts *c, char *err, size_t errlen)
{
	/* the client's own limit only frees what a CTS never answers: routes have theirs */
	struct proto_client_config cfg = { .endpoint = c->endpoint, .expect_role = "cts",
		.expect_name = c->name, .timeout_ms = g->request_timeout_ms + 1000,
		.on_state = pool_on_state, .arg = c, .idle_close_ms = POOL_IDLE_MS };

	if (c->client != NULL)
		return 0;
	if (c->endpoint == NULL) {
		snprintf(err, errlen, "no endpoint known for CTS %s", c->name);
		return -1;
	}
	return (c->client = proto_client_new(g->base, &g->tls, &cfg, err, errlen)) == NULL ? -1 : 0;
}
