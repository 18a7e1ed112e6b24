/*
 * The directory thread. The libevent loop only queues operations (dir_op_submit) and receives
 * answers through an eventfd; every libldap call, blocking as they are, happens here. A connection
 * that fails or times out is dropped and made again on the next operation (at most twice a second),
 * and operations that waited longer than the operation timeout fail with DIR_DOWN, so a frozen or
 * stopped slapd never hangs a caller.
 */
#include <errno.h>
#include <event2/event.h>
#include <ldap.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

struct dir {
	struct event_base *base;
	struct event	  *ev;
	int		   efd;
	char		  *suffix;
	struct dir_config  link;	/* how to connect and bind (a copy) */
	int		   op_timeout_ms, batch_max;
	bool		   transactions;

	pthread_t	   thread;
	pthread_mutex_t	   lock;
	pthread_cond_t	   cond;
	struct dir_op	  *todo, **todo_tail;	/* loop -> thread */
	struct dir_op	  *done, **done_tail;	/* thread -> loop */
	atomic_size_t	   queued;
	bool		   stop;

	/* Directory thread only. */
	LDAP		  *ld;
	uint64_t	   last_failure_ms;
	char		   down_reason[200];
	atomic_bool	   connected;
	bool		   resending;	/* dir_run_one: the operation is sent again */
};

static const char *dir_status_names[] = {
	"ok", "not found", "already exists", "directory unavailable", "rejected by schema",
	"lost a compare-and-swap", "denied", "bound to another CTS", "error",
};

const char *
dir_status_name(enum dir_status s)
{
	return (unsigned)s < GCA_NITEMS(dir_status_names) ? dir_status_names[s] : "?";
}

const char *
dir_base(const struct dir *d)
{
	return d->suffix;
}

void
dir_result_set(struct dir_result *r, enum dir_status s, const char *fmt, ...)
{
	va_list ap;

	r->status = s;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
}

/* ---- configuration ---- */

int
dir_config_load(struct dir_config *c, const char *path, char *err, size_t errlen)
{
	struct config cf;
	const char *keys[] = { "uri", "binddn", "password", "base", "ca", "cert", "key" };
	char **dst[] = { &c->uri, &c->bind_dn, &c->password, &c->base, &c->ca, &c->cert, &c->key };
	const char *missing = NULL;

	memset(c, 0, sizeof *c);
	if (config_load(&cf, path, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < GCA_NITEMS(keys); i++) {
		const char *v = config_get(&cf, keys[i]);
		if (v != NULL)
			*dst[i] = xstrdup(v);
	}
	if (config_get_bool(&cf, "starttls", false, &c->starttls, err, errlen) != 0)
		goto fail;
	if ((c->cert == NULL) != (c->key == NULL)) {
		snprintf(err, errlen, "%s: \"cert\" and \"key\" go together", path);
		goto fail;
	}
	if (c->uri == NULL)
		missing = "uri";
	else if (c->bind_dn == NULL)
		missing = "binddn";
	else if (c->base == NULL)
		missing = "base";
	else if (c->password == NULL && (c->cert == NULL || c->key == NULL))
		missing = "password";	/* a certificate bind needs none */
	if (missing != NULL) {
		snprintf(err, errlen, "%s: no \"%s\" line", path, missing);
		goto fail;
	}
	/* A client certificate or a password sent in the clear is refused: say so at start. */
	if ((c->cert != NULL || c->starttls) && c->ca == NULL) {
		snprintf(err, errlen, "%s: TLS to the directory needs a \"ca\" line", path);
		goto fail;
	}
	config_free(&cf);
	return 0;
fail:
	config_free(&cf);
	dir_config_free(c);
	return -1;
}

static char *
dir_strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

int
dir_config_copy(struct dir_config *dst, const struct dir_config *src)
{
	*dst = *src;
	dst->uri = dir_strdup_or_null(src->uri);
	dst->bind_dn = dir_strdup_or_null(src->bind_dn);
	dst->password = dir_strdup_or_null(src->password);
	dst->base = dir_strdup_or_null(src->base);
	dst->ca = dir_strdup_or_null(src->ca);
	dst->cert = dir_strdup_or_null(src->cert);
	dst->key = dir_strdup_or_null(src->key);
	return 0;
}

void
dir_config_free(struct dir_config *c)
{
	free(c->uri);
	free(c->bind_dn);
	free(c->password);
	free(c->base);
	free(c->ca);
	free(c->cert);
	free(c->key);
	memset(c, 0, sizeof *c);
}

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

/* ---- the connection (directory thread) ---- */

static enum dir_status
dir_status_of(int rc)
{
	switch (rc) {
	case LDAP_SUCCESS:
	case LDAP_TXN_SPECIFY_OKAY:
	case LDAP_COMPARE_TRUE:
		return DIR_OK;
	case LDAP_NO_SUCH_OBJECT:
		return DIR_NOT_FOUND;
	case LDAP_ALREADY_EXISTS:
		return DIR_EXISTS;
	case LDAP_SERVER_DOWN:
	case LDAP_TIMEOUT:
	case LDAP_CONNECT_ERROR:
	case LDAP_UNAVAILABLE:
	case LDAP_BUSY:
	case LDAP_LOCAL_ERROR:
		return DIR_DOWN;
	case LDAP_OBJECT_CLASS_VIOLATION:
	case LDAP_UNDEFINED_TYPE:
	case LDAP_INVALID_SYNTAX:
	case LDAP_CONSTRAINT_VIOLATION:
	case LDAP_NAMING_VIOLATION:
	case LDAP_INVALID_DN_SYNTAX:
		return DIR_SCHEMA;
	case LDAP_NO_SUCH_ATTRIBUTE:
	case LDAP_ASSERTION_FAILED:
	case LDAP_TYPE_OR_VALUE_EXISTS:
		return DIR_CAS_LOST;
	case LDAP_INSUFFICIENT_ACCESS:
	case LDAP_STRONG_AUTH_REQUIRED:
	case LDAP_INVALID_CREDENTIALS:
	case LDAP_INAPPROPRIATE_AUTH:
		return DIR_DENIED;
	default:
		return DIR_ERROR;
	}
}

static void
dir_disconnect(struct dir *d, const char *why)
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
static enum dir_status
dir_outcome(struct dir *d, int rc, const char *what, struct dir_result *r)
{
	enum dir_status s = dir_status_of(rc);

	if (s == DIR_OK) {
		r->status = DIR_OK;
		return s;
	}
	dir_result_set(r, s, "%s: %s (%s)", what, dir_status_name(s), ldap_err2string(rc));
	if (s == DIR_DOWN) {
		char why[160];
		snprintf(why, sizeof why, "%s: %s", what, ldap_err2string(rc));
		dir_disconnect(d, why);
		dir_result_set(r, s, "directory unavailable: %s: %s", d->link.uri, why);
	}
	return s;
}

static bool
dir_connect(struct dir *d)
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

/* ---- blocking helpers (directory thread) ---- */

static bool
dir_ready(struct dir *d, struct dir_result *r)
{
	if (dir_connect(d))
		return true;
	dir_result_set(r, DIR_DOWN, "directory unavailable: %s: %s", d->link.uri, d->down_reason);
	return false;
}

static void
dir_txn_control(void *txn, LDAPControl *c, LDAPControl **list)
{
	list[0] = NULL;
	if (txn == NULL)
		return;
	c->ldctl_oid = LDAP_CONTROL_TXN_SPEC;
	c->ldctl_value = *(struct berval *)txn;
	c->ldctl_iscritical = 1;
	list[0] = c;
	list[1] = NULL;
}

static void
dir_result_add_entry(struct dir *d, LDAPMessage *m, struct dir_result *r)
{
	struct dir_entry *e = dir_entry_from_ldap(d->ld, m);

	r->entries = xreallocarray(r->entries, r->nentries + 1, sizeof *r->entries);
	r->entries[r->nentries++] = *e;
	free(e);
}

enum dir_status
dir_do_search(struct dir *d, const char *base, int scope, const char *filter, int limit,
    struct dir_result *r)
{
	struct timeval tv = { d->op_timeout_ms / 1000, (d->op_timeout_ms % 1000) * 1000 };
	LDAPMessage *res = NULL;
	int rc;

	if (!dir_ready(d, r))
		return r->status;
	rc = ldap_search_ext_s(d->ld, base, scope, filter, NULL, 0, NULL, NULL, &tv,
	    limit > 0 ? limit : 0, &res);
	if (res != NULL) {
		for (LDAPMessage *m = ldap_first_entry(d->ld, res); m != NULL;
		    m = ldap_next_entry(d->ld, m))
			dir_result_add_entry(d, m, r);
		ldap_msgfree(res);
	}
	if (rc == LDAP_SIZELIMIT_EXCEEDED)
		rc = LDAP_SUCCESS;	/* the caller asked for at most `limit` */
	return dir_outcome(d, rc, "search", r);
}

static LDAPMod **
dir_mods(const struct dir_entry *e, int op, size_t extra)
{
	LDAPMod **mods = xcalloc(e->nattrs + extra + 1, sizeof *mods);
	size_t n = 0;

	for (size_t i = 0; i < e->nattrs; i++) {
		/* An attribute with no value: replacing deletes it; an add has nothing to add. */
		if (e->attrs[i].nvals == 0 && op == LDAP_MOD_ADD)
			continue;
		mods[n] = xcalloc(1, sizeof **mods);
		mods[n]->mod_op = op;
		mods[n]->mod_type = e->attrs[i].name;
		mods[n]->mod_values = xcalloc(e->attrs[i].nvals + 1, sizeof(char *));
		for (size_t j = 0; j < e->attrs[i].nvals; j++)
			mods[n]->mod_values[j] = e->attrs[i].vals[j];
		n++;
	}
	return mods;
}

static void
dir_mods_free(LDAPMod **mods)
{
	for (size_t i = 0; mods[i] != NULL; i++) {
		free(mods[i]->mod_values);
		free(mods[i]);
	}
	free(mods);
}

enum dir_status
dir_do_add(struct dir *d, const struct dir_entry *e, void *txn, struct dir_result *r)
{
	LDAPControl c, *ctrls[2];
	LDAPMod **mods;
	int rc;

	if (!dir_ready(d, r))
		return r->status;
	dir_txn_control(txn, &c, ctrls);
	mods = dir_mods(e, LDAP_MOD_ADD, 0);
	rc = ldap_add_ext_s(d->ld, e->dn, mods, ctrls, NULL);
	dir_mods_free(mods);
	return dir_outcome(d, rc, "add", r);
}

enum dir_status
dir_do_replace(struct dir *d, const struct dir_entry *e, struct dir_result *r)
{
	LDAPMod **mods;
	int rc;

	if (!dir_ready(d, r))
		return r->status;
	mods = dir_mods(e, LDAP_MOD_REPLACE, 0);
	rc = ldap_modify_ext_s(d->ld, e->dn, mods, NULL, NULL);
	dir_mods_free(mods);
	return dir_outcome(d, rc, "modify", r);
}

/*
 * Compare-and-swap in one modify: delete the old value (fails with noSuchAttribute if someone
 * changed it), add the new one; `also` replaces more attributes in the same atomic modify.
 * old == NULL means the attribute must have no value: adding to a single-valued attribute that
 * has one fails.
 */
static bool
dir_attr_has(const struct dir_attr *a, const char *v)
{
	for (size_t i = 0; a != NULL && i < a->nvals; i++)
		if (strcmp(a->vals[i], v) == 0)
			return true;
	return false;
}

/*
 * A compare-and-swap sent again after its connection dropped lost (its old value is not there):
 * if the first sending committed before the drop, the entry is exactly as the swap makes it: new
 * there (and old gone, unless the swap only asserts it: old == new), every attribute of also as it
 * sets it. Then the swap is done, not lost to someone else. Read back here, on the new connection.
 */
static bool
dir_cas_in_place(struct dir *d, const char *dn, const char *attr, const char *old,
    const char *new_, const struct dir_entry *also)
{
	struct dir_result got = { 0 };
	const struct dir_entry *e;
	bool same = false;

	if (new_ == NULL && old == NULL)
		return false;
	if (dir_do_search(d, dn, LDAP_SCOPE_BASE, "(objectClass=*)", 1, &got) != DIR_OK ||
	    got.nentries != 1)
		goto out;
	e = &got.entries[0];
	if (new_ != NULL && !dir_attr_has(dir_entry_attr(e, attr), new_))
		goto out;
	if (old != NULL && (new_ == NULL || strcmp(old, new_) != 0) &&
	    dir_attr_has(dir_entry_attr(e, attr), old))
		goto out;
	if (old != NULL && new_ != NULL && strcmp(old, new_) == 0)
		goto out;	/* a bare assertion that failed: nothing of ours to find */
	for (size_t i = 0; also != NULL && i < also->nattrs; i++) {
		const struct dir_attr *want = &also->attrs[i], *a = dir_entry_attr(e, want->name);
		if ((a ? a->nvals : 0) != want->nvals)
			goto out;
		for (size_t j = 0; j < want->nvals; j++)
			if (!dir_attr_has(a, want->vals[j]))
				goto out;
	}
	same = true;
out:
	for (size_t i = 0; i < got.nentries; i++)
		dir_entry_clear(&got.entries[i]);
	free(got.entries);
	return same;
}

enum dir_status
dir_do_cas(struct dir *d, const char *dn, const char *attr, const char *old, const char *new_,
    const struct dir_entry *also, void *txn, struct dir_result *r)
{
	struct dir_entry none = { 0 };
	LDAPControl c, *ctrls[2];
	LDAPMod **mods, del, add;
	char *delv[2] = { (char *)old, NULL }, *addv[2] = { (char *)new_, NULL };
	size_t n;
	int rc;

	if (!dir_ready(d, r))
		return r->status;
	mods = dir_mods(also ? also : &none, LDAP_MOD_REPLACE, 2);
	n = also ? also->nattrs : 0;
	del.mod_op = LDAP_MOD_DELETE;
	del.mod_type = (char *)attr;
	del.mod_values = delv;
	add.mod_op = LDAP_MOD_ADD;
	add.mod_type = (char *)attr;
	add.mod_values = addv;
	if (old != NULL)
		mods[n++] = &del;
	if (new_ != NULL)	/* NULL: only remove old (a value of a multi-valued attribute) */
		mods[n++] = &add;
	dir_txn_control(txn, &c, ctrls);
	rc = ldap_modify_ext_s(d->ld, dn, mods, ctrls, NULL);
	mods[also ? also->nattrs : 0] = NULL;	/* del/add live on this stack */
	dir_mods_free(mods);
	if (dir_outcome(d, rc, "compare-and-swap", r) == DIR_CAS_LOST && d->resending &&
	    txn == NULL && dir_cas_in_place(d, dn, attr, old, new_, also)) {
		log_info("directory: compare-and-swap of %s on %s, sent again after the connection "
		    "dropped, was already made: done", attr, dn);
		dir_result_set(r, DIR_OK, "%s", "");
	}
	return r->status;
}

enum dir_status
dir_do_cas_resent(struct dir *d, const char *dn, const char *attr, const char *old,
    const char *new_, const struct dir_entry *also, struct dir_result *r)
{
	bool was = d->resending;

	d->resending = true;
	dir_do_cas(d, dn, attr, old, new_, also, NULL, r);
	d->resending = was;
	return r->status;
}

/*
 * One atomic modify: the values in del deleted (noSuchAttribute, DIR_CAS_LOST, if one is not
 * there: the assertions of a compare-and-swap), those in add added, those in repl replaced.
 * Each may be NULL.
 */
enum dir_status
dir_do_modify(struct dir *d, const char *dn, const struct dir_entry *del,
    const struct dir_entry *add, const struct dir_entry *repl, struct dir_result *r)
{
	const struct dir_entry *parts[3] = { del, add, repl };
	const int ops[3] = { LDAP_MOD_DELETE, LDAP_MOD_ADD, LDAP_MOD_REPLACE };
	LDAPMod **all, **one;
	size_t n = 0, cap = 1;
	int rc;

	if (!dir_ready(d, r))
		return r->status;
	for (int i = 0; i < 3; i++)
		cap += parts[i] ? parts[i]->nattrs : 0;
	all = xcalloc(cap, sizeof *all);
	for (int i = 0; i < 3; i++) {
		if (parts[i] == NULL)
			continue;
		one = dir_mods(parts[i], ops[i] == LDAP_MOD_DELETE ? LDAP_MOD_ADD : ops[i], 0);
		for (size_t j = 0; one[j] != NULL; j++) {
			one[j]->mod_op = ops[i];	/* built as adds: attributes of no value left out */
			all[n++] = one[j];
		}
		free(one);
	}
	rc = ldap_modify_ext_s(d->ld, dn, all, NULL, NULL);
	dir_mods_free(all);
	return dir_outcome(d, rc, "compare-and-swap", r);
}

enum dir_status
dir_do_delete(struct dir *d, const char *dn, struct dir_result *r)
{
	if (!dir_ready(d, r))
		return r->status;
	return dir_outcome(d, ldap_delete_ext_s(d->ld, dn, NULL, NULL), "delete", r);
}

bool
dir_transactions(struct dir *d)
{
	return d->transactions;
}

void *
dir_txn_begin(struct dir *d, struct dir_result *r)
{
	struct berval *txnid = NULL;
	int rc;

	if (!dir_ready(d, r))
		return NULL;
	rc = ldap_txn_start_s(d->ld, NULL, NULL, &txnid);
	if (dir_outcome(d, rc, "transaction start", r) != DIR_OK) {
		ber_bvfree(txnid);
		return NULL;
	}
	return txnid;
}

enum dir_status
dir_txn_end(struct dir *d, void *txn, bool commit, struct dir_result *r)
{
	int rc, failed = 0;

	if (d->ld == NULL) {
		ber_bvfree(txn);
		dir_result_set(r, DIR_DOWN, "directory unavailable: %s: %s", d->link.uri, d->down_reason);
		return DIR_DOWN;
	}
	rc = ldap_txn_end_s(d->ld, commit, txn, NULL, NULL, &failed);
	ber_bvfree(txn);
	return dir_outcome(d, rc, commit ? "transaction commit" : "transaction abort", r);
}

/* ---- the queue ---- */

struct dir_op *
dir_op_new(dir_op_fn fn, dir_cb cb, void *arg)
{
	struct dir_op *op = xcalloc(1, sizeof *op);

	op->fn = fn;
	op->cb = cb;
	op->arg = arg;
	return op;
}

const char *
dir_op_keep(struct dir_op *op, char *s)
{
	if (s == NULL)
		return NULL;
	if (op->ncopies == GCA_NITEMS(op->copies))
		log_fatal("directory: an operation carries more than %zu strings",
		    GCA_NITEMS(op->copies));
	op->copies[op->ncopies++] = s;
	return s;
}

const char *
dir_op_strdup(struct dir_op *op, const char *s)
{
	return dir_op_keep(op, s != NULL ? xstrdup(s) : NULL);
}

static void
dir_op_free(struct dir_op *op)
{
	for (size_t i = 0; i < op->ncopies; i++)
		free(op->copies[i]);
	dir_entry_free(op->entry);
	dir_entry_free(op->view);
	for (size_t i = 0; i < op->res.nentries; i++)
		dir_entry_clear(&op->res.entries[i]);
	free(op->res.entries);
	free(op);
}

void
dir_op_submit(struct dir *d, struct dir_op *op)
{
	op->queued_ms = time_mono_ms();
	op->next = NULL;
	pthread_mutex_lock(&d->lock);
	*d->todo_tail = op;
	d->todo_tail = &op->next;
	atomic_fetch_add(&d->queued, 1);
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* Directory thread: hand an answered operation back to the loop. */
static void
dir_answer(struct dir *d, struct dir_op *op)
{
	uint64_t one = 1;

	op->next = NULL;
	pthread_mutex_lock(&d->lock);
	*d->done_tail = op;
	d->done_tail = &op->next;
	pthread_mutex_unlock(&d->lock);
	if (write(d->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_error("directory: eventfd write: %s", strerror(errno));
}

/* Loop thread: run the callbacks of answered operations. */
static void
dir_on_answers(evutil_socket_t fd, short what, void *arg)
{
	struct dir *d = arg;
	struct dir_op *op, *next;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		log_error("directory: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&d->lock);
	op = d->done;
	d->done = NULL;
	d->done_tail = &d->done;
	pthread_mutex_unlock(&d->lock);
	for (; op != NULL; op = next) {
		next = op->next;
		atomic_fetch_sub(&d->queued, 1);
		if (op->cb != NULL)
			op->cb(&op->res, op->arg);
		dir_op_free(op);
	}
}

/*
 * A connection made before a slapd restart only fails when it is next used. So an operation that
 * failed with DIR_DOWN on such an old connection is run once more on a new one; an operation that
 * failed on a fresh connection has its answer. A write may have committed before the connection
 * dropped: sent again, a compare-and-swap reads back whether it is already made (dir_cas_in_place).
 */
static void
dir_run_one(struct dir *d, struct dir_op *op)
{
	bool fresh = d->ld == NULL;

	op->fn(d, op);
	if (op->res.status == DIR_DOWN && !fresh && dir_connect(d)) {
		for (size_t i = 0; i < op->res.nentries; i++)
			dir_entry_clear(&op->res.entries[i]);
		free(op->res.entries);
		memset(&op->res, 0, sizeof op->res);
		/* the first sending may have committed before the drop: a compare-and-swap that then
		 * finds its own change reads it back as done (dir_do_cas), not as lost to someone else */
		d->resending = true;
		op->fn(d, op);
		d->resending = false;
	}
	if (op->view != NULL && op->res.status == DIR_OK)
		dir_view_run(d, op);
}

static void
dir_run_records(struct dir *d, struct dir_op **batch, size_t n)
{
	bool fresh = d->ld == NULL, again = false;

	dir_records_run(d, batch, n);
	for (size_t i = 0; i < n; i++)
		again |= batch[i]->res.status == DIR_DOWN;
	if (!again || fresh || !dir_connect(d))
		return;
	for (size_t i = 0; i < n; i++)
		memset(&batch[i]->res, 0, sizeof batch[i]->res);
	dir_records_run(d, batch, n);
}

static void
dir_run(struct dir *d, struct dir_op *list)
{
	struct dir_op **batch = xcalloc((size_t)d->batch_max, sizeof *batch);
	size_t nbatch = 0;
	uint64_t now = time_mono_ms();

	while (list != NULL) {
		struct dir_op *op = list;

		list = op->next;
		/* An operation that waited too long fails now: its caller must not hang. */
		if (now - op->queued_ms > (uint64_t)d->op_timeout_ms) {
			dir_result_set(&op->res, DIR_DOWN,
			    "directory unavailable: no answer from %s within %d ms%s%s", d->link.uri,
			    d->op_timeout_ms, d->down_reason[0] ? ": " : "", d->down_reason);
			dir_answer(d, op);
			continue;
		}
		if (op->fn == NULL) {
			batch[nbatch++] = op;
			if (nbatch == (size_t)d->batch_max || list == NULL || list->fn != NULL) {
				dir_run_records(d, batch, nbatch);
				for (size_t i = 0; i < nbatch; i++)
					dir_answer(d, batch[i]);
				nbatch = 0;
				now = time_mono_ms();
			}
			continue;
		}
		dir_run_one(d, op);
		dir_answer(d, op);
		now = time_mono_ms();
	}
	free(batch);
}

static void *
dir_thread(void *arg)
{
	struct dir *d = arg;

	dir_link_thread_init();
	for (;;) {
		struct dir_op *list;

		pthread_mutex_lock(&d->lock);
		while (d->todo == NULL && !d->stop)
			pthread_cond_wait(&d->cond, &d->lock);
		if (d->stop) {
			pthread_mutex_unlock(&d->lock);
			break;
		}
		list = d->todo;
		d->todo = NULL;
		d->todo_tail = &d->todo;
		pthread_mutex_unlock(&d->lock);
		dir_run(d, list);
	}
	dir_disconnect(d, "closed");
	return NULL;
}

struct dir *
dir_open(struct event_base *base, const struct dir_config *c, char *err, size_t errlen)
{
	struct dir *d = xcalloc(1, sizeof *d);

	d->base = base;
	d->suffix = xstrdup(c->base ? c->base : "o=gca");
	dir_config_copy(&d->link, c);
	d->op_timeout_ms = c->op_timeout_ms > 0 ? c->op_timeout_ms : 10000;
	d->batch_max = c->batch_max > 0 ? c->batch_max : 256;
	d->transactions = c->transactions;
	d->todo_tail = &d->todo;
	d->done_tail = &d->done;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	d->ev = event_new(base, d->efd, EV_READ | EV_PERSIST, dir_on_answers, d);
	if (d->ev == NULL || event_add(d->ev, NULL) != 0) {
		snprintf(err, errlen, "cannot watch the directory's eventfd");
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, dir_thread, d) != 0) {
		snprintf(err, errlen, "cannot start the directory thread");
		goto fail;
	}
	return d;
fail:
	if (d->ev != NULL)
		event_free(d->ev);
	if (d->efd >= 0)
		close(d->efd);
	free(d->suffix);
	dir_config_free(&d->link);
	free(d);
	return NULL;
}

void
dir_close(struct dir *d)
{
	struct dir_op *op, *next;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	for (op = d->todo; op != NULL; op = next) {
		next = op->next;
		dir_op_free(op);
	}
	for (op = d->done; op != NULL; op = next) {
		next = op->next;
		dir_op_free(op);
	}
	event_free(d->ev);
	close(d->efd);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d->suffix);
	dir_config_free(&d->link);
	free(d);
}

size_t
dir_queued(struct dir *d)
{
	return atomic_load(&d->queued);
}

bool
dir_connected(struct dir *d)
{
	return atomic_load(&d->connected);
}
