/*
 * Every message and reply of the wire: a field table each (msg.c walks them) and the list that
 * finds a type by name. docs/PROTOCOL.md describes the same, for people.
 */
#include <stddef.h>
#include <string.h>

#include "proto/proto.h"

static const struct proto_field ok_empty_fields[] = {
	{ NULL, PK_STR, 0, false, 0 },
};
const struct proto_type proto_t_ok_empty = { "ok_empty", ok_empty_fields, 0, sizeof(struct msg_empty), NULL };

static const struct proto_field err_fields[] = {
	{ "code", PK_STR, offsetof(struct msg_err, code), true, 64 },
	{ "msg", PK_STR, offsetof(struct msg_err, msg), false, 4096 },
};
const struct proto_type proto_t_err = { "err", err_fields, sizeof err_fields / sizeof err_fields[0], sizeof(struct msg_err), NULL };

static const struct proto_field ping_ok_fields[] = {
	{ "time_ms", PK_U64, offsetof(struct msg_ping_ok, time_ms), false, 0 },
};
static const struct proto_type proto_t_ping_ok = { "ping_ok", ping_ok_fields, sizeof ping_ok_fields / sizeof ping_ok_fields[0], sizeof(struct msg_ping_ok), NULL };

static const struct proto_field job_bind_ok_fields[] = {
	{ "state", PK_STR, offsetof(struct msg_job_bind_ok, state), false, 64 },
};
static const struct proto_type proto_t_job_bind_ok = { "job_bind_ok", job_bind_ok_fields, sizeof job_bind_ok_fields / sizeof job_bind_ok_fields[0], sizeof(struct msg_job_bind_ok), NULL };

static const struct proto_field checkpoint_ok_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_checkpoint_ok, checkpoint_id), true, 64 },
	{ "image_name", PK_STR, offsetof(struct msg_checkpoint_ok, image_name), false, 1024 },
	{ "cts", PK_STR, offsetof(struct msg_checkpoint_ok, cts), false, 256 },
	{ "seq", PK_U64, offsetof(struct msg_checkpoint_ok, seq), true, 0 },
};
static const struct proto_type proto_t_checkpoint_ok = { "checkpoint_ok", checkpoint_ok_fields, sizeof checkpoint_ok_fields / sizeof checkpoint_ok_fields[0], sizeof(struct msg_checkpoint_ok), NULL };

static const struct proto_field seq_ok_fields[] = {
	{ "seq", PK_U64, offsetof(struct msg_seq_ok, seq), true, 0 },
};
static const struct proto_type proto_t_seq_ok = { "seq_ok", seq_ok_fields, sizeof seq_ok_fields / sizeof seq_ok_fields[0], sizeof(struct msg_seq_ok), NULL };

static const struct proto_field restore_ok_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_restore_ok, checkpoint_id), true, 64 },
	{ "image_dir", PK_STR, offsetof(struct msg_restore_ok, image_dir), false, 4096 },
	{ "core_service", PK_STR, offsetof(struct msg_restore_ok, core_service), false, 128 },
	{ "seq", PK_U64, offsetof(struct msg_restore_ok, seq), false, 0 },
};
static const struct proto_type proto_t_restore_ok = { "restore_ok", restore_ok_fields, sizeof restore_ok_fields / sizeof restore_ok_fields[0], sizeof(struct msg_restore_ok), NULL };

static const struct proto_field image_grant_ok_fields[] = {
	{ "grant", PK_STR, offsetof(struct msg_image_grant_ok, grant), true, PROTO_GRANT_MAX },
	{ "holders", PK_STRLIST, offsetof(struct msg_image_grant_ok, holders), false, 64 },
	{ "expires_ms", PK_U64, offsetof(struct msg_image_grant_ok, expires_ms), false, 0 },
};
static const struct proto_type proto_t_image_grant_ok = { "image_grant_ok", image_grant_ok_fields, sizeof image_grant_ok_fields / sizeof image_grant_ok_fields[0], sizeof(struct msg_image_grant_ok), NULL };

static const struct proto_field image_fetch_ok_fields[] = {
	{ "data", PK_BIN, offsetof(struct msg_image_fetch_ok, data), true, 0 },
	{ "eof", PK_BOOL, offsetof(struct msg_image_fetch_ok, eof), false, 0 },
	{ "size", PK_U64, offsetof(struct msg_image_fetch_ok, size), false, 0 },
	{ "sha256", PK_STR, offsetof(struct msg_image_fetch_ok, sha256), false, 64 },
};
static const struct proto_type proto_t_image_fetch_ok = { "image_fetch_ok", image_fetch_ok_fields, sizeof image_fetch_ok_fields / sizeof image_fetch_ok_fields[0], sizeof(struct msg_image_fetch_ok), NULL };

static const struct proto_field query_ok_fields[] = {
	{ "entries", PK_ENTRIES, offsetof(struct msg_query_ok, entries), false, 0 },
	{ "cursor", PK_STR, offsetof(struct msg_query_ok, cursor), false, 1024 },
	{ "more", PK_BOOL, offsetof(struct msg_query_ok, more), false, 0 },
};
static const struct proto_type proto_t_query_ok = { "query_ok", query_ok_fields, sizeof query_ok_fields / sizeof query_ok_fields[0], sizeof(struct msg_query_ok), NULL };

static const struct proto_field local_bind_ok_fields[] = {
	{ "cts", PK_STR, offsetof(struct msg_local_bind_ok, cts), true, 256 },
	{ "core_service", PK_STR, offsetof(struct msg_local_bind_ok, core_service), true, 128 },
	{ "params", PK_STRLIST, offsetof(struct msg_local_bind_ok, params), false, 256 },
};
static const struct proto_type proto_t_local_bind_ok = { "local_bind_ok", local_bind_ok_fields, sizeof local_bind_ok_fields / sizeof local_bind_ok_fields[0], sizeof(struct msg_local_bind_ok), NULL };

static const struct proto_field m_hello_fields[] = {
	{ "name", PK_STR, offsetof(struct msg_hello, name), true, 256 },
	{ "role", PK_STR, offsetof(struct msg_hello, role), true, 16 },
	{ "version", PK_U64, offsetof(struct msg_hello, version), false, 0 },
};
static const struct proto_type proto_t_m_hello = { "hello", m_hello_fields, sizeof m_hello_fields / sizeof m_hello_fields[0], sizeof(struct msg_hello), &proto_t_m_hello };

static const struct proto_field m_ping_fields[] = {
	{ NULL, PK_STR, 0, false, 0 },
};
static const struct proto_type proto_t_m_ping = { "ping", m_ping_fields, 0, sizeof(struct msg_empty), &proto_t_ping_ok };

static const struct proto_field m_cts_register_fields[] = {
	{ "name", PK_STR, offsetof(struct msg_cts_register, name), true, 256 },
	{ "endpoint", PK_STR, offsetof(struct msg_cts_register, endpoint), true, 512 },
	{ "exec_manager", PK_STR, offsetof(struct msg_cts_register, exec_manager), false, 512 },
	{ "core_service", PK_STR, offsetof(struct msg_cts_register, core_service), true, 128 },
	{ "external", PK_BOOL, offsetof(struct msg_cts_register, external), false, 0 },
	{ "self_checkpoint", PK_BOOL, offsetof(struct msg_cts_register, self_checkpoint), false, 0 },
	{ "migrate", PK_BOOL, offsetof(struct msg_cts_register, migrate), false, 0 },
	{ "any_image", PK_BOOL, offsetof(struct msg_cts_register, any_image), false, 0 },
	{ "classes", PK_STRLIST, offsetof(struct msg_cts_register, classes), false, 64 },
	{ "properties", PK_STRLIST, offsetof(struct msg_cts_register, properties), false, 256 },
	{ "exec_wrapper", PK_STR, offsetof(struct msg_cts_register, exec_wrapper), false, 1024 },
	{ "recovery_wrapper", PK_STR, offsetof(struct msg_cts_register, recovery_wrapper), false, 1024 },
	{ "exec_params", PK_STR, offsetof(struct msg_cts_register, exec_params), false, 4096 },
	{ "recovery_params", PK_STR, offsetof(struct msg_cts_register, recovery_params), false, 4096 },
	{ "wrapper_params", PK_STR, offsetof(struct msg_cts_register, wrapper_params), false, 4096 },
	{ "status", PK_STR, offsetof(struct msg_cts_register, status), false, 1024 },
};
static const struct proto_type proto_t_m_cts_register = { "cts_register", m_cts_register_fields, sizeof m_cts_register_fields / sizeof m_cts_register_fields[0], sizeof(struct msg_cts_register), &proto_t_ok_empty };

static const struct proto_field m_cts_heartbeat_fields[] = {
	{ "name", PK_STR, offsetof(struct msg_cts_heartbeat, name), true, 256 },
	{ "status", PK_STR, offsetof(struct msg_cts_heartbeat, status), false, 1024 },
};
static const struct proto_type proto_t_m_cts_heartbeat = { "cts_heartbeat", m_cts_heartbeat_fields, sizeof m_cts_heartbeat_fields / sizeof m_cts_heartbeat_fields[0], sizeof(struct msg_cts_heartbeat), &proto_t_ok_empty };

static const struct proto_field m_cts_remove_fields[] = {
	{ "name", PK_STR, offsetof(struct msg_name, name), true, 256 },
};
static const struct proto_type proto_t_m_cts_remove = { "cts_remove", m_cts_remove_fields, sizeof m_cts_remove_fields / sizeof m_cts_remove_fields[0], sizeof(struct msg_name), &proto_t_ok_empty };

static const struct proto_field class_register_ok_fields[] = {
	{ "replaced", PK_BOOL, offsetof(struct msg_class_register_ok, replaced), false, 0 },
};
static const struct proto_type proto_t_class_register_ok = { "class_register_ok", class_register_ok_fields, sizeof class_register_ok_fields / sizeof class_register_ok_fields[0], sizeof(struct msg_class_register_ok), NULL };

static const struct proto_field m_class_register_fields[] = {
	{ "name", PK_STR, offsetof(struct msg_class_register, name), true, 128 },
	{ "description", PK_STR, offsetof(struct msg_class_register, description), false, 1024 },
	{ "properties", PK_STRLIST, offsetof(struct msg_class_register, properties), false, 256 },
};
static const struct proto_type proto_t_m_class_register = { "class_register", m_class_register_fields, sizeof m_class_register_fields / sizeof m_class_register_fields[0], sizeof(struct msg_class_register), &proto_t_class_register_ok };

static const struct proto_field m_job_bind_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_job_bind, gid), true, 255 },
	{ "cts", PK_STR, offsetof(struct msg_job_bind, cts), true, 256 },
	{ "local_id", PK_STR, offsetof(struct msg_job_bind, local_id), false, 256 },
	{ "owner", PK_STR, offsetof(struct msg_job_bind, owner), true, 256 },
	{ "checkpoint_id", PK_STR, offsetof(struct msg_job_bind, checkpoint_id), false, 64 },
	{ "recovery", PK_BOOL, offsetof(struct msg_job_bind, recovery), false, 0 },
};
static const struct proto_type proto_t_m_job_bind = { "job_bind", m_job_bind_fields, sizeof m_job_bind_fields / sizeof m_job_bind_fields[0], sizeof(struct msg_job_bind), &proto_t_job_bind_ok };

static const struct proto_field m_job_unbind_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_job_unbind, gid), true, 255 },
	{ "cts", PK_STR, offsetof(struct msg_job_unbind, cts), true, 256 },
	{ "state", PK_STR, offsetof(struct msg_job_unbind, state), false, 64 },
	{ "exit_status", PK_I64, offsetof(struct msg_job_unbind, exit_status), false, 0 },
	{ "local_id", PK_STR, offsetof(struct msg_job_unbind, local_id), false, 64 },
};
static const struct proto_type proto_t_m_job_unbind = { "job_unbind", m_job_unbind_fields, sizeof m_job_unbind_fields / sizeof m_job_unbind_fields[0], sizeof(struct msg_job_unbind), &proto_t_ok_empty };

static const struct proto_field m_job_moved_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_job_moved, gid), true, 255 },
	{ "cts", PK_STR, offsetof(struct msg_job_moved, cts), true, 256 },
	{ "local_id", PK_STR, offsetof(struct msg_job_moved, local_id), false, 64 },
};
static const struct proto_type proto_t_m_job_moved = { "job_moved", m_job_moved_fields, sizeof m_job_moved_fields / sizeof m_job_moved_fields[0], sizeof(struct msg_job_moved), &proto_t_ok_empty };

static const struct proto_field m_do_checkpoint_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_do_checkpoint, gid), true, 255 },
	{ "idem_key", PK_STR, offsetof(struct msg_do_checkpoint, idem_key), false, 128 },
	{ "timeout_ms", PK_U64, offsetof(struct msg_do_checkpoint, timeout_ms), false, 0 },
};
static const struct proto_type proto_t_m_do_checkpoint = { "do_checkpoint", m_do_checkpoint_fields, sizeof m_do_checkpoint_fields / sizeof m_do_checkpoint_fields[0], sizeof(struct msg_do_checkpoint), &proto_t_checkpoint_ok };

static const struct proto_field m_checkpoint_log_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_checkpoint_log, checkpoint_id), true, 64 },
	{ "gid", PK_STR, offsetof(struct msg_checkpoint_log, gid), true, 255 },
	{ "cts", PK_STR, offsetof(struct msg_checkpoint_log, cts), true, 256 },
	{ "core_service", PK_STR, offsetof(struct msg_checkpoint_log, core_service), true, 128 },
	{ "image_name", PK_STR, offsetof(struct msg_checkpoint_log, image_name), false, 1024 },
	{ "exec_manager", PK_STR, offsetof(struct msg_checkpoint_log, exec_manager), false, 512 },
	{ "parent", PK_STR, offsetof(struct msg_checkpoint_log, parent), false, 64 },
	{ "sha256", PK_STR, offsetof(struct msg_checkpoint_log, sha256), false, 64 },
	{ "kind", PK_STR, offsetof(struct msg_checkpoint_log, kind), false, 64 },
	{ "time_ms", PK_U64, offsetof(struct msg_checkpoint_log, time_ms), false, 0 },
	{ "size", PK_U64, offsetof(struct msg_checkpoint_log, size), false, 0 },
	{ "properties", PK_STRLIST, offsetof(struct msg_checkpoint_log, properties), false, 256 },
};
static const struct proto_type proto_t_m_checkpoint_log = { "checkpoint_log", m_checkpoint_log_fields, sizeof m_checkpoint_log_fields / sizeof m_checkpoint_log_fields[0], sizeof(struct msg_checkpoint_log), &proto_t_seq_ok };

static const struct proto_field m_restore_prepare_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_restore_prepare, gid), true, 255 },
	{ "checkpoint", PK_STR, offsetof(struct msg_restore_prepare, checkpoint), true, 64 },
	{ "target_cts", PK_STR, offsetof(struct msg_restore_prepare, target_cts), false, 256 },
};
static const struct proto_type proto_t_m_restore_prepare = { "restore_prepare", m_restore_prepare_fields, sizeof m_restore_prepare_fields / sizeof m_restore_prepare_fields[0], sizeof(struct msg_restore_prepare), &proto_t_restore_ok };

static const struct proto_field m_image_grant_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_image_grant, checkpoint_id), true, 64 },
	{ "target_cts", PK_STR, offsetof(struct msg_image_grant, target_cts), true, 256 },
};
static const struct proto_type proto_t_m_image_grant = { "image_grant", m_image_grant_fields, sizeof m_image_grant_fields / sizeof m_image_grant_fields[0], sizeof(struct msg_image_grant), &proto_t_image_grant_ok };

static const struct proto_field m_image_fetch_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_image_fetch, checkpoint_id), true, 64 },
	{ "grant", PK_STR, offsetof(struct msg_image_fetch, grant), true, PROTO_GRANT_MAX },
	{ "file", PK_STR, offsetof(struct msg_image_fetch, file), true, 255 },
	{ "offset", PK_U64, offsetof(struct msg_image_fetch, offset), false, 0 },
	{ "max", PK_U64, offsetof(struct msg_image_fetch, max), false, 0 },
};
static const struct proto_type proto_t_m_image_fetch = { "image_fetch", m_image_fetch_fields, sizeof m_image_fetch_fields / sizeof m_image_fetch_fields[0], sizeof(struct msg_image_fetch), &proto_t_image_fetch_ok };

static const struct proto_field m_image_replicate_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_image_replicate, checkpoint_id), true, 64 },
	{ "gid", PK_STR, offsetof(struct msg_image_replicate, gid), true, 255 },
	{ "sha256", PK_STR, offsetof(struct msg_image_replicate, sha256), false, 64 },
	{ "grant", PK_STR, offsetof(struct msg_image_replicate, grant), true, PROTO_GRANT_MAX },
	{ "holders", PK_STRLIST, offsetof(struct msg_image_replicate, holders), false, 64 },
};
static const struct proto_type proto_t_m_image_replicate = { "image_replicate", m_image_replicate_fields, sizeof m_image_replicate_fields / sizeof m_image_replicate_fields[0], sizeof(struct msg_image_replicate), &proto_t_ok_empty };

static const struct proto_field m_image_location_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_image_location, checkpoint_id), true, 64 },
	{ "gid", PK_STR, offsetof(struct msg_image_location, gid), true, 255 },
	{ "cts", PK_STR, offsetof(struct msg_image_location, cts), true, 256 },
	{ "removed", PK_BOOL, offsetof(struct msg_image_location, removed), false, 0 },
	{ "expired", PK_BOOL, offsetof(struct msg_image_location, expired), false, 0 },
};
static const struct proto_type proto_t_m_image_location = { "image_location", m_image_location_fields, sizeof m_image_location_fields / sizeof m_image_location_fields[0], sizeof(struct msg_image_location), &proto_t_ok_empty };

static const struct proto_field image_gc_ok_fields[] = {
	{ "removed", PK_STRLIST, offsetof(struct msg_image_gc_ok, removed), false, 100000 },
	{ "errors", PK_STRLIST, offsetof(struct msg_image_gc_ok, errors), false, 1000 },
	{ "skipped", PK_STRLIST, offsetof(struct msg_image_gc_ok, skipped), false, 1000 },
};
static const struct proto_type proto_t_image_gc_ok = { "image_gc_ok", image_gc_ok_fields, sizeof image_gc_ok_fields / sizeof image_gc_ok_fields[0], sizeof(struct msg_image_gc_ok), NULL };

static const struct proto_field m_image_gc_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_image_gc, gid), false, 255 },
	{ "dry_run", PK_BOOL, offsetof(struct msg_image_gc, dry_run), false, 0 },
};
static const struct proto_type proto_t_m_image_gc = { "image_gc", m_image_gc_fields, sizeof m_image_gc_fields / sizeof m_image_gc_fields[0], sizeof(struct msg_image_gc), &proto_t_image_gc_ok };

static const struct proto_field audit_ok_fields[] = {
	{ "findings", PK_STRLIST, offsetof(struct msg_audit_ok, findings), false, 5000 },
	{ "counts", PK_STRLIST, offsetof(struct msg_audit_ok, counts), false, 64 },
	{ "unchecked", PK_STRLIST, offsetof(struct msg_audit_ok, unchecked), false, 1000 },
	{ "records", PK_U64, offsetof(struct msg_audit_ok, records), false, 0 },
	{ "images", PK_U64, offsetof(struct msg_audit_ok, images), false, 0 },
	{ "jobs", PK_U64, offsetof(struct msg_audit_ok, jobs), false, 0 },
	{ "cts", PK_U64, offsetof(struct msg_audit_ok, cts), false, 0 },
	{ "cut", PK_BOOL, offsetof(struct msg_audit_ok, cut), false, 0 },
};
static const struct proto_type proto_t_audit_ok = { "audit_ok", audit_ok_fields, sizeof audit_ok_fields / sizeof audit_ok_fields[0], sizeof(struct msg_audit_ok), NULL };

static const struct proto_field m_audit_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_audit, gid), false, 255 },
};
static const struct proto_type proto_t_m_audit = { "audit", m_audit_fields, sizeof m_audit_fields / sizeof m_audit_fields[0], sizeof(struct msg_audit), &proto_t_audit_ok };

static const struct proto_field image_audit_ok_fields[] = {
	{ "bad", PK_STRLIST, offsetof(struct msg_image_audit_ok, bad), false, 5000 },
	{ "images", PK_STRLIST, offsetof(struct msg_image_audit_ok, images), false, 5000 },
	{ "jobs", PK_STRLIST, offsetof(struct msg_image_audit_ok, jobs), false, 100000 },
	{ "held", PK_U64, offsetof(struct msg_image_audit_ok, held), false, 0 },
	{ "cut", PK_BOOL, offsetof(struct msg_image_audit_ok, cut), false, 0 },
};
static const struct proto_type proto_t_image_audit_ok = { "image_audit_ok", image_audit_ok_fields, sizeof image_audit_ok_fields / sizeof image_audit_ok_fields[0], sizeof(struct msg_image_audit_ok), NULL };

static const struct proto_field m_image_audit_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_image_audit, gid), false, 255 },
	{ "records", PK_STRLIST, offsetof(struct msg_image_audit, records), false, 5000 },
};
static const struct proto_type proto_t_m_image_audit = { "image_audit", m_image_audit_fields, sizeof m_image_audit_fields / sizeof m_image_audit_fields[0], sizeof(struct msg_image_audit), &proto_t_image_audit_ok };

static const struct proto_field m_query_fields[] = {
	{ "what", PK_STR, offsetof(struct msg_query, what), true, 32 },
	{ "gid", PK_STR, offsetof(struct msg_query, gid), false, 255 },
	{ "cts", PK_STR, offsetof(struct msg_query, cts), false, 256 },
	{ "class", PK_STR, offsetof(struct msg_query, class_), false, 128 },
	{ "core_service", PK_STR, offsetof(struct msg_query, core_service), false, 128 },
	{ "property", PK_STR, offsetof(struct msg_query, property), false, 1024 },
	{ "status", PK_STR, offsetof(struct msg_query, status), false, 1024 },
	{ "cursor", PK_STR, offsetof(struct msg_query, cursor), false, 1024 },
	{ "limit", PK_U64, offsetof(struct msg_query, limit), false, 0 },
};
static const struct proto_type proto_t_m_query = { "query", m_query_fields, sizeof m_query_fields / sizeof m_query_fields[0], sizeof(struct msg_query), &proto_t_query_ok };

static const struct proto_field m_subscribe_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_subscribe, gid), false, 255 },
};
static const struct proto_type proto_t_m_subscribe = { "subscribe", m_subscribe_fields, sizeof m_subscribe_fields / sizeof m_subscribe_fields[0], sizeof(struct msg_subscribe), &proto_t_ok_empty };

static const struct proto_field m_notify_fields[] = {
	{ "event", PK_STR, offsetof(struct msg_notify, event), true, 32 },
	{ "gid", PK_STR, offsetof(struct msg_notify, gid), false, 255 },
	{ "cts", PK_STR, offsetof(struct msg_notify, cts), false, 256 },
	{ "checkpoint_id", PK_STR, offsetof(struct msg_notify, checkpoint_id), false, 64 },
	{ "seq", PK_U64, offsetof(struct msg_notify, seq), false, 0 },
	{ "time_ms", PK_U64, offsetof(struct msg_notify, time_ms), false, 0 },
};
static const struct proto_type proto_t_m_notify = { "notify", m_notify_fields, sizeof m_notify_fields / sizeof m_notify_fields[0], sizeof(struct msg_notify), NULL };

static const struct proto_field m_local_bind_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_local_bind, gid), true, 255 },
	{ "checkpoint_id", PK_STR, offsetof(struct msg_local_bind, checkpoint_id), false, 64 },
	{ "pid", PK_U64, offsetof(struct msg_local_bind, pid), true, 0 },
	{ "checkpoint_every_ms", PK_U64, offsetof(struct msg_local_bind, checkpoint_every_ms), false, 0 },
	{ "recovery", PK_BOOL, offsetof(struct msg_local_bind, recovery), false, 0 },
	{ "checkpoint_auto", PK_BOOL, offsetof(struct msg_local_bind, checkpoint_auto), false, 0 },
};
static const struct proto_type proto_t_m_local_bind = { "local_bind", m_local_bind_fields, sizeof m_local_bind_fields / sizeof m_local_bind_fields[0], sizeof(struct msg_local_bind), &proto_t_local_bind_ok };

static const struct proto_field m_local_checkpoint_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_local_checkpoint, gid), true, 255 },
};
static const struct proto_type proto_t_m_local_checkpoint = { "local_checkpoint", m_local_checkpoint_fields, sizeof m_local_checkpoint_fields / sizeof m_local_checkpoint_fields[0], sizeof(struct msg_local_checkpoint), &proto_t_checkpoint_ok };

static const struct proto_field m_local_exit_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_local_exit, gid), true, 255 },
	{ "pid", PK_U64, offsetof(struct msg_local_exit, pid), true, 0 },
	{ "exit_status", PK_I64, offsetof(struct msg_local_exit, exit_status), true, 0 },
};
static const struct proto_type proto_t_m_local_exit = { "local_exit", m_local_exit_fields, sizeof m_local_exit_fields / sizeof m_local_exit_fields[0], sizeof(struct msg_local_exit), &proto_t_ok_empty };

/* The CTS's own socketpair between its root parent and its network process (docs/ARCHITECTURE.md,
 * "The privilege line"): net_connect (parent: dial endpoint, expect role and name), net_accepted
 * (network: a TLS peer was accepted), net_refused (network: a handshake refused, why), net_up (network, first frame of a relayed connection). */
static const struct proto_field m_net_fields[] = {
	{ "endpoint", PK_STR, offsetof(struct msg_net, endpoint), false, 300 },
	{ "role", PK_STR, offsetof(struct msg_net, role), false, 15 },
	{ "name", PK_STR, offsetof(struct msg_net, name), false, 255 },
};
static const struct proto_type proto_t_m_net_connect = { "net_connect", m_net_fields, sizeof m_net_fields / sizeof m_net_fields[0], sizeof(struct msg_net), NULL };
static const struct proto_type proto_t_m_net_accepted = { "net_accepted", m_net_fields, sizeof m_net_fields / sizeof m_net_fields[0], sizeof(struct msg_net), NULL };
static const struct proto_type proto_t_m_net_refused = { "net_refused", m_net_fields, sizeof m_net_fields / sizeof m_net_fields[0], sizeof(struct msg_net), NULL };
static const struct proto_type proto_t_m_net_up = { "net_up", m_net_fields, sizeof m_net_fields / sizeof m_net_fields[0], sizeof(struct msg_net), NULL };

static const struct proto_field local_info_ok_fields[] = {
	{ "cts", PK_STR, offsetof(struct msg_local_info_ok, cts), true, 256 },
	{ "core_service", PK_STR, offsetof(struct msg_local_info_ok, core_service), true, 128 },
	{ "properties", PK_STRLIST, offsetof(struct msg_local_info_ok, properties), false, 256 },
};
static const struct proto_type proto_t_local_info_ok = { "local_info_ok", local_info_ok_fields, sizeof local_info_ok_fields / sizeof local_info_ok_fields[0], sizeof(struct msg_local_info_ok), NULL };

static const struct proto_field m_local_info_fields[] = {
	{ NULL, PK_STR, 0, false, 0 },
};
static const struct proto_type proto_t_m_local_info = { "local_info", m_local_info_fields, 0, sizeof(struct msg_empty), &proto_t_local_info_ok };

static const struct proto_field local_vm_take_ok_fields[] = {
	{ "pid", PK_U64, offsetof(struct msg_local_vm_take_ok, pid), true, 0 },
	{ "dir", PK_STR, offsetof(struct msg_local_vm_take_ok, dir), true, 4096 },
	{ "gate", PK_STR, offsetof(struct msg_local_vm_take_ok, gate), true, 4096 },
	{ "console", PK_STR, offsetof(struct msg_local_vm_take_ok, console), true, 4096 },
};
static const struct proto_type proto_t_local_vm_take_ok = { "local_vm_take_ok", local_vm_take_ok_fields, sizeof local_vm_take_ok_fields / sizeof local_vm_take_ok_fields[0], sizeof(struct msg_local_vm_take_ok), NULL };

static const struct proto_field m_local_vm_take_fields[] = {
	{ "gid", PK_STR, offsetof(struct msg_local_vm_take, gid), true, 255 },
	{ "qemu", PK_STR, offsetof(struct msg_local_vm_take, qemu), true, 4096 },
	{ "machine", PK_STR, offsetof(struct msg_local_vm_take, machine), true, 256 },
	{ "accel", PK_STR, offsetof(struct msg_local_vm_take, accel), true, 16 },
	{ "kernel", PK_STR, offsetof(struct msg_local_vm_take, kernel), true, 4096 },
	{ "initrd", PK_STR, offsetof(struct msg_local_vm_take, initrd), true, 4096 },
	{ "memory_mib", PK_U64, offsetof(struct msg_local_vm_take, memory_mib), true, 0 },
};
static const struct proto_type proto_t_m_local_vm_take = { "local_vm_take", m_local_vm_take_fields, sizeof m_local_vm_take_fields / sizeof m_local_vm_take_fields[0], sizeof(struct msg_local_vm_take), &proto_t_local_vm_take_ok };

static const struct proto_field m_app_save_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_app_save, checkpoint_id), true, 64 },
	{ "image_dir", PK_STR, offsetof(struct msg_app_save, image_dir), true, 4096 },
	{ "parent_id", PK_STR, offsetof(struct msg_app_save, parent_id), false, 64 },
	{ "parent_dir", PK_STR, offsetof(struct msg_app_save, parent_dir), false, 4096 },
};
static const struct proto_type proto_t_m_app_save = { "app_save", m_app_save_fields, sizeof m_app_save_fields / sizeof m_app_save_fields[0], sizeof(struct msg_app_save), &proto_t_ok_empty };

static const struct proto_field m_app_saved_fields[] = {
	{ "checkpoint_id", PK_STR, offsetof(struct msg_app_saved, checkpoint_id), true, 64 },
	{ "error", PK_STR, offsetof(struct msg_app_saved, error), false, 1024 },
	{ "ok", PK_BOOL, offsetof(struct msg_app_saved, ok), true, 0 },
	{ "parent", PK_STR, offsetof(struct msg_app_saved, parent), false, 64 },
};
static const struct proto_type proto_t_m_app_saved = { "app_saved", m_app_saved_fields, sizeof m_app_saved_fields / sizeof m_app_saved_fields[0], sizeof(struct msg_app_saved), &proto_t_ok_empty };

static const struct proto_type *const proto_types[] = {
	&proto_t_m_hello,
	&proto_t_m_ping,
	&proto_t_m_cts_register,
	&proto_t_m_cts_heartbeat,
	&proto_t_m_cts_remove,
	&proto_t_m_class_register,
	&proto_t_m_job_bind,
	&proto_t_m_job_unbind,
	&proto_t_m_job_moved,
	&proto_t_m_do_checkpoint,
	&proto_t_m_checkpoint_log,
	&proto_t_m_restore_prepare,
	&proto_t_m_image_grant,
	&proto_t_m_image_fetch,
	&proto_t_m_image_replicate,
	&proto_t_m_image_location,
	&proto_t_m_image_gc,
	&proto_t_m_audit,
	&proto_t_m_image_audit,
	&proto_t_m_query,
	&proto_t_m_subscribe,
	&proto_t_m_notify,
	&proto_t_m_local_bind,
	&proto_t_m_local_checkpoint,
	&proto_t_m_local_exit,
	&proto_t_m_local_info,
	&proto_t_m_local_vm_take,
	&proto_t_m_app_save,
	&proto_t_m_app_saved,
	&proto_t_m_net_connect,
	&proto_t_m_net_accepted,
	&proto_t_m_net_refused,
	&proto_t_m_net_up,
};

const struct proto_type *
proto_type_find(const char *name)
{
	for (size_t i = 0; i < sizeof proto_types / sizeof proto_types[0]; i++) {
		if (strcmp(proto_types[i]->name, name) == 0)
			return proto_types[i];
	}
	return NULL;
}
