/* GCS services, checkpointer classes and CTSes: what is published in ou=services, ou=classes
 * and ou=cts, and a CTS's status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "ldap/gca_ldap.h"

void
dir_service_publish(struct dir *d, const char *name, const char *endpoint, const char *status,
    dir_cb cb, void *arg)
{
	dir_service_publish_view(d, name, endpoint, status, NULL, cb, arg);
}

void
dir_service_publish_view(struct dir *d, const char *name, const char *endpoint,
    const char *status, struct dir_entry *view, dir_cb cb, void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_entry *e;

	if (dir_dn_service(d, name, dn, sizeof dn) != 0) {
		dir_entry_free(view);
		return dir_ops_reject(d, "not a valid service name", name, cb, arg);
	}
	time_generalized(time_now_ms(), when);
	e = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "gcaService");
	dir_entry_add(e, "cn", name);
	dir_entry_add(e, "gcaEndpoint", endpoint);
	dir_entry_add(e, "gcaHeartbeat", when);
	dir_entry_add(e, "gcaStatus", status);
	dir_ops_upsert_view(d, e, view, cb, arg);
}

void
dir_class_publish(struct dir *d, const char *name, const char *description,
    const char *const *properties, size_t nproperties, dir_cb cb, void *arg)
{
	char dn[DN_MAX];
	struct dir_entry *e;

	if (dir_dn_class(d, name, dn, sizeof dn) != 0)
		return dir_ops_reject(d, "not a valid class name", name, cb, arg);
	e = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "gcaCheckpointerClass");
	dir_entry_add(e, "cn", name);
	/* A class registered again is what the admin said this time: owned attributes not given are
	 * removed. */
	dir_entry_own(e, "description");
	dir_entry_own(e, "gcaProperty");
	if (description != NULL && *description != '\0')
		dir_entry_add(e, "description", description);
	for (size_t i = 0; i < nproperties; i++)
		dir_entry_add(e, "gcaProperty", properties[i]);
	dir_upsert(d, e, cb, arg);
}

static const char *
dir_cts_bool(bool b)
{
	return b ? "TRUE" : "FALSE";
}

static const char *const dir_cts_owned[] = {
	"gcaEndpoint", "gcaExecutionManager", "gcaCoreService", "gcaClass", "gcaProperty",
	"gcaExecuteWrapper", "gcaRecoveryWrapper", "gcaExecuteParams", "gcaRecoveryParams",
	"gcaWrapperParams",
};

void
dir_cts_publish(struct dir *d, const struct dir_cts *c, dir_cb cb, void *arg)
{
	dir_cts_publish_view(d, c, NULL, cb, arg);
}

void
dir_cts_publish_view(struct dir *d, const struct dir_cts *c, struct dir_entry *view, dir_cb cb,
    void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_entry *e;

	if (dir_dn_cts(d, c->name, dn, sizeof dn) != 0) {
		dir_entry_free(view);
		return dir_ops_reject(d, "not a valid CTS name", c->name, cb, arg);
	}
	time_generalized(time_now_ms(), when);
	e = dir_entry_new(dn);
	dir_entry_add(e, "objectClass", "gcaTranslationService");
	dir_entry_add(e, "cn", c->name);
	/* A registration is the CTS's whole description (paper 3.3): every attribute it owns is
	 * replaced, and one it no longer sends (a class, a property, a wrapper) is removed. */
	for (size_t i = 0; i < GCA_NITEMS(dir_cts_owned); i++)
		dir_entry_own(e, dir_cts_owned[i]);
	dir_entry_add(e, "gcaEndpoint", c->endpoint);
	dir_entry_add(e, "gcaExecutionManager", c->exec_manager);
	dir_entry_add(e, "gcaCoreService", c->core_service);
	dir_entry_add(e, "gcaExternalCheckpoints", dir_cts_bool(c->external));
	dir_entry_add(e, "gcaSelfCheckpointing", dir_cts_bool(c->self_checkpoint));
	dir_entry_add(e, "gcaMigration", dir_cts_bool(c->migrate));
	dir_entry_add(e, "gcaAnyImageRecovery", dir_cts_bool(c->any_image));
	for (size_t i = 0; i < c->nclasses; i++)
		dir_entry_add(e, "gcaClass", c->classes[i]);
	for (size_t i = 0; i < c->nproperties; i++)
		dir_entry_add(e, "gcaProperty", c->properties[i]);
	if (c->gcs != NULL)
		dir_entry_addf(e, "gcaProperty", "gcs=%s", c->gcs);
	dir_entry_add(e, "gcaExecuteWrapper", c->exec_wrapper);
	dir_entry_add(e, "gcaRecoveryWrapper", c->recovery_wrapper);
	dir_entry_add(e, "gcaExecuteParams", c->exec_params);
	dir_entry_add(e, "gcaRecoveryParams", c->recovery_params);
	dir_entry_add(e, "gcaWrapperParams", c->wrapper_params);
	dir_entry_add(e, "gcaStatus", c->status ? c->status : "ok");
	dir_entry_add(e, "gcaHeartbeat", when);
	dir_ops_upsert_view(d, e, view, cb, arg);
}


void
dir_cts_status(struct dir *d, const char *name, const char *status, dir_cb cb, void *arg)
{
	dir_cts_status_view(d, name, status, NULL, cb, arg);
}

void
dir_cts_status_view(struct dir *d, const char *name, const char *status, struct dir_entry *view,
    dir_cb cb, void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_op *op;

	if (dir_dn_cts(d, name, dn, sizeof dn) != 0) {
		dir_entry_free(view);
		return dir_ops_reject(d, "not a valid CTS name", name, cb, arg);
	}
	time_generalized(time_now_ms(), when);
	op = dir_op_new(dir_ops_replace, cb, arg);
	dir_ops_set_view(op, view);
	op->entry = dir_entry_new(dn);
	dir_entry_add(op->entry, "gcaStatus", status);
	dir_entry_add(op->entry, "gcaHeartbeat", when);
	dir_op_submit(d, op);
}

/* The status change, in one modify that asserts the entry's status is still old (and, with gcs,
 * that the CTS still names that GCS): a change made meanwhile elsewhere (a retirement, a
 * registration at another GCS) is never written over. */
static void
dir_cts_status_if_run(struct dir *d, struct dir_op *op)
{
	struct dir_entry del = { 0 }, add = { 0 };

	dir_entry_add(&del, "gcaStatus", op->u.cts_status.old_status);
	if (op->u.cts_status.gcs != NULL) {
		dir_entry_addf(&del, "gcaProperty", "gcs=%s", op->u.cts_status.gcs);
		dir_entry_addf(&add, "gcaProperty", "gcs=%s", op->u.cts_status.gcs);
	}
	dir_do_modify(d, op->entry->dn, &del, &add, op->entry, &op->res);
	dir_entry_clear(&del);
	dir_entry_clear(&add);
}

void
dir_cts_status_if(struct dir *d, const char *name, const char *status, const char *old,
    const char *gcs, dir_cb cb, void *arg)
{
	dir_cts_status_if_view(d, name, status, old, gcs, NULL, cb, arg);
}

void
dir_cts_status_if_view(struct dir *d, const char *name, const char *status, const char *old,
    const char *gcs, struct dir_entry *view, dir_cb cb, void *arg)
{
	char dn[DN_MAX], when[32];
	struct dir_op *op;

	if (old == NULL)
		return dir_cts_status_view(d, name, status, view, cb, arg);
	if (dir_dn_cts(d, name, dn, sizeof dn) != 0) {
		dir_entry_free(view);
		return dir_ops_reject(d, "not a valid CTS name", name, cb, arg);
	}
	time_generalized(time_now_ms(), when);
	op = dir_op_new(dir_cts_status_if_run, cb, arg);
	dir_ops_set_view(op, view);
	op->u.cts_status.old_status = dir_op_strdup(op, old);
	op->u.cts_status.gcs = dir_op_strdup(op, gcs);
	op->entry = dir_entry_new(dn);
	dir_entry_add(op->entry, "gcaStatus", status);
	dir_entry_add(op->entry, "gcaHeartbeat", when);
	dir_op_submit(d, op);
}
