#!/usr/bin/env bash
# bench/slapd-txn-crash.sh [CLIENTS] [ROUNDS] [--psearch | --psearch-each] [--seconds S]
#                          [--one-connection] [--ldapi]
#
# Does this machine's slapd survive concurrent RFC 5805 transactions? No gca code on the write
# path: a private slapd from `gca-site up --only-directory`, CLIENTS parallel writers, each a loop
# of ROUNDS `ldapmodify -E txn=commit` with three checkpoint records each (as the GCS's batches
# are). ldapmodify runs one transaction at a time and sends its adds one after another, each after
# the answer to the one before (not pipelined). --psearch opens one sync persistent search (as a
# GCS's job feed is); --psearch-each one per writer, each on its own connection (as each GCS has
# its own: two GCS writing at once). --seconds S stops every writer after S seconds (default 600),
# so a slow machine ends the run with fewer rounds, said in the result. --one-connection makes each
# writer build/bench/txn_writer (bench/txn_writer.c; $TXN_WRITER names another build of it): one
# connection kept open for all its transactions, as the GCS's directory thread keeps its own, with
# the same one-at-a-time transactions and adds.
#
# Prints the writers' rounds done, the seconds, "slapd survived" or "slapd died" with the kernel's
# or slapd's last word, and checks that every committed record is in the directory and that the
# persistent searches are still open. Exit 0 survived, 2 died, 1 could not run or lost records.
# Binds go to ldaps:// with the site CA (slapd refuses simple binds without TLS); --ldapi sends
# everything over the site's ldapi:// socket instead (no TLS; slapd counts it as confidential).
#
# Seen here (docs/BENCHMARKS.md, "Grouping records: no pattern of transactions survives"): over
# plain ldap://, 4 writers x 60 killed Debian 12's slapd 2.5.13 in 5 of 5 tries and Debian 13's
# 2.6.10 at round 9. On 2026-12-07, over ldaps:// and ldapi://, both died in every run of 2 writers
# x 600 with a persistent search each (ldapmodify or --one-connection), and even one writer on one
# connection with no persistent search died within 1-309 transactions.
set -uo pipefail
cd "$(dirname "$0")/.."
CLIENTS=4 ROUNDS=100 PSEARCH= SECONDS_MAX=600 ONECONN= LDAPI=
n=0
while [ $# -gt 0 ]; do
	case $1 in
	--psearch|--psearch-each) PSEARCH=$1 ;;
	--seconds) SECONDS_MAX=${2:?--seconds needs a number}; shift ;;
	--one-connection) ONECONN=1 ;;
	--ldapi) LDAPI=1 ;;
	[0-9]*) n=$((n + 1)); [ $n = 1 ] && CLIENTS=$1 || ROUNDS=$1 ;;
	*) echo "usage: $0 [CLIENTS] [ROUNDS] [--psearch | --psearch-each] [--seconds S] [--one-connection] [--ldapi]" >&2
		exit 1 ;;
	esac
	shift
done
TXN_WRITER=${TXN_WRITER:-${GCA_BUILD:-build}/bench/txn_writer}
if [ -n "$ONECONN" ] && [ ! -x "$TXN_WRITER" ]; then
	echo "no $TXN_WRITER: make it first (make, or cc bench/txn_writer.c -lldap -llber -luuid)"
	exit 1
fi
D=$(mktemp -d "${TMPDIR:-/tmp}/gca-bench-txn.XXXXXX")
PS_PIDS=()
cleanup() {
	for p in "${PS_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	scripts/gca-site down "$D" >/dev/null 2>&1
	[ "${GCA_KEEP:-}" = 1 ] && echo "kept $D" || rm -rf "$D"
}
trap cleanup EXIT
scripts/gca-site up "$D" --only-directory >/dev/null || { echo "gca-site up $D failed"; exit 1; }
U=$(. "$D/site.env" && echo "$GCA_LDAPS_URI")
# the socket gca-site made (ldapi://, the path URL-encoded)
[ -z "$LDAPI" ] || U="ldapi://$(sed 's|/|%2F|g' <<<"$D/ldap/ldapi")"
export LDAPTLS_CACERT=$(. "$D/site.env" && echo "$GCA_LDAP_CA_FILE")
PW=$(awk '/^password/ { print $2 }' "$D/gcs-directory.conf")
AS=(-x -H "$U" -D cn=gcs-directory,o=gca -w "$PW")
for j in 0 1 2 3; do
	printf 'dn: gcaGID=r%d,ou=jobs,o=gca\nobjectClass: gcaJob\ngcaGID: r%d\ngcaCTSName: c\n' "$j" "$j"
	printf 'gcaJobState: running\ngcaOwner: b\ngcaLocalId: %d\ngcaLastSequence: 0\n\n' "$j"
done | ldapadd "${AS[@]}" >/dev/null || { echo "cannot add the jobs"; exit 1; }
npsearch=0
case $PSEARCH in --psearch) npsearch=1 ;; --psearch-each) npsearch=$CLIENTS ;; esac
for ((p = 0; p < npsearch; p++)); do
	ldapsearch "${AS[@]}" -b ou=jobs,o=gca -E '!sync=rp' '(objectClass=gcaJob)' dn >/dev/null 2>&1 &
	PS_PIDS+=($!)
done
[ $npsearch = 0 ] || sleep 1
seen=$(dmesg 2>/dev/null | grep -c 'slapd\[')
t0=$(date +%s.%N)
end=$(( $(date +%s) + SECONDS_MAX ))
# one connection for every transaction (the GCS's way): txn_writer prints the rounds it committed
client_one_connection() {
	local c=$1
	TXN_PW=$PW "$TXN_WRITER" "$U" cn=gcs-directory,o=gca o=gca "$c" "$ROUNDS" \
		$((end - $(date +%s))) >"$D/client$c.done" 2>"$D/client$c.err"
	[ -s "$D/client$c.err" ] && echo "client $c: $(tail -1 "$D/client$c.err")"
}
client() {
	local c=$1 r k id f="$D/client$1.ldif"
	[ -z "$ONECONN" ] || { client_one_connection "$c"; return; }
	for ((r = 1; r <= ROUNDS; r++)); do
		[ "$(date +%s)" -lt "$end" ] || break
		: >"$f"
		for k in 1 2 3; do
			id=$(cat /proc/sys/kernel/random/uuid)
			printf 'dn: gcaCheckpointId=%s,gcaGID=r%d,ou=jobs,o=gca\nchangetype: add\n' "$id" $((k % 4))
			printf 'objectClass: gcaCheckpoint\ngcaCheckpointId: %s\ngcaGID: r%d\n' "$id" $((k % 4))
			printf 'gcaSequenceNumber: %d%04d%d\ngcaCheckpointTime: 20261125090000Z\n' "$c" "$r" "$k"
			printf 'gcaCTSName: c\ngcaCoreService: app\ngcaImageName: x\ngcaImageSize: 1\n'
			printf 'gcaCheckpointKind: external\n\n'
		done >>"$f"
		if ! ldapmodify "${AS[@]}" -E txn=commit -f "$f" >/dev/null 2>"$D/client$c.err"; then
			echo "client $c: failed at round $r: $(tail -1 "$D/client$c.err")"
			break
		fi
		echo $r >"$D/client$c.done"
	done
}
W=()
for ((c = 1; c <= CLIENTS; c++)); do client "$c" & W+=($!); done
wait "${W[@]}"
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
done_=() total=0
for ((c = 1; c <= CLIENTS; c++)); do
	d=$(cat "$D/client$c.done" 2>/dev/null || echo 0)
	done_+=("$d")
	total=$((total + d))
done
ps_open=0
for p in "${PS_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && ps_open=$((ps_open + 1)); done
what=
case $PSEARCH in
--psearch) what=", one sync persistent search open" ;;
--psearch-each) what=", one sync persistent search per writer ($CLIENTS)" ;;
esac
[ -z "$ONECONN" ] || what="$what, each writer on one connection (txn_writer)"
what="$what, over ${U%%:*}://"
echo "slapd $("${SLAPD:-$(command -v slapd || echo /usr/sbin/slapd)}" -VV 2>&1 | sed -n 's/.*slapd \([^ ]*\).*/\1/p' | head -1):" \
	"$CLIENTS writers x $ROUNDS transactions of 3 adds$what, at most $SECONDS_MAX s"
echo "rounds done per writer: ${done_[*]} ($total transactions) in $secs s;" \
	"load $(cut -d' ' -f1-3 /proc/loadavg)"
# asked, not kill -0: a crashed slapd can linger as a zombie nobody reaps
if ! ldapsearch "${AS[@]}" -s base -b "" '(objectClass=*)' namingContexts >/dev/null 2>&1; then
	echo "slapd died; its log ends: $(tail -1 "$D/log/slapd.log")"
	k=$(dmesg 2>/dev/null | grep 'slapd\[' | tail -n +$((seen + 1)) | head -1)
	echo "kernel: ${k:-(nothing logged: segfault reports are rate-limited)}"
	exit 2
fi
echo "slapd survived"
# every committed transaction's records are there (the GCS's identity has no size limit)
have=$(ldapsearch "${AS[@]}" -LLL -b ou=jobs,o=gca '(objectClass=gcaCheckpoint)' 1.1 | grep -c '^dn:')
echo "records in the directory: $have of $((total * 3)) committed;" \
	"persistent searches still open: $ps_open of $npsearch"
[ "$have" = $((total * 3)) ] && [ "$ps_open" = "$npsearch" ] || exit 1
