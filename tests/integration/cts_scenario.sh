# The paper's scenarios 5.1-5.3 end to end, nothing mocked: a real site (slapd, PKI, gca-gcs, gca-cts
# for the app and criu core services), examples/counter under gca-exec, checkpoints asked by a broker
# through the GCS (gca-ctl), SIGKILL, gca-recover from the latest and from an earlier checkpoint,
# records in ldapsearch, concurrent checkpoints, the outbox across a CTS crash (and its group commit
# under load), a corrupted image, signals through gca-recover, periodic checkpoints after recovery,
# a job's own checkpoint, the CTS's parameter patterns expanded for the job.
# timeout: 240
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
check "gca-site up (slapd, gca-gcs, two gca-cts)" gca-site up "$site"
. "$site/site.env"
# a simple bind needs TLS (StartTLS, -ZZ) with the site CA checked
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
counter=$GCA_BUILD/examples/counter
[ -x "$counter" ] || { fail "examples/counter is built"; exit 1; }

# ldapsearch as the GCS's directory identity; prints "attr: value" lines.
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
lds() { ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" -b "$GCA_BASE_DN" "$@"; }
gid='sim run=1,(a)*'		# LDAP special characters on purpose
gidf='sim run=1,\28a\29\2a'	# the same, escaped for a filter
# the last "counter N" of a log
last_count() { awk '$1=="counter"{n=$2} END{print n+0}' "$1"; }
reached() { [ "$(last_count "$1")" -ge "$2" ]; }

# -- the CTSes registered themselves (5.5) --
# has OUT LINE...: every line is in the ldapsearch output OUT
has() { local out=$1 l; shift; for l in "$@"; do grep -qxF -- "$l" <<<"$out" || return 1; done; }
out=$(lds "(&(objectClass=gcaTranslationService)(cn=cts-app))" gcaStatus gcaCoreService gcaClass)
has "$out" "gcaStatus: ok" "gcaCoreService: app" "gcaClass: basic" && pass "cts-app is published, status ok" || fail "cts-app is published, status ok" "$out"
why=$(criu check 2>&1 </dev/null | grep Error | grep -v 'exited, status=' | head -1 | sed 's/^Error ([^)]*): //')
if criu check >/dev/null 2>&1; then
	check "cts-criu is published ok where criu check passes" sh -c "ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'cn=cts-criu,ou=cts,$GCA_BASE_DN' gcaStatus | grep -q 'gcaStatus: ok'"
else
	out=$(lds "(cn=cts-criu)" gcaStatus | grep gcaStatus)
	expect_eq "cts-criu is published unavailable with criu check's reason" "$out" "gcaStatus: unavailable: criu check: $why"
fi

# -- 5.1: a job starts under gca-exec --
log1=$TEST_TMP/counter1.log
gca-exec --gid "$gid" -- "$counter" --log "$log1" --tick 20 &
job1=$!
on_exit "kill -9 $job1"
check "the counter runs under gca-exec" wait_for 10 reached "$log1" 5
out=$(lds "(&(objectClass=gcaJob)(gcaGID=$gidf))" gcaCTSName gcaJobState gcaOwner gcaLocalId)
has "$out" "gcaCTSName: cts-app" "gcaJobState: running" && pass "the job entry names cts-app, running" || fail "the job entry names cts-app, running" "$out"
has "$out" "gcaOwner: $(id -un)" && grep -q "^gcaLocalId: $(pgrep -P $job1):" <<<"$out" && pass "owner and local id (the job's pid: gca-exec's child)" || fail "owner and local id" "$out"

# -- 5.2: a broker checkpoints it three times through the GCS --
ids=()
imgdir() { echo "$site/cts/cts-app/images/$(printf %s "$gid" | python3 -c 'import sys,re; print(re.sub(r"[^A-Za-z0-9_-]", lambda m: "%%%02X" % ord(m.group()), sys.stdin.read()))')/$1"; }
for k in 1 2 3; do
	n=$(last_count "$log1")
	wait_for 10 reached "$log1" $((n + 3))
	out=$(gca-ctl checkpoint "$gid" 2>&1); rc=$?
	expect_eq "checkpoint $k through the GCS: exit 0" "$rc" 0
	id=$(echo "$out" | awk '$1=="checkpoint"{print $2}')
	ids+=("$id")
	case "$out" in *"seq $k at cts-app"*) pass "checkpoint $k has seq $k" ;; *) fail "checkpoint $k has seq $k" "$out" ;; esac
	[ -f "$(imgdir "$id")/counter" ] && [ -f "$(imgdir "$id")/manifest" ] && pass "image $k: the job's file and a manifest" || fail "image $k in the store" "$(ls -la "$(imgdir "$id")" 2>&1)"
done
saved=(); for id in "${ids[@]}"; do saved+=("$(cat "$(imgdir "$id")/counter" 2>/dev/null)"); done
[ "${saved[0]}" -lt "${saved[1]}" ] && [ "${saved[1]}" -lt "${saved[2]}" ] && pass "the three images hold growing counts (${saved[*]})" || fail "growing counts" "${saved[*]}"
out=$(lds "(&(objectClass=gcaCheckpoint)(gcaGID=$gidf))" gcaSequenceNumber | awk '/^gcaSequenceNumber/{print $2}' | sort -n | tr '\n' ' ')
expect_eq "three records with seq 1 2 3 in ldapsearch" "$out" "1 2 3 "
out=$(lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=${ids[2]}))" gcaCTSName gcaImageSha256 gcaCoreService gcaImageSize)
sha=$(sha256sum "$(imgdir "${ids[2]}")/manifest" | cut -d' ' -f1)
has "$out" "gcaCoreService: app" "gcaCTSName: cts-app" "gcaImageSha256: $sha" && pass "record 3: core service, CTS, the manifest's sha256" || fail "record 3 attributes" "$out"

# -- two checkpoints asked at once for the same GID: one waits, both succeed --
gca-ctl checkpoint "$gid" > "$TEST_TMP/c1" 2>&1 & p1=$!
gca-ctl checkpoint "$gid" > "$TEST_TMP/c2" 2>&1 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
expect_eq "two concurrent checkpoints both succeed" "$r1 $r2" "0 0"
s=$(cat "$TEST_TMP/c1" "$TEST_TMP/c2" | grep -o 'seq [0-9]*' | awk '{print $2}' | sort -n | tr '\n' ' ')
expect_eq "and got seq 4 and 5" "$s" "4 5 "

# -- the job dies: SIGKILL; the CTS sees it and the job entry says finished --
kill -9 $job1; wait $job1 2>/dev/null
check "the job entry says finished after SIGKILL" wait_for 10 sh -c "ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaGID=$gidf)' gcaJobState | grep -q 'gcaJobState: finished'"
out=$(gca-ctl checkpoint "$gid" 2>&1); rc=$?
case "$rc $out" in "1 "*finished*) pass "a checkpoint of the finished job is refused: it has finished" ;; *) fail "checkpoint of a finished job" "$rc $out" ;; esac

# -- 5.3: recovery from the latest checkpoint (seq 5) --
latest=$(lds "(&(objectClass=gcaCheckpoint)(gcaGID=$gidf)(gcaSequenceNumber=5))" gcaCheckpointId | awk '/^gcaCheckpointId/{print $2}')
want=$(cat "$(imgdir "$latest")/counter")
log2=$TEST_TMP/counter2.log
gca-recover --gid "$gid" --checkpoint latest -- "$counter" --log "$log2" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"	# passed on to its job: -9 would orphan it
check "gca-recover --checkpoint latest: the counter resumes" wait_for 10 reached "$log2" $((want + 3))
expect_eq "it restored the state of the latest checkpoint" "$(awk '$1=="restored"{print $2}' "$log2")" "$want"
expect_eq "and counts on from it" "$(awk '$1=="counter"{print $2; exit}' "$log2")" "$((want + 1))"
out=$(lds "(&(objectClass=gcaJob)(gcaGID=$gidf))" gcaCTSName gcaJobState)
has "$out" "gcaCTSName: cts-app" "gcaJobState: running" && pass "the job is bound again, running" || fail "the job is bound again" "$out"
out=$(gca-ctl checkpoint "$gid" 2>&1)
case "$out" in *"seq 6 at cts-app"*) pass "the recovered job checkpoints: seq 6" ;; *) fail "the recovered job checkpoints: seq 6" "$out" ;; esac

# -- signals sent to gca-recover reach the job; its status comes back --
kill -TERM $rec
wait $rec; rc=$?
expect_eq "SIGTERM to gca-recover: the job stopped cleanly, exit 0" "$rc" 0
grep -q "^stopped at" "$log2" && pass "the job itself got the SIGTERM" || fail "the job got the SIGTERM" "$(tail -2 "$log2")"

# -- recovery from an earlier checkpoint, and a status by signal --
log3=$TEST_TMP/counter3.log
gca-recover --gid "$gid" --checkpoint "${ids[0]}" -- "$counter" --log "$log3" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "gca-recover --checkpoint <first id>: it resumes" wait_for 10 reached "$log3" $((saved[0] + 2))
expect_eq "from the first checkpoint's state" "$(awk '$1=="restored"{print $2}' "$log3")" "${saved[0]}"
kill -USR1 $rec
wait $rec; rc=$?
expect_eq "SIGUSR1 (the counter does not catch it) comes back as 128+10" "$rc" 138

# -- a corrupted image: recovery fails, naming the file; the job does not start --
f=$(imgdir "${ids[1]}")/counter
sed -i 'y/0123456789/1234567890/' "$f"	# same size, other digits
out=$(gca-recover --gid "$gid" --checkpoint "${ids[1]}" -- touch "$TEST_TMP/started" 2>&1); rc=$?
expect_eq "recovery from a corrupted image fails" "$rc" 1
case "$out" in *"file counter"*"sha256 mismatch"*) pass "naming the file and the check: $(echo "$out" | head -1 | cut -c1-140)" ;; *) fail "the message names the file" "$out" ;; esac
[ ! -e "$TEST_TMP/started" ] && pass "the job was not started" || fail "the job was not started"

# -- a recovered job is checkpointed periodically too (gca-recover --checkpoint-every) --
log5=$TEST_TMP/counter5.log
gca-recover --gid "$gid" --checkpoint latest --checkpoint-every 1s -- "$counter" --log "$log5" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
check "gca-recover --checkpoint-every 1s: the recovered job gets a periodic checkpoint" wait_for 15 sh -c "ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(&(objectClass=gcaCheckpoint)(gcaGID=$gidf)(gcaCheckpointKind=periodic))' dn | grep -q '^dn:'"
kill -TERM $rec; wait $rec 2>/dev/null

# -- the outbox: a record pending when the CTS dies is sent after the restart, stored once --
log4=$TEST_TMP/counter4.log
gid2=periodic-job
gca-exec --gid $gid2 --checkpoint-every 1s -- "$counter" --log "$log4" --tick 20 &
job2=$!
on_exit "kill -9 $job2"
check "a job with periodic checkpoints gets some" wait_for 15 sh -c "ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(&(objectClass=gcaCheckpoint)(gcaGID=$gid2))' gcaCheckpointKind | grep -q periodic"
gcs_pid=$(cat "$site/gcs.pid")
kill -STOP "$gcs_pid"
on_exit "kill -CONT $gcs_pid"
outbox=$site/cts/cts-app/outbox
# the entries in the outbox: its log's "+ name ..." lines without a later "- name" (cts/outbox.c);
# a line a kill cut short (its frame shorter than its length says) was never synced nor sent
outbox_ids() { awk '$1=="+" && length($5)==4*int(($3+2)/3){p[$2]=1} $1=="-"{delete p[$2]} END{for (k in p) print k}' "$outbox/log" 2>/dev/null; }
export outbox; export -f outbox_ids
if wait_for 10 bash -c "outbox_ids | grep -q ."; then
	pending=$(outbox_ids | head -1)
	pass "with the GCS stopped, a record waits in the outbox ($pending)"
	kill -9 "$(cat "$site/cts-app.pid")"
	kill -CONT "$gcs_pid"
	check "gca-site up restarts the CTS" gca-site up "$site"
	check "after the restart the outbox empties" wait_for 20 bash -c '[ -z "$(outbox_ids)" ]'
	n=$(lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$pending))" dn | grep -c '^dn:')
	expect_eq "the directory holds that record once" "$n" 1
	check "the job's library re-attached: a broker's checkpoint works again" wait_for 15 gca-ctl checkpoint $gid2
else
	kill -CONT "$gcs_pid"
	fail "with the GCS stopped, a record waits in the outbox" "$(ls -la "$outbox"; cut -c1-80 "$outbox/log")"
fi
grep -q "^counter" "$log4" && kill -0 $job2 && pass "the periodic job kept running through it all" || fail "the periodic job kept running"

# -- the outbox's group commit across a CTS crash: six jobs checkpointed every 50 ms, the CTS killed
# among them (records being appended, synced together, sent, acknowledged, dropped). The GCS may
# hold only records the CTS had written and not yet seen acknowledged (in the outbox when it died)
# or had seen acknowledged (its log says "stored"): one it sent before writing it, or dropped
# before its acknowledgement, is a failure. After the restart every record that was in the outbox
# is stored, once, and the outbox empties.
bursts=()
for k in 1 2 3 4 5 6; do
	gca-exec --gid burst-$k --checkpoint-every 50ms -- "$counter" --log "$TEST_TMP/burst$k.log" --tick 20 &
	bursts+=($!)
done
on_exit "kill -9 ${bursts[*]}"
burst_ids() { lds "(&(objectClass=gcaCheckpoint)(gcaGID=burst-*))" gcaCheckpointId | awk '$1=="gcaCheckpointId:"{print $2}' | sort; }
check "six jobs get periodic checkpoints" wait_for 20 sh -c "[ \$(ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(&(objectClass=gcaCheckpoint)(gcaGID=burst-*))' dn | grep -c '^dn:') -ge 30 ]"
idre='[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}'
cts_pid=$(cat "$site/cts-app.pid")
# the kill comes right after a record was seen in the outbox (kept for the next check)
again=
for i in $(seq 2000); do
	again=$(outbox_ids | grep -xE "$idre" | head -1)
	[ -n "$again" ] && grep "^+ $again " "$outbox/log" > "$TEST_TMP/again.rec" 2>/dev/null && break
	again=
done
kill -9 "$cts_pid"
kill -9 "${bursts[@]}"; wait "${bursts[@]}" 2>/dev/null	# so that the outbox can empty
in_outbox=$(outbox_ids | grep -xE "$idre" | sort)
stored_said=$(grep -o 'record [0-9a-f-]* of burst-[0-9]* stored' "$site/log/cts-app.log" | awk '{print $2}' | sort -u)
sleep 1		# what the GCS had received is stored by now
extra=$(comm -23 <(burst_ids) <(sort -u <(echo "$in_outbox") <(echo "$stored_said")))
pass "killed with $(echo "$in_outbox" | grep -c .) record(s) in the outbox, $(echo "$stored_said" | grep -c .) acknowledged before"
expect_eq "the directory holds no record the outbox had lost before its acknowledgement" "$extra" ""
check "gca-site up restarts the CTS" gca-site up "$site"
check "after the restart the outbox empties" wait_for 30 bash -c '[ -z "$(outbox_ids)" ]'
missing=$(comm -23 <(echo "$in_outbox" | grep .) <(burst_ids))
expect_eq "every record that was in the outbox is stored" "$missing" ""
dups=$(lds "(&(objectClass=gcaCheckpoint)(gcaGID=burst-*))" gcaCheckpointId | awk '$1=="gcaCheckpointId:"{print $2}' | sort | uniq -d)
expect_eq "each once" "$dups" ""

# -- an acknowledged record's "- id" line is not synced: one a crash brought back (the copy kept
# above, acknowledged since) is sent again after the next restart and stored once, its number kept --
seq_of() { lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$1))" gcaSequenceNumber | awk '$1=="gcaSequenceNumber:"{print $2}'; }
if [ -n "$again" ] && [ -s "$TEST_TMP/again.rec" ]; then
	seq_before=$(seq_of "$again")
	kill -9 "$(cat "$site/cts-app.pid")"
	cat "$TEST_TMP/again.rec" >> "$outbox/log"	# as a crash that lost its "- id" line would
	check "gca-site up restarts the CTS with the record back in its outbox" gca-site up "$site"
	check "the record brought back is sent again and leaves the outbox" wait_for 30 bash -c "! outbox_ids | grep -qx '$again'"
	expect_eq "the directory still holds it once" "$(lds "(gcaCheckpointId=$again)" dn | grep -c '^dn:')" 1
	expect_eq "with the sequence number it had" "$(seq_of "$again")" "$seq_before"
	# the older layout, a file per entry (STATE/outbox/<id>, the frame itself): read into the
	# log at start, then removed, and sent like any other
	kill -9 "$(cat "$site/cts-app.pid")"
	sent=$(grep -c "record $again of .* stored" "$site/log/cts-app.log")
	awk '{print $5}' "$TEST_TMP/again.rec" | base64 -d > "$outbox/$again"
	check "gca-site up restarts the CTS with a record in a file of its own (the older outbox)" gca-site up "$site"
	check "that record is taken into the log, sent, and its file removed" wait_for 30 bash -c "[ ! -e '$outbox/$again' ] && ! outbox_ids | grep -qx '$again' && [ \$(grep -c 'record $again of .* stored' '$site/log/cts-app.log') -gt $sent ]"
	expect_eq "the directory still holds it once, with its number" "$(lds "(gcaCheckpointId=$again)" dn | grep -c '^dn:') $(seq_of "$again")" "1 $seq_before"
else
	fail "a record seen in the outbox, to bring back" "$(ls -la "$outbox"; cut -c1-80 "$outbox/log")"
fi

# -- a job asks for its own checkpoint (5.1 step 8) through the real CTS --
log6=$TEST_TMP/counter6.log
gca-exec --gid self-job -- "$counter" --log "$log6" --tick 20 --checkpoint-every-ticks 5 &
job6=$!
on_exit "kill -9 $job6"
if wait_for 15 grep -q '^checkpoint [0-9a-f-]* seq ' "$log6"; then
	read -r _ sid _ sseq < <(grep '^checkpoint [0-9a-f-]* seq ' "$log6" | head -1)
	pass "the job's own checkpoint: its log says checkpoint $sid seq $sseq"
	out=$(lds "(&(objectClass=gcaCheckpoint)(gcaCheckpointId=$sid))" gcaGID gcaSequenceNumber gcaCheckpointKind gcaCTSName)
	has "$out" "gcaGID: self-job" "gcaSequenceNumber: $sseq" "gcaCheckpointKind: job" "gcaCTSName: cts-app" && pass "its record in the directory: seq $sseq, kind job" || fail "the job-initiated record in the directory" "$out"
else
	fail "the job's own checkpoint: its log says checkpoint ID seq N" "$(grep checkpoint "$log6" | head -3)"
fi
kill -TERM $job6; wait $job6 2>/dev/null

# -- a GID is refused for a wrapper that may not have it --
out=$(gca-exec --gid "$gid2" -- touch "$TEST_TMP/dup" 2>&1); rc=$?
case "$rc $out" in "1 "*"already runs here"*) pass "a second gca-exec of a running GID is refused" ;; *) fail "second gca-exec refused" "$rc $out" ;; esac
[ ! -e "$TEST_TMP/dup" ] && pass "and its job did not start" || fail "and its job did not start"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups gca-exec --gid "$gid" -- touch "$TEST_TMP/stolen" 2>&1); rc=$?
	case "$rc $out" in "1 "*forbidden*) pass "another user cannot take over a GID (forbidden)" ;; *) fail "another user cannot take over a GID" "$rc $out" ;; esac
	[ ! -e "$TEST_TMP/stolen" ] && pass "and its job did not start" || fail "and its job did not start"
else
	echo "cts_scenario: not run: another user taking over a GID (needs root and user nobody)"
fi
kill -TERM $job2; wait $job2 2>/dev/null

# -- the CTS's parameter patterns reach the job expanded (gcaExecuteParams, gcaRecoveryParams) --
pc=$TEST_TMP/cts-params
mkdir -p "$pc"
scripts_pki=$GCA_TOP/scripts/gca-pki
"$scripts_pki" issue "$site/pki" cts cts-params >/dev/null
"$scripts_pki" issue "$site/pki" sign cts-params >/dev/null
cat > "$pc/cts.ldif" <<LDIF
dn: cn=cts-params,ou=cts,$GCA_BASE_DN
gcaCoreService: app
gcaExecuteParams: JOB_DIR=/scratch/{gid}/{pid}
gcaExecuteParams: JOB_WHERE={cts}:{core_service}
gcaRecoveryParams: JOB_IMAGE={image_dir}
gcaRecoveryParams: JOB_CKPT={checkpoint_id}@{seq}
LDIF
sed -e "s|^name .*|name cts-params|" -e "s|^socket .*|socket $pc/sock|" -e "s|^state .*|state $pc/state|" \
	-e "s|^descriptor .*|descriptor $pc/cts.ldif|" -e "s|cts-cts-app\.|cts-cts-params.|g" -e "s|sign-cts-app\.|sign-cts-params.|g" \
	-e "s|^listen .*|listen 127.0.0.1:0|" -e '/^endpoint /d' -e '/^metrics_listen /d' \
	"$site/cts-app.conf" > "$pc/cts.conf"
gca-cts -f "$pc/cts.conf" >"$pc/log" 2>&1 &
pc_pid=$!
on_exit "kill $pc_pid"
if wait_for 10 test -S "$pc/sock"; then
	out1=$TEST_TMP/params.out
	gca-exec --cts "$pc/sock" --gid params-job -- sh -c 'printf "%s|%s|%s\n" "$JOB_DIR" "$JOB_WHERE" "$$" > "$0"; exec "$1" --log "$2" --tick 20' "$out1" "$counter" "$TEST_TMP/counter7.log" &
	job7=$!
	on_exit "kill -9 $job7"
	wait_for 15 test -s "$out1"
	IFS='|' read -r jdir jwhere jpid < "$out1"
	expect_eq "gcaExecuteParams {gid} and {pid}: the job's JOB_DIR" "$jdir" "/scratch/params-job/$jpid"
	expect_eq "gcaExecuteParams {cts}:{core_service}" "$jwhere" "cts-params:app"
	wait_for 10 reached "$TEST_TMP/counter7.log" 3
	out=$(gca-ctl checkpoint params-job 2>&1)
	pid7=$(echo "$out" | awk '$1=="checkpoint"{print $2}')
	case "$out" in *"seq 1 at cts-params"*) pass "a checkpoint at cts-params" ;; *) fail "a checkpoint at cts-params" "$out" ;; esac
	kill -9 $job7; wait $job7 2>/dev/null
	wait_for 10 sh -c "ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaGID=params-job)' gcaJobState | grep -q 'gcaJobState: finished'"
	out2=$TEST_TMP/params2.out
	gca-recover --cts "$pc/sock" --gid params-job --checkpoint latest -- sh -c 'printf "%s|%s|%s|%s\n" "$JOB_IMAGE" "$GCA_RESTORE_DIR" "$JOB_CKPT" "$(cat "$JOB_IMAGE/counter")" > "$0"' "$out2"
	IFS='|' read -r jimage jrestore jckpt jcount < "$out2"
	[ -n "$jimage" ] && [ "$jimage" = "$jrestore" ] && pass "gcaRecoveryParams {image_dir}: the folder the job restores from ($jimage)" || fail "gcaRecoveryParams {image_dir}" "'$jimage' vs GCA_RESTORE_DIR '$jrestore'"
	expect_eq "gcaRecoveryParams {checkpoint_id}@{seq}" "$jckpt" "$pid7@1"
	expect_eq "and the image is there to read: its counter" "$jcount" "$(cat "$pc/state/images/params-job/$pid7/counter" 2>/dev/null)"
else
	fail "a CTS with parameter patterns starts" "$(tail -3 "$pc/log")"
fi

# -- a CTS not (yet) registered at its GCS: the wrapper waits a bounded time, then says why --
lone=$TEST_TMP/cts-lone
mkdir -p "$lone"
dead=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|^socket .*|socket $lone/sock|" -e "s|^state .*|state $lone/state|" \
	-e "s|^gcs .*|gcs 127.0.0.1:$dead|" -e "s|^listen .*|listen 127.0.0.1:0|" \
	-e '/^endpoint /d' -e '/^metrics_listen /d' "$site/cts-app.conf" > "$lone/cts.conf"
gca-cts -f "$lone/cts.conf" >"$lone/log" 2>&1 &
lone_pid=$!
on_exit "kill $lone_pid"
if wait_for 10 test -S "$lone/sock"; then
	t0=$(date +%s.%N)
	out=$(GCA_BIND_WAIT=2 gca-exec --cts "$lone/sock" --gid lone-job -- touch "$TEST_TMP/lone" 2>&1); rc=$?
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	case "$rc $out" in
	"1 "*"not ready"*"not registered at the GCS"*"(busy)"*) pass "a CTS without its GCS: gca-exec waited ${secs} s (GCA_BIND_WAIT=2), then refused with the reason" ;;
	*) fail "a CTS without its GCS: gca-exec waits, then refuses" "$rc $out" ;;
	esac
	[ ! -e "$TEST_TMP/lone" ] && pass "and its job did not start" || fail "and its job did not start"
else
	fail "a second CTS starts" "$(tail -3 "$lone/log")"
fi
done_testing
