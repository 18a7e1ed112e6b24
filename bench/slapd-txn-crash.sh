#!/usr/bin/env bash
# bench/slapd-txn-crash.sh [CLIENTS] [ROUNDS] [--psearch]: does this machine's slapd survive
# concurrent RFC 5805 transactions? No gca code on the write path: a private slapd from
# `gca-site up --only-directory`, CLIENTS parallel loops of `ldapmodify -E txn=commit` with three
# checkpoint records each (as the GCS's batches are), optionally with a sync persistent search open
# (as the GCS's job feed is). Prints "survived" or "died" and the kernel's or slapd's last word.
# Seen here (Debian 12, slapd 2.5.13+dfsg-5): 4 clients x 60 killed it in 5 of 5 tries without the
# persistent search, 1 of 4 with it; 1 client survived 200 rounds (docs/BENCHMARKS.md, "slapd 2.5.13 and transactions").
set -uo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-4} ROUNDS=${2:-100} PSEARCH=${3:-}
D=$(mktemp -d "${TMPDIR:-/tmp}/gca-bench-txn.XXXXXX")
cleanup() {
	[ -n "${PS_PID:-}" ] && kill "$PS_PID" 2>/dev/null
	scripts/gca-site down "$D" >/dev/null 2>&1
	[ "${GCA_KEEP:-}" = 1 ] && echo "kept $D" || rm -rf "$D"
}
trap cleanup EXIT
scripts/gca-site up "$D" --only-directory >/dev/null || { echo "gca-site up $D failed"; exit 1; }
U=$(awk '/^uri/ { print $2 }' "$D/gcs-directory.conf")
PW=$(awk '/^password/ { print $2 }' "$D/gcs-directory.conf")
AS=(-x -H "$U" -D cn=gcs-directory,o=gca -w "$PW")
for j in 0 1 2 3; do
	printf 'dn: gcaGID=r%d,ou=jobs,o=gca\nobjectClass: gcaJob\ngcaGID: r%d\ngcaCTSName: c\n' "$j" "$j"
	printf 'gcaJobState: running\ngcaOwner: b\ngcaLocalId: %d\ngcaLastSequence: 0\n\n' "$j"
done | ldapadd "${AS[@]}" >/dev/null || { echo "cannot add the jobs"; exit 1; }
if [ "$PSEARCH" = --psearch ]; then
	ldapsearch "${AS[@]}" -b ou=jobs,o=gca -E '!sync=rp' '(objectClass=gcaJob)' dn >/dev/null 2>&1 &
	PS_PID=$!
	sleep 1
fi
seen=$(dmesg 2>/dev/null | grep -c 'slapd\[')
client() {
	local c=$1 r k id f="$D/client$1.ldif"
	for ((r = 1; r <= ROUNDS; r++)); do
		: >"$f"
		for k in 1 2 3; do
			id=$(cat /proc/sys/kernel/random/uuid)
			printf 'dn: gcaCheckpointId=%s,gcaGID=r%d,ou=jobs,o=gca\nchangetype: add\n' "$id" $((k % 4))
			printf 'objectClass: gcaCheckpoint\ngcaCheckpointId: %s\ngcaGID: r%d\n' "$id" $((k % 4))
			printf 'gcaSequenceNumber: %d%04d%d\ngcaCheckpointTime: 20261125090000Z\n' "$c" "$r" "$k"
			printf 'gcaCTSName: c\ngcaCoreService: app\ngcaImageName: x\ngcaImageSize: 1\n'
			printf 'gcaCheckpointKind: external\n\n'
		done >>"$f"
		ldapmodify "${AS[@]}" -E txn=commit -f "$f" >/dev/null 2>&1 || { echo "client $c: failed at round $r"; return; }
	done
}
for ((c = 1; c <= CLIENTS; c++)); do client "$c" & done
wait $(jobs -p | grep -v "^${PS_PID:-x}$")
echo "$CLIENTS clients x $ROUNDS transactions of 3 adds${PSEARCH:+, persistent search open}:"
# asked, not kill -0: a crashed slapd can linger as a zombie nobody reaps
if ldapsearch -x -H "$U" -s base -b "" '(objectClass=*)' namingContexts >/dev/null 2>&1; then
	echo "slapd survived"
else
	echo "slapd died; its log ends: $(tail -1 "$D/log/slapd.log")"
	k=$(dmesg 2>/dev/null | grep 'slapd\[' | tail -n +$((seen + 1)) | head -1)
	echo "kernel: ${k:-(nothing logged: segfault reports are rate-limited)}"
	exit 2
fi
