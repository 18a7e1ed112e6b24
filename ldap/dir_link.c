/*
 * Connecting and binding (TLS, then a simple or SASL EXTERNAL bind), for the directory thread and
 * the feeds' threads; and the directory thread's one connection: made on demand, dropped when the
 * server is gone, made again on the next operation (at most twice a second).
 */
#include <ldap.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

/* TLS options on one handle, then a context of its own (LDAP_OPT_X_TLS_NEWCTX): libldap's global
 * context is shared by the process, and the feeds and the directory thread each set theirs. */
static int
dir_link_tls(LDAP *ld, const struct dir_config *c, char *why, size_t whylen)
{
	int demand = LDAP_OPT_X_TLS_DEMAND, server = 0, rc;

	if ((rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->ca)) != LDAP_OPT_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand)) != LDAP_OPT_SUCCESS ||
	    (c->cert != NULL &&
	    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CERTFILE, c->cert)) != LDAP_OPT_SUCCESS) ||
	    (c->key != NULL &&
	    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_KEYFILE, c->key)) != LDAP_OPT_SUCCESS) ||
	    (rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &server)) != LDAP_OPT_SUCCESS) {
		snprintf(why, whylen, "TLS settings (ca %s, cert %s): %s", c->ca,
		    c->cert ? c->cert : "none", ldap_err2string(rc));
		return -1;
	}
	return 0;
}

void
dir_link_thread_init(void)
{
	sigset_t pipe;

	/* Over TLS, libldap writes with send() without MSG_NOSIGNAL: a write to a slapd that went
	 * away would kill the whole program with SIGPIPE unless the program ignores it. Blocked in
	 * the threads that talk to the directory, it fails that write with EPIPE instead (the
	 * connection is then made again). */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
}

int
dir_link_open(const struct dir_config *c, int timeout_ms, LDAP **out, char *why, size_t whylen)
{
	struct timeval net = { 2, 0 }, op = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct berval cred;
	int version = LDAP_VERSION3, rc;
	bool ldaps = strncasecmp(c->uri, "ldaps://", 8) == 0;
	const char *who = c->bind_dn ? c->bind_dn : "anonymous";
	LDAP *ld = NULL;

	*out = NULL;
	if ((rc = ldap_initialize(&ld, c->uri)) != LDAP_SUCCESS) {
		snprintf(why, whylen, "bad uri: %s", ldap_err2string(rc));
		return rc;
	}
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &net);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if ((c->ca != NULL || ldaps) && dir_link_tls(ld, c, why, whylen) != 0) {
		ldap_unbind_ext_s(ld, NULL, NULL);
		return LDAP_LOCAL_ERROR;
	}
	if (c->starttls && !ldaps && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		char *diag = NULL;
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
		snprintf(why, whylen, "StartTLS: %s%s%s", ldap_err2string(rc), diag ? ": " : "",
		    diag ? diag : "");
		ldap_memfree(diag);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return rc;
	}
	if (c->cert != NULL) {
		/* slapd maps the certificate's subject to binddn (authz-regexp). An empty initial
		 * response, not none: without one, slapd's SASL asks for a second step. */
		cred.bv_val = "";
		cred.bv_len = 0;
		rc = ldap_sasl_bind_s(ld, NULL, "EXTERNAL", &cred, NULL, NULL, NULL);
		who = c->cert;
	} else {
		cred.bv_val = c->password ? c->password : "";
		cred.bv_len = strlen(cred.bv_val);
		rc = ldap_sasl_bind_s(ld, c->bind_dn ? c->bind_dn : "", LDAP_SASL_SIMPLE, &cred,
		    NULL, NULL, NULL);
	}
	if (rc != LDAP_SUCCESS) {
		char *diag = NULL;
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
		snprintf(why, whylen, "bind as %s: %s%s%s", who, ldap_err2string(rc),
		    diag && *diag ? ": " : "", diag && *diag ? diag : "");
		ldap_memfree(diag);
		ldap_unbind_ext_s(ld, NULL, NULL);
		return rc;
	}
	*out = ld;
	return LDAP_SUCCESS;
}

/* ---- the directory thread's connection ---- */

void
dir_link_drop(struct dir *d, const char *why)
{
	if (d->ld != NULL) {
		ldap_unbind_ext_s(d->ld, NULL, NULL);
		d->ld = NULL;
		log_warn("directory %s: %s; will reconnect", d->link.uri, why);
	}
	snprintf(d->down_reason, sizeof d->down_reason, "%s", why);
	atomic_store(&d->connected, false);
}

/* The outcome of one libldap call: sets r, and drops the connection when the server is gone. */
enum dir_status
dir_link_outcome(struct dir *d, int rc, const char *what, struct dir_result *r)
{
	enum dir_status s = dir_result_status(rc);

	if (s == DIR_OK) {
		r->status = DIR_OK;
		return s;
	}
	dir_result_set(r, s, "%s: %s (%s)", what, dir_status_name(s), ldap_err2string(rc));
	if (s == DIR_DOWN) {
		char why[160];
		snprintf(why, sizeof why, "%s: %s", what, ldap_err2string(rc));
		dir_link_drop(d, why);
		dir_result_set(r, s, "directory unavailable: %s: %s", d->link.uri, why);
	}
	return s;
}

bool
dir_link_connect(struct dir *d)
{
	uint64_t now = time_mono_ms();
	char why[200];

	if (d->ld != NULL)
		return true;
	/* After a failed attempt, try again at most twice a second: a down directory costs a
	 * queue of operations one connect each, not one connect per operation. */
	if (d->last_failure_ms != 0 && now - d->last_failure_ms < 500)
		return false;
	d->last_failure_ms = now;
	if (dir_link_open(&d->link, d->op_timeout_ms, &d->ld, why, sizeof why) != LDAP_SUCCESS) {
		d->ld = NULL;
		snprintf(d->down_reason, sizeof d->down_reason, "%s", why);
		return false;
	}
	d->last_failure_ms = 0;
	if (!atomic_load(&d->connected))
		log_info("directory %s: connected as %s%s", d->link.uri,
		    d->link.bind_dn ? d->link.bind_dn : "anonymous",
		    d->link.cert ? " (TLS certificate)" : d->link.ca ? " (TLS)" : "");
	atomic_store(&d->connected, true);
	return true;
}

bool
dir_link_ready(struct dir *d, struct dir_result *r)
{
	if (dir_link_connect(d))
		return true;
	dir_result_set(r, DIR_DOWN, "directory unavailable: %s: %s", d->link.uri, d->down_reason);
	return false;
}
