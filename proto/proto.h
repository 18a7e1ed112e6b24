/*
 * proto/: the wire (docs/DESIGN.md, "Wire"). A frame is a 4-byte big-endian length and one msgpack
 * map {v:1, t:"type", id:<u32>, b:{...}}; replies are t:"ok" (b: the reply's fields) or t:"err"
 * {code, msg} with the request's id. Every message is a C struct described by a field table, and
 * one generic encoder/decoder walks the tables (msg.c): adding a message is adding a struct, its
 * table and one line in proto_types (types.c).
 */
#ifndef GCA_PROTO_H
#define GCA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_VERSION		1
#define PROTO_MAX_FRAME		(1024 * 1024)	/* default limit of one frame's payload */
#define PROTO_HEADER		4

/* ---- field kinds and message descriptions ---- */

struct proto_strlist {
	char	**v;
	size_t	  n;
};
struct proto_bin {
	uint8_t	*p;
	size_t	 n;
};
struct proto_attr {
	char			*name;
	struct proto_strlist	 vals;
};
struct proto_entry {
	struct proto_attr	*attrs;
	size_t			 n;
};
struct proto_entries {		/* LDAP-like records: a list of maps attribute -> values */
	struct proto_entry	*v;
	size_t			 n;
};

enum proto_kind { PK_STR, PK_U64, PK_I64, PK_BOOL, PK_STRLIST, PK_BIN, PK_ENTRIES };
struct proto_field {
	const char	*name;
	enum proto_kind	 kind;
	size_t		 offset;
	bool		 required;
	size_t		 max;		/* bytes for STR/BIN, items for lists; 0 = default */
};
struct proto_type {
	const char			*name;
	const struct proto_field	*fields;
	size_t				 nfields;
	size_t				 size;	/* sizeof the body struct */
	const struct proto_type		*reply;	/* the body of its "ok" reply */
};

/* ---- the messages (docs/PROTOCOL.md says who sends each) ---- */

/* A body's strings are const: a body built to be encoded borrows them (from literals, config,
 * another message), and a decoded body owns them, which only proto_body_free/proto_body_clear
 * free (through the field tables, msg.c). Take a decoded string past the body with xstrdup.
 * The lists (proto_strlist, proto_entries, proto_bin) are always the body's own. */

struct msg_empty { char unused; };
struct msg_err { const char *code, *msg; };
struct msg_hello { const char *name, *role; uint64_t version; };
struct msg_ping_ok { uint64_t time_ms; };
struct msg_cts_register {
	const char *name, *endpoint, *exec_manager, *core_service;
	bool external, self_checkpoint, migrate, any_image;
	struct proto_strlist classes, properties;
	const char *exec_wrapper, *recovery_wrapper, *exec_params, *recovery_params,
	    *wrapper_params, *status;
};
struct msg_cts_heartbeat { const char *name, *status; };
struct msg_name { const char *name; };				/* cts_remove */
struct msg_class_register { const char *name, *description; struct proto_strlist properties; };
struct msg_class_register_ok { bool replaced; };		/* false: added */
struct msg_job_bind { const char *gid, *cts, *local_id, *owner, *checkpoint_id; bool recovery; };
struct msg_job_bind_ok { const char *state; };
struct msg_job_unbind { const char *gid, *cts, *state; int64_t exit_status; const char *local_id; };
struct msg_job_moved { const char *gid, *cts, *local_id; };
struct msg_do_checkpoint { const char *gid, *idem_key; uint64_t timeout_ms; };
struct msg_checkpoint_ok { const char *checkpoint_id, *image_name, *cts; uint64_t seq; };
struct msg_checkpoint_log {
	const char *checkpoint_id, *gid, *cts, *core_service, *image_name, *exec_manager, *parent,
	    *sha256, *kind;
	uint64_t time_ms, size;
	struct proto_strlist properties;
};
struct msg_seq_ok { uint64_t seq; };
struct msg_restore_prepare { const char *gid, *checkpoint, *target_cts; };
struct msg_restore_ok { const char *checkpoint_id, *image_dir, *core_service; uint64_t seq; };
struct msg_image_grant { const char *checkpoint_id, *target_cts; };
struct msg_image_grant_ok { const char *grant; struct proto_strlist holders; uint64_t expires_ms; };
struct msg_image_fetch { const char *checkpoint_id, *grant, *file; uint64_t offset, max; };
struct msg_image_fetch_ok { struct proto_bin data; bool eof; uint64_t size; const char *sha256; };
struct msg_image_replicate {
	const char *checkpoint_id, *gid, *sha256, *grant; struct proto_strlist holders;
};
struct msg_image_location { const char *checkpoint_id, *gid, *cts; bool removed, expired; };
struct msg_image_gc { const char *gid; bool dry_run; };
/* removed: "cts id gid" lines; skipped: "cts: why" for CTSes not asked (down) */
struct msg_image_gc_ok { struct proto_strlist removed, errors, skipped; };
/* audit (gca-ctl audit): findings "kind\tgid\tcheckpoint\tcts\tdetail" ("-" for none), counts
 * "kind N" for every kind, unchecked "cts: why" (a CTS not asked, not answering, or whose
 * answer was cut); cut: more findings than listed */
struct msg_audit { const char *gid; };
struct msg_audit_ok {
	struct proto_strlist findings, counts, unchecked;
	uint64_t records, images, jobs, cts;
	bool cut;
};
/* image_audit (GCS -> CTS): records "id\tsha256\ttaker\tgid" the directory places at the CTS;
 * bad "id\twhy" (why "missing: ..." when there is no copy), images "gid\tid" held and not listed
 * (their record not on its way), jobs the GIDs it holds; cut: more images than listed */
struct msg_image_audit { const char *gid; struct proto_strlist records; };
struct msg_image_audit_ok { struct proto_strlist bad, images, jobs; uint64_t held; bool cut; };
struct msg_query {
	const char *what, *gid, *cts, *class_, *core_service, *property, *status, *cursor;
	uint64_t limit;
};
/* more: cut at limit */
struct msg_query_ok { struct proto_entries entries; const char *cursor; bool more; };
struct msg_subscribe { const char *gid; };
struct msg_notify { const char *event, *gid, *cts, *checkpoint_id; uint64_t seq, time_ms; };
struct msg_local_bind {
	const char *gid, *checkpoint_id; uint64_t pid, checkpoint_every_ms; bool recovery;
	bool checkpoint_auto;	/* --checkpoint-every auto: the CTS sets the interval (Daly) */
};
struct msg_local_bind_ok { const char *cts, *core_service; struct proto_strlist params; };
struct msg_local_checkpoint { const char *gid; };
/* local_exit: a resident wrapper tells how the job it bound (pid) ended, before it exits */
struct msg_local_exit { const char *gid; uint64_t pid; int64_t exit_status; };
/* local_info: what the CTS publishes, for a wrapper before it starts a job (a VM's guest) */
struct msg_local_info_ok { const char *cts, *core_service; struct proto_strlist properties; };
/* local_vm_take: a VM from the vmm CTS's pool (docs/VMM.md, "A pool"): the VM the executor would
 * start itself; the answer names the pooled QEMU's pid and its folder's sockets */
struct msg_local_vm_take { const char *gid, *qemu, *machine, *accel, *kernel, *initrd;
	uint64_t memory_mib; };
struct msg_local_vm_take_ok { uint64_t pid; const char *dir, *gate, *console; };
/* parent_id, parent_dir: only when the CTS offers an incremental save (app_incremental);
 * app_saved's parent: the job wrote only what changed since that parent (else a full image) */
struct msg_app_save { const char *checkpoint_id, *image_dir, *parent_id, *parent_dir; };
struct msg_app_saved { const char *checkpoint_id, *error; bool ok; const char *parent; };
/* net_connect, net_accepted, net_refused, net_up: the CTS's network process (proto/relay.c) */
struct msg_net { const char *endpoint, *role, *name; };

/* proto_type for each name; NULL if unknown (types.c). */
const struct proto_type *proto_type_find(const char *name);
extern const struct proto_type proto_t_ok_empty, proto_t_err;

/* ---- frames and messages (msg.c) ---- */

/* Error codes in err replies. */
#define PROTO_E_BAD_FRAME	"bad_frame"	/* not msgpack, or not a map, or trailing bytes */
#define PROTO_E_TOO_LARGE	"too_large"
#define PROTO_E_BAD_VERSION	"bad_version"
#define PROTO_E_UNKNOWN_TYPE	"unknown_type"
#define PROTO_E_BAD_FIELD	"bad_field"	/* a field of the wrong type or too long */
#define PROTO_E_MISSING_FIELD	"missing_field"
#define PROTO_E_FORBIDDEN	"forbidden"
#define PROTO_E_NOT_FOUND	"not_found"
#define PROTO_E_EXISTS		"exists"
#define PROTO_E_UNAVAILABLE	"unavailable"
#define PROTO_E_DIRECTORY_DOWN	"directory_down"
#define PROTO_E_CTS_DOWN	"cts_down"
#define PROTO_E_TIMEOUT		"timeout"
#define PROTO_E_REFUSED		"refused"
#define PROTO_E_BUSY		"busy"
#define PROTO_E_CONFLICT	"conflict"
#define PROTO_E_MOVED		"moved"		/* a record from a CTS the job is no longer bound to */
#define PROTO_E_INTERNAL	"internal"

/* A decoded frame: its type name, id, and the body decoded with that type's table. */
struct proto_msg {
	char			 type[32];
	uint32_t		 id;
	const struct proto_type	*pt;
	void			*body;		/* a struct msg_*, owned */
};

/* Bytes of a frame's payload from its 4-byte header, or -1 if over max. */
long proto_frame_length(const uint8_t hdr[PROTO_HEADER], size_t max);

/*
 * Encodes type/id/body into a whole frame (header included) in *out (malloc'd).
 * For replies: type "ok" with the reply's proto_type, or proto_encode_err.
 */
int  proto_encode(const char *type, uint32_t id, const struct proto_type *pt, const void *body,
	uint8_t **out, size_t *outlen);
int  proto_encode_err(uint32_t id, const char *code, const char *msg, uint8_t **out, size_t *outlen);

/*
 * Decodes one payload (without the header). The body is decoded with the table of its type or,
 * for "ok", with reply_pt (NULL: not decoded). On error returns -1, with *code (a PROTO_E_*) and a
 * message saying which field; m->id is set when it could be read (so the error reply can carry it).
 */
int  proto_decode(const uint8_t *payload, size_t len, const struct proto_type *reply_pt,
	struct proto_msg *m, const char **code, char *err, size_t errlen);
void proto_msg_free(struct proto_msg *m);
void proto_body_free(const struct proto_type *pt, void *body);
void proto_body_clear(const struct proto_type *pt, void *body);	/* the fields, not the struct */
void proto_body_set_str(const struct proto_type *pt, void *body, const char *field,
	const char *value);
void proto_strlist_add(struct proto_strlist *l, const char *s);
void proto_strlist_free(struct proto_strlist *l);
void proto_entries_free(struct proto_entries *es);

/* ---- the transport (conn.c, server.c, client.c, tls.c) ---- */

struct event_base;
struct proto_conn;
struct proto_server;
struct proto_client;

/* Who is calling: from the verified client certificate (OU = role, CN = name), or from SO_PEERCRED
 * on the unix socket (role "local"). */
struct proto_peer {
	char	role[16];
	char	name[256];
	uid_t	uid;
	gid_t	gid;
	pid_t	pid;
	bool	local;
};

/* A request being handled: reply once with proto_reply_ok or proto_reply_err, now or later.
 * If the connection closed meanwhile, the reply is dropped; the handle stays valid until replied. */
struct proto_req {
	struct proto_conn	*conn;
	uint32_t		 id;
	const struct proto_type	*pt;
	void			*body;		/* the request's body, freed after the reply */
	struct proto_peer	 peer;
};
void proto_reply_ok(struct proto_req *r, const struct proto_type *reply_pt, const void *body);
void proto_reply_err(struct proto_req *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One dispatch entry: a message type, who may send it, its handler. */
#define PROTO_ROLE_BROKER	0x01
#define PROTO_ROLE_CTS		0x02
#define PROTO_ROLE_GCS		0x04
#define PROTO_ROLE_ADMIN	0x08
#define PROTO_ROLE_LOCAL	0x10
#define PROTO_ROLE_ANY		0x1f
struct proto_handler {
	const char	*type;
	unsigned	 roles;
	void		(*handle)(struct proto_req *r, void *ctx);
};
unsigned proto_role_bit(const char *role);	/* 0 if unknown */

struct proto_tls_files {
	const char *ca, *cert, *key;
};
struct proto_server_config {
	const struct proto_handler	*handlers;
	size_t				 nhandlers;
	void				*ctx;
	size_t				 max_frame;	/* 0: PROTO_MAX_FRAME */
	size_t				 max_output;	/* stop reading a peer whose output is over this (4 MiB) */
	int				 handshake_timeout_ms;	/* 10 s */
	/* A connection quiet this long with no request being handled is closed, unless it is kept
	 * (proto_conn_keep) or its peer's role is in idle_exempt_roles. 0: none. */
	int				 idle_timeout_ms;
	void	(*on_close)(struct proto_conn *c, void *ctx);	/* optional */
	unsigned			 idle_exempt_roles;	/* PROTO_ROLE_* bits */
	/* Open connections per certificate CN (TLS) or per uid (unix) that are not kept; the next
	 * one is refused (`busy`, with why). 0: no cap. */
	int				 max_per_peer;
	/* TLS connections in their handshake at once; one more is closed at accept. 0: 256. */
	int				 max_handshakes;
};

/* A TLS 1.3 server with required client certificates, on host:port ("127.0.0.1:0" picks a port). */
struct proto_server *proto_server_tls(struct event_base *base, const char *listen,
	const struct proto_tls_files *tls, const struct proto_server_config *cfg, char *err,
	size_t errlen);
/* The same framing and dispatch on a unix socket (no TLS); peers are role "local". */
struct proto_server *proto_server_unix(struct event_base *base, const char *path, mode_t mode,
	const struct proto_server_config *cfg, char *err, size_t errlen);
/* A server without a listener: its connections come from a network process (relay.c), each a
 * unix socket and the peer's identity that process checked (role, name; not local). */
struct proto_server *proto_server_relayed(struct event_base *base,
	const struct proto_server_config *cfg);
void proto_server_take(struct proto_server *s, int fd, const struct proto_peer *peer);
int  proto_server_port(struct proto_server *s);
/* host:port from listen's host and the port the server got (allocated; free it). */
char *proto_server_endpoint(struct proto_server *s, const char *listen);
/* The "ping" handler every server shares: replies ping_ok with the server's clock. */
void proto_server_ping(struct proto_req *r, void *ctx);
void proto_server_free(struct proto_server *s);		/* closes every connection */

/* Frames the server sends unasked (notify, app_save) to a connection it holds. */
int  proto_conn_send(struct proto_conn *c, const char *type, uint32_t id,
	const struct proto_type *pt, const void *body);
const struct proto_peer *proto_conn_peer(struct proto_conn *c);
void proto_conn_ref(struct proto_conn *c);
void proto_conn_unref(struct proto_conn *c);
bool proto_conn_open(struct proto_conn *c);
size_t proto_conn_output(struct proto_conn *c);		/* bytes waiting to be written */
int    proto_conn_fd(struct proto_conn *c);		/* its socket, -1 once closed */
void proto_conn_close(struct proto_conn *c);
/* A connection a user relies on while quiet (a job's bound channel, a subscription): never cut for
 * being idle, not counted by the per-peer cap. Counted: each keep is undone by one unkeep (false). */
void proto_conn_keep(struct proto_conn *c, bool keep);

/* An async client on the loop (GCS -> CTS, CTS -> GCS): TLS with its certificate, checking the
 * server's role (and name, if given). Requests are matched to replies by id. */
typedef void (*proto_reply_cb)(const char *code, const char *msg, const void *body, void *arg);
struct proto_client_config {
	const char	*endpoint;		/* host:port */
	const char	*expect_role, *expect_name;
	int		 timeout_ms;		/* per request (30 s) */
	void		(*on_frame)(const struct proto_msg *m, void *arg);	/* unasked frames */
	void		(*on_state)(bool up, const char *why, void *arg);
	void		*arg;
	size_t		 max_frame;
	/* A pooled connection with nothing pending this long is closed by the client, before the
	 * server's idle timeout could cut it under a request (0: kept open). */
	int		 idle_close_ms;
	/* Server side of this connection: requests the peer sends us (may be NULL). */
	const struct proto_handler *handlers;
	size_t		 nhandlers;
	void		*ctx;
};
struct proto_client *proto_client_new(struct event_base *base, const struct proto_tls_files *tls,
	const struct proto_client_config *cfg, char *err, size_t errlen);
/* Sends (connecting first if needed). cb always runs once, on the loop: code NULL = ok. */
void proto_client_request(struct proto_client *c, const char *type, const struct proto_type *pt,
	const void *body, proto_reply_cb cb, void *arg);
bool proto_client_up(struct proto_client *c);
void proto_client_free(struct proto_client *c);		/* pending callbacks get "closed" */

/* ---- image grants (grant.c): a token the GCS signs, the holder of an image checks ---- */
struct proto_grant {
	char		checkpoint_id[64], target[256], gcs[256], gid[256];
	/* from the record, so a fetcher checks a copy against the directory, not the sender:
	 * gcaImageSha256 (the manifest's sha256) and gcaCTSName (who signed the manifest) */
	char		sha256[65], taker[256];
	uint64_t	expires_ms;
};
#define PROTO_GRANT_MAX 4096		/* bytes of a token */
/* Signs g with tls->key, carrying tls->cert: *token malloc'd. */
int  proto_grant_sign(const struct proto_tls_files *tls, const struct proto_grant *g, char **token,
	char *err, size_t errlen);
/* Checks the token (the CA, OU=gcs, the signature, not expired) and fills g. */
int  proto_grant_verify(const char *ca_file, const char *token, uint64_t now_ms,
	struct proto_grant *g, char *err, size_t errlen);
/* A signing identity of its own, never the TLS one: a CTS's manifest key and its OU=sign
 * certificate (docs/DESIGN.md, "Keys"), which no TLS endpoint accepts as a peer. */
struct proto_signer {
	const char *cert, *key;
};
/* A detached signature of data ("S1.<b64 sig>.<b64 DER cert>\n") with s->key, carrying s->cert;
 * checked against the CA, the certificate's OU (role, or roles "a|b": either) and CN (name, NULL:
 * any). */
int  proto_sig_make(const struct proto_signer *s, const void *data, size_t len, char **token,
	char *err, size_t errlen);
/* Reads the signing identity into the cache proto_sig_make uses (again only when its files
 * changed: two stat calls otherwise), so that a child forked after it signs without decoding
 * the PEM files itself. 0, or -1 if they cannot be read. */
int  proto_sig_prepare(const struct proto_signer *s);
int  proto_sig_check(const char *ca_file, const char *token, const void *data, size_t len,
	const char *role, const char *name, char *err, size_t errlen);

/* ---- a daemon's network process (relay.c, docs/ARCHITECTURE.md "The privilege line") ---- */
/* From now on the TLS connections this process makes (proto_client, proto_sync) are made by the
 * network process at the other end of ctl (SOCK_SEQPACKET; -1: this process connects itself). */
void proto_relay_via(int ctl);
bool proto_relay_on(void);
/* Asks for a connection to endpoint whose server is role (and name, if given): the daemon's end
 * of it, whose first frame is net_up {role, name} or an err; -1 with err. */
int  proto_relay_dial(const char *endpoint, const char *role, const char *name, char *err,
	size_t errlen);
/* One control message: a frame and at most one descriptor (fd -1: none). */
int  proto_relay_send(int ctl, const char *type, const struct msg_net *body, int fd);
/* 0 with m (free it) and *fd (-1: none), 1 if nothing waits, -1 with err ("closed": the other
 * side is gone; else a message over max, with more than one descriptor, or not a frame). */
int  proto_relay_recv(int ctl, size_t max, struct proto_msg *m, int *fd, char *err,
	size_t errlen);
struct proto_relay_config {
	int	ctl, listen_fd;
	size_t	max_frame;
	int	handshake_timeout_ms, max_handshakes;
};
struct proto_relay;
/* The network process's relay: its TLS contexts are made here (before privileges go). */
struct proto_relay *proto_relay_new(struct event_base *base, const struct proto_relay_config *cfg,
	const struct proto_tls_files *tls, char *err, size_t errlen);
/* After chroot(root): the CA and CRL paths seen from inside it. */
void proto_relay_chroot(struct proto_relay *r, const char *root);
int  proto_relay_start(struct proto_relay *r, char *err, size_t errlen);
void proto_relay_free(struct proto_relay *r);
/* tests/fuzz/fuzz_relay.c: a relay without TLS, and a link up between net (the peer's side) and
 * own (the daemon's), which the relay then owns. */
struct bufferevent;
struct proto_relay *proto_relay_test_new(struct event_base *base, size_t max_frame);
void proto_relay_test_link(struct proto_relay *r, bool accepted, const char *role,
	struct bufferevent *net, struct bufferevent *own);
bool proto_relay_test_linked(const struct proto_relay *r);

/* ---- the blocking client for command-line tools and tests (sync.c) ---- */
struct proto_sync;
/* endpoint "host:port" (TLS, cert/key may be NULL to send none) or "unix:/path". */
struct proto_sync *proto_sync_connect(const char *endpoint, const struct proto_tls_files *tls,
	const char *expect_role, int timeout_ms, char *err, size_t errlen);
/* Who answered a TLS connection (its certificate's OU and CN); -1 on a unix socket. */
int  proto_sync_peer(const struct proto_sync *s, struct proto_peer *peer);
/* One request, waiting for its reply. Returns 0 with *reply (a body of pt->reply, caller frees
 * with proto_body_free) or -1 with code/msg filled (code "io" for a broken connection). */
int  proto_sync_call(struct proto_sync *s, const char *type, const struct proto_type *pt,
	const void *body, void **reply, char *code, size_t codelen, char *msg, size_t msglen);
/* Sends without waiting; reads the next frame (a reply or an unasked frame) within timeout_ms. */
int  proto_sync_send(struct proto_sync *s, const char *type, uint32_t id,
	const struct proto_type *pt, const void *body);
int  proto_sync_read(struct proto_sync *s, int timeout_ms, const struct proto_type *reply_pt,
	struct proto_msg *m, char *err, size_t errlen);
int  proto_sync_fd(struct proto_sync *s);
void proto_sync_set_timeout(struct proto_sync *s, int timeout_ms);	/* of later calls and reads */
/* The server refused this connection itself (over a limit: an err with id 0, code busy); asking
 * again on it is pointless. */
bool proto_sync_refused(struct proto_sync *s);
/* Bytes as they are, no frame made: only tests call it, and it stays for them: hostile input
 * (garbage, unknown types, oversized lengths) over a real TLS connection, which no encoder here
 * produces and the tests could not send without a TLS client of their own. */
int  proto_sync_write_raw(struct proto_sync *s, const void *buf, size_t len);
void proto_sync_close(struct proto_sync *s);
/* A unix-socket client keeps its descriptor for exec (gca-exec, GCA_APP_FD). */
struct proto_sync *proto_sync_from_fd(int fd);

/*
 * Inside proto/ only: the connection all servers and clients share (conn.c), and TLS (tls.c).
 */
struct ssl_st;
struct ssl_ctx_st;
struct bufferevent;
/* The CRL beside a CA file (pki/ca.crt -> pki/ca.crl), malloc'd; NULL if out of memory. */
char *tls_crl_path(const char *ca);
struct ssl_ctx_st *tls_ctx_new(bool server, const struct proto_tls_files *files, char *err,
	size_t errlen);
/* The CA and CRL paths as seen after chroot(root) (a network process, relay.c). */
void tls_ctx_chroot(struct ssl_ctx_st *ctx, const char *root);
/* Reads the CRL beside the CA again if it changed (at most a stat a second); before SSL_new. */
void tls_ctx_refresh(struct ssl_ctx_st *ctx);
struct x509_store_st *tls_check_store(const char *ca, char *err, size_t errlen);
int  tls_expect_host(struct ssl_st *ssl, const char *host);
int  tls_peer_identity(struct ssl_st *ssl, struct proto_peer *peer);

struct proto_conn_ops {
	const struct proto_handler *handlers;	/* requests the peer may send us */
	size_t	 nhandlers;
	void	*ctx;
	size_t	 max_frame, max_output;
	int	 handshake_timeout_ms, idle_timeout_ms;
	/* A reply ("ok"/"err") or an unasked frame (notify, ...) arrived: m is freed afterwards. */
	void	(*on_frame)(struct proto_conn *c, struct proto_msg *m, void *arg);
	const struct proto_type *(*reply_type)(uint32_t id, void *arg);	/* to decode "ok" */
	void	(*on_up)(struct proto_conn *c, void *arg);	/* handshake done, peer known */
	void	(*on_close)(struct proto_conn *c, const char *why, void *arg);
	void	*arg;
	bool	 tls;
	const char *expect_role, *expect_name;	/* clients: who the server must be */
	bool	 accepted;	/* a server's: its refused handshakes are counted (proto/metrics.h) */
	bool	 relayed;	/* through a network process: up at its net_up frame (relay.c) */
};
void proto_conn_kill(struct proto_conn *c);	/* close now, without on_close */
bool proto_conn_kept(struct proto_conn *c);
bool proto_conn_up(struct proto_conn *c);		/* handshake done, peer known */
bool proto_conn_refused(struct proto_conn *c);
void proto_conn_idle_exempt(struct proto_conn *c);
void proto_conn_refuse(struct proto_conn *c, const char *why);
void proto_tcp_nodelay(int fd);
void proto_conn_send_raw(struct proto_conn *c, uint8_t *frame, size_t len);	/* takes frame */
struct proto_conn *proto_conn_new(struct event_base *base, struct bufferevent *bev,
	const struct proto_conn_ops *ops, const struct proto_peer *peer);

#endif
