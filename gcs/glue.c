/*
 * The GLUE 2.0 view of the site (docs/GLUE.md): what the grid's own brokers and information systems
 * (BDII, DIRAC's Glue2.py) read, under the suffix gca-site makes with Debian's GLUE20.schema. One
 * GLUE2Service for the site's checkpoint service; under it one GLUE2Endpoint per GCS and one per
 * CTS registered here, in the BDII layout:
 *
 *   GLUE2ServiceID=urn:gca:<domain>:checkpoint,GLUE2GroupID=resource,o=glue
 *     GLUE2EndpointID=urn:gca:<domain>:gcs:<name>,...	a GCS
 *     GLUE2EndpointID=urn:gca:<domain>:cts:<name>,...	a CTS
 *
 * GLUE2Endpoint is a structural class, as is gcaTranslationService, so the view cannot be an
 * auxiliary class on the registry's own entry: it is an entry of its own, in another suffix. A
 * CTS's view is written with every change of its gcaStatus, right after it, in the same
 * directory-thread operation (dir_cts_status_if_view): no other write of this GCS comes between,
 * and a status write that fails (a lost compare-and-swap) changes neither.
 *
 * Every entry carries GLUE2EntityCreationTime and GLUE2EntityValidity: an entry nobody rewrote
 * within its validity is stale for a reader (a GCS that died). So this GCS rewrites its own entry,
 * the service and the entries of the CTSes that are up here every validity/2 (default 600 s: one
 * write per entry every 5 minutes); heartbeats themselves stay in memory, never a directory
 * write (docs/ARCHITECTURE.md, "CTS status"). A view that could not be written (the directory
 * was down between the two writes, or a site made before the GLUE suffix) is written again at the
 * next tick.
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "gcs/gcs.h"

#define GLUE_DN_MAX 2048

/* The CA's subject as grid information systems write it (OpenSSL's one-line form, /C=../CN=..). */
static char *
glue_cert_name(const char *path, bool issuer, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	char *s, *out;

	if (f == NULL) {
		snprintf(err, errlen, "glue: cannot read %s", path);
		return NULL;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL) {
		snprintf(err, errlen, "glue: %s holds no PEM certificate", path);
		return NULL;
	}
	s = X509_NAME_oneline(issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x), NULL, 0);
	X509_free(x);
	if (s == NULL) {
		snprintf(err, errlen, "glue: cannot name %s's %s", path,
		    issuer ? "issuer" : "subject");
		return NULL;
	}
	out = xstrdup(s);
	OPENSSL_free(s);
	return out;
}

static void
glue_id(const struct gcs *g, const char *kind, const char *name, char *out, size_t outlen)
{
	if (name == NULL)
		snprintf(out, outlen, "urn:gca:%s:%s", g->glue_domain, kind);
	else
		snprintf(out, outlen, "urn:gca:%s:%s:%s", g->glue_domain, kind, name);
}

/* The DN of the service (kind NULL) or of an endpoint; -1 when a name makes no DN. */
static int
glue_dn(const struct gcs *g, const char *kind, const char *name, char *out, size_t outlen)
{
	char id[600], sid[600], esid[GLUE_DN_MAX / 2], eid[GLUE_DN_MAX / 2];
	int n;

	glue_id(g, "checkpoint", NULL, sid, sizeof sid);
	if (dir_rdn_escape(sid, esid, sizeof esid) != 0)
		return -1;
	if (kind == NULL) {
		n = snprintf(out, outlen, "GLUE2ServiceID=%s,%s", esid, g->glue_base);
	} else {
		glue_id(g, kind, name, id, sizeof id);
		if (dir_rdn_escape(id, eid, sizeof eid) != 0)
			return -1;
		n = snprintf(out, outlen, "GLUE2EndpointID=%s,GLUE2ServiceID=%s,%s", eid, esid,
		    g->glue_base);
	}
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* GLUE2EntityCreationTime (ISO 8601, UTC) and GLUE2EntityValidity (seconds). */
static void
glue_add_times(const struct gcs *g, struct dir_entry *e)
{
	time_t now = time(NULL);
	struct tm tm;
	char when[32];

	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	dir_entry_add(e, "GLUE2EntityCreationTime", when);
	dir_entry_addf(e, "GLUE2EntityValidity", "%d", g->glue_validity_s);
}

static struct dir_entry *
glue_service_entry(struct gcs *g)
{
	char dn[GLUE_DN_MAX], id[600];
	struct dir_entry *e;

	if (glue_dn(g, NULL, NULL, dn, sizeof dn) != 0)
		return NULL;
	glue_id(g, "checkpoint", NULL, id, sizeof id);
	e = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "GLUE2Service");
	dir_entry_add(e, "GLUE2ServiceID", id);
	dir_entry_addf(e, "GLUE2EntityName", "gca checkpoint service of %s", g->glue_domain);
	dir_entry_add(e, "GLUE2ServiceType", "org.gca.checkpoint");
	dir_entry_add(e, "GLUE2ServiceQualityLevel", "production");
	dir_entry_add(e, "GLUE2ServiceAdminDomainForeignKey", g->glue_domain);
	dir_entry_add(e, "GLUE2EntityOtherInfo", "InformationService=gca");
	glue_add_times(g, e);
	return e;
}

/* What every endpoint says: the interface, the implementation, the CA, the service it is of. */
static struct dir_entry *
glue_endpoint(struct gcs *g, const char *kind, const char *name, const char *endpoint)
{
	char dn[GLUE_DN_MAX], id[600], sid[600];
	struct dir_entry *e;

	if (glue_dn(g, kind, name, dn, sizeof dn) != 0)
		return NULL;
	glue_id(g, kind, name, id, sizeof id);
	glue_id(g, "checkpoint", NULL, sid, sizeof sid);
	e = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "GLUE2Endpoint");
	dir_entry_add(e, "GLUE2EndpointID", id);
	dir_entry_add(e, "GLUE2EntityName", name);
	dir_entry_addf(e, "GLUE2EndpointURL", "gca://%s", endpoint ? endpoint : "");
	dir_entry_addf(e, "GLUE2EndpointInterfaceName", "org.gca.%s", kind);
	dir_entry_addf(e, "GLUE2EndpointInterfaceVersion", "%d", PROTO_VERSION);
	dir_entry_add(e, "GLUE2EndpointImplementationName", "gca");
	dir_entry_add(e, "GLUE2EndpointQualityLevel", "production");
	dir_entry_add(e, "GLUE2EndpointServiceForeignKey", sid);
	dir_entry_add(e, "GLUE2EndpointIssuerCA", g->glue_issuer);
	dir_entry_add(e, "GLUE2EndpointTrustedCA", g->glue_trusted);
	glue_add_times(g, e);
	return e;
}

/* GLUE2EndpointHealthState and ServingState from a gcaStatus: ok is ok/production; a core service
 * that cannot work ("unavailable: why") is critical and closed; down (no heartbeat: nobody knows
 * how it is) is unknown and closed; a GCS stopped cleanly is critical and closed. */
static void
glue_add_state(struct dir_entry *e, const char *status, int cts_timeout_s)
{
	const char *health = "ok", *serving = "production";

	dir_entry_own(e, "GLUE2EndpointHealthStateInfo");
	if (strcmp(status, "ok") == 0) {
		dir_entry_add(e, "GLUE2EndpointHealthStateInfo", "ok");
	} else if (strcmp(status, "down") == 0) {
		health = "unknown";
		serving = "closed";
		dir_entry_addf(e, "GLUE2EndpointHealthStateInfo", "down: no heartbeat within %d s",
		    cts_timeout_s);
	} else {
		health = "critical";
		serving = "closed";
		dir_entry_add(e, "GLUE2EndpointHealthStateInfo", status);
	}
	dir_entry_add(e, "GLUE2EndpointHealthState", health);
	dir_entry_add(e, "GLUE2EndpointServingState", serving);
}

struct dir_entry *
glue_gcs_view(struct gcs *g, const char *status)
{
	struct dir_entry *e;

	if (g->glue_base == NULL || (e = glue_endpoint(g, "gcs", g->name, g->endpoint)) == NULL)
		return NULL;
	glue_add_state(e, status, g->cts_timeout_ms / 1000);
	dir_entry_addf(e, "GLUE2EntityOtherInfo", "gcaBase=%s", g->dircfg.base);
	return e;
}

/* A CTS's view for the gcaStatus being written; retired: its endpoint is deleted (no
 * attributes). */
struct dir_entry *
glue_cts_view(struct gcs *g, const struct gcs_cts *c, const char *status)
{
	struct glue_cts v = {
		.name = c->name, .endpoint = c->endpoint, .core_service = c->core_service,
		.classes = (const char *const *)c->classes, .nclasses = c->nclasses,
	};

	return glue_cts_entry(g, &v, status);
}

/* The same from what a CTS sent (a registration, a removal), before it is in the registry. */
struct dir_entry *
glue_cts_entry(struct gcs *g, const struct glue_cts *c, const char *status)
{
	char dn[GLUE_DN_MAX];
	struct dir_entry *e;

	if (g->glue_base == NULL)
		return NULL;
	if (strcmp(status, "retired") == 0)
		return glue_dn(g, "cts", c->name, dn, sizeof dn) == 0 ? dir_entry_new(dn) : NULL;
	if ((e = glue_endpoint(g, "cts", c->name, c->endpoint)) == NULL)
		return NULL;
	glue_add_state(e, status, g->cts_timeout_ms / 1000);
	dir_entry_own(e, "GLUE2EntityOtherInfo");
	if (c->core_service != NULL)
		dir_entry_addf(e, "GLUE2EntityOtherInfo", "CoreService=%s", c->core_service);
	for (size_t i = 0; i < c->nclasses; i++)
		dir_entry_addf(e, "GLUE2EntityOtherInfo", "Class=%s", c->classes[i]);
	dir_entry_addf(e, "GLUE2EntityOtherInfo", "GCS=%s", g->name);
	return e;
}

/* After a write that carried a view: a view that failed is written again at the next tick. */
void
glue_written(struct gcs *g, const struct dir_result *r)
{
	if (g->glue_base == NULL || r->status != DIR_OK)
		return;
	if (r->view_status != DIR_OK) {
		if (!g->glue_failing)
			log_warn("GLUE 2.0: cannot write %s (trying again)", r->view_msg);
		g->glue_failing = true;
		g->glue_dirty = true;
	} else if (g->glue_failing) {
		log_info("GLUE 2.0: written again");
		g->glue_failing = false;
	}
}

static void
glue_on_refreshed(const struct dir_result *r, void *arg)
{
	struct gcs *g = arg;

	if (r->status == DIR_OK) {
		if (g->glue_failing)
			log_info("GLUE 2.0: written again");
		g->glue_failing = false;
		return;
	}
	if (!g->glue_failing)
		log_warn("GLUE 2.0: cannot write under %s: %s (trying again)", g->glue_base, r->msg);
	g->glue_failing = true;
	g->glue_dirty = true;
}

static void
glue_put(struct gcs *g, struct dir_entry *e)
{
	if (e != NULL)
		dir_upsert(g->dir, e, glue_on_refreshed, g);
}

/* Once a second (gcs.c): every validity/2, or after a view failed, the service, this GCS's own
 * endpoint and those of the CTSes up here are written again with a new creation time. */
void
glue_tick(struct gcs *g)
{
	uint64_t now = time_mono_ms();

	if (g->glue_base == NULL || g->stopping)
		return;
	if (now < g->glue_next_ms && !g->glue_dirty)
		return;
	/* A failing directory is not hammered: once a second at most, as the registry's retries. */
	g->glue_dirty = false;
	g->glue_next_ms = now + (uint64_t)g->glue_validity_s * 1000 / 2;
	glue_put(g, glue_service_entry(g));
	glue_put(g, glue_gcs_view(g, "ok"));
	for (struct gcs_cts *c = g->cts; c != NULL; c = c->next) {
		if (c->up && c->status != NULL && !c->retired)
			glue_put(g, glue_cts_view(g, c, c->status));
	}
}

int
glue_open(struct gcs *g, char *err, size_t errlen)
{
	if (g->glue_base == NULL)
		return 0;
	if (g->glue_domain == NULL)
		g->glue_domain = xstrdup(g->name);
	if ((g->glue_issuer = glue_cert_name(g->tls.cert, true, err, errlen)) == NULL ||
	    (g->glue_trusted = glue_cert_name(g->tls.ca, false, err, errlen)) == NULL)
		return -1;
	/* The service now, before the first CTS registers under it; this GCS's own endpoint at the
	 * first tick, once it knows its endpoint. */
	glue_put(g, glue_service_entry(g));
	g->glue_next_ms = 0;
	log_info("GLUE 2.0: publishing under %s (domain %s, validity %d s)", g->glue_base,
	    g->glue_domain, g->glue_validity_s);
	return 0;
}

void
glue_close(struct gcs *g)
{
	free(g->glue_base);
	free(g->glue_domain);
	free(g->glue_issuer);
	free(g->glue_trusted);
	g->glue_base = g->glue_domain = g->glue_issuer = g->glue_trusted = NULL;
}
