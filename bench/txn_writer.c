/*
 * txn_writer: one writer of bench/slapd-txn-crash.sh --one-connection, written as the GCS writes
 * its records with directory_transactions on (ldap/dir_record.c): one connection kept open, one
 * RFC 5805 transaction at a time, its three adds each sent after the answer to the one before
 * (ldap_add_ext_s), then the commit. ldapmodify -E txn=commit (the script's default writer) opens
 * a connection per transaction instead.
 *
 *   TXN_PW=password txn_writer URI BINDDN BASE WRITER ROUNDS SECONDS
 *
 * The records go under gcaGID=r0..r3,ou=jobs,BASE (the script adds those jobs). libldap reads
 * LDAPTLS_CACERT for ldaps://. Prints the rounds committed; exits 0 when all ROUNDS are done or
 * SECONDS passed, 2 when the connection was lost (slapd died?), 1 on any other error. Plain
 * libldap, no gca code: it builds alone (cc txn_writer.c -lldap -llber) in another distribution's
 * root.
 */
#include <ldap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

static int
txn_writer_add(LDAP *ld, struct berval *txn, const char *base, int writer, int round, int k)
{
	char id[37], dn[300], gid[8], seq[32];
	char *oc[] = { "gcaCheckpoint", NULL }, *ids[] = { id, NULL }, *gids[] = { gid, NULL };
	char *seqs[] = { seq, NULL }, *when[] = { "20261125090000Z", NULL }, *cts[] = { "c", NULL };
	char *core[] = { "app", NULL }, *image[] = { "x", NULL }, *size[] = { "1", NULL };
	char *kind[] = { "external", NULL };
	LDAPMod m[] = {
		{ LDAP_MOD_ADD, "objectClass", { oc } }, { LDAP_MOD_ADD, "gcaCheckpointId", { ids } },
		{ LDAP_MOD_ADD, "gcaGID", { gids } }, { LDAP_MOD_ADD, "gcaSequenceNumber", { seqs } },
		{ LDAP_MOD_ADD, "gcaCheckpointTime", { when } }, { LDAP_MOD_ADD, "gcaCTSName", { cts } },
		{ LDAP_MOD_ADD, "gcaCoreService", { core } }, { LDAP_MOD_ADD, "gcaImageName", { image } },
		{ LDAP_MOD_ADD, "gcaImageSize", { size } }, { LDAP_MOD_ADD, "gcaCheckpointKind", { kind } },
	};
	LDAPMod *mods[sizeof m / sizeof m[0] + 1];
	LDAPControl *ctrl = NULL, *ctrls[2] = { NULL, NULL };
	uuid_t u;
	int rc;

	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		mods[i] = &m[i];
	mods[sizeof m / sizeof m[0]] = NULL;
	uuid_generate_random(u);
	uuid_unparse_lower(u, id);
	snprintf(gid, sizeof gid, "r%d", k % 4);
	snprintf(seq, sizeof seq, "%d%04d%d", writer, round, k);
	snprintf(dn, sizeof dn, "gcaCheckpointId=%s,gcaGID=%s,ou=jobs,%s", id, gid, base);
	if ((rc = ldap_control_create(LDAP_CONTROL_TXN_SPEC, 1, txn, 1, &ctrl)) != LDAP_SUCCESS)
		return rc;
	ctrls[0] = ctrl;
	rc = ldap_add_ext_s(ld, dn, mods, ctrls, NULL);
	ldap_control_free(ctrl);
	return rc;
}

/* One transaction of three adds; LDAP_SUCCESS once committed. */
static int
txn_writer_round(LDAP *ld, const char *base, int writer, int round)
{
	struct berval *txn = NULL;
	int rc, failed = 0;

	if ((rc = ldap_txn_start_s(ld, NULL, NULL, &txn)) != LDAP_SUCCESS)
		return rc;
	for (int k = 1; k <= 3 && rc == LDAP_SUCCESS; k++)
		rc = txn_writer_add(ld, txn, base, writer, round, k);
	if (rc == LDAP_SUCCESS)
		rc = ldap_txn_end_s(ld, 1, txn, NULL, NULL, &failed);
	else if (rc != LDAP_SERVER_DOWN)
		ldap_txn_end_s(ld, 0, txn, NULL, NULL, &failed);
	ber_bvfree(txn);
	return rc;
}

int
main(int argc, char **argv)
{
	char *pw = getenv("TXN_PW");
	struct berval cred;
	int version = LDAP_VERSION3, writer, rounds, done = 0, rc;
	time_t end;
	LDAP *ld = NULL;

	if (argc != 7 || pw == NULL) {
		fprintf(stderr, "usage: TXN_PW=password txn_writer URI BINDDN BASE WRITER ROUNDS SECONDS\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);	/* a dead slapd is a failed round, said, not a silent end */
	writer = atoi(argv[4]);
	rounds = atoi(argv[5]);
	end = time(NULL) + atoi(argv[6]);
	cred.bv_val = pw;
	cred.bv_len = strlen(pw);
	if ((rc = ldap_initialize(&ld, argv[1])) != LDAP_SUCCESS ||
	    (rc = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)) != LDAP_SUCCESS ||
	    (rc = ldap_sasl_bind_s(ld, argv[2], LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL)) != LDAP_SUCCESS) {
		fprintf(stderr, "txn_writer %d: cannot bind to %s: %s\n", writer, argv[1], ldap_err2string(rc));
		printf("0\n");
		return 1;
	}
	for (int r = 1; r <= rounds && time(NULL) < end; r++) {
		if ((rc = txn_writer_round(ld, argv[3], writer, r)) != LDAP_SUCCESS) {
			fprintf(stderr, "txn_writer %d: failed at round %d: %s\n", writer, r,
			    ldap_err2string(rc));
			break;
		}
		done = r;
	}
	printf("%d\n", done);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return rc == LDAP_SUCCESS ? 0 : rc == LDAP_SERVER_DOWN ? 2 : 1;
}
