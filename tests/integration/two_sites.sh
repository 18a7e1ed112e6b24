# Two sites, two providers in multi-provider replication (gca-site --server-id, --peer, --join), a
# GCS and CTSes on each: everything published at one site is seen at the other; a job bound at site
# 1 is checkpointed through site 2's GCS; the same GID bound at both sites at once (both slapds
# paused, then resumed together) ends with one binding in both directories and the loser told
# (a bind_lost event from its GCS, or its bind refused).
# timeout: 150
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
s1=$TEST_TMP/site1
s2=$TEST_TMP/site2
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $s1"
on_exit "gca-site down $s2"
counter=$GCA_BUILD/examples/counter
env_of() { (. "$1/site.env"; eval echo "\$$2"); }

check "site 1: gca-site up --server-id 1" gca-site up "$s1" --server-id 1
u1=$(env_of "$s1" GCA_LDAP_URI)
check "site 2: gca-site up --server-id 2 --peer <site 1> --join <site 1>" \
	gca-site up "$s2" --server-id 2 --peer "$u1" --join "$s1"
u2=$(env_of "$s2" GCA_LDAP_URI)
check "site 1 takes site 2 as its peer (slapd restarts, data kept)" gca-site up "$s1" --peer "$u2"
expect_eq "site 1 kept its directory port" "$(env_of "$s1" GCA_LDAP_URI)" "$u1"
check "site 1's slapd.conf: serverID 1, multiprovider, syncrepl from site 2" \
	sh -c "grep -qx 'serverID 1' '$s1/ldap/slapd.conf' && grep -qx 'multiprovider on' '$s1/ldap/slapd.conf' && grep -q 'provider=$u2' '$s1/ldap/slapd.conf'"
g1=$(env_of "$s1" GCA_GCS_ENDPOINT)
g2=$(env_of "$s2" GCA_GCS_ENDPOINT)

names() {
	ldapsearch -x -LLL -H "$1" -b o=gca '(|(objectClass=gcaService)(objectClass=gcaTranslationService))' cn |
		awk '/^cn:/{print $2}' | sort | tr '\n' ' '
}
want="cts-app cts-app-s2 cts-criu cts-criu-s2 gcs-1 gcs-s2-1 "
check "site 1's directory lists both sites' GCS and CTSes" wait_for 15 sh -c "test \"\$(ldapsearch -x -LLL -H '$u1' -b o=gca '(|(objectClass=gcaService)(objectClass=gcaTranslationService))' cn | awk '/^cn:/{print \$2}' | sort | tr '\n' ' ')\" = '$want'"
expect_eq "site 2's directory lists the same" "$(names "$u2")" "$want"

# -- subscribers on both GCS --
. "$s1/site.env"
gca-ctl --gcs "$g1" --json subscribe > "$TEST_TMP/sub1" 2>/dev/null &
sub1=$!
gca-ctl --gcs "$g2" --json subscribe > "$TEST_TMP/sub2" 2>/dev/null &
sub2=$!
on_exit "kill $sub1 $sub2"

# -- a job bound at site 1, checkpointed through site 2 --
gid=bound-at-site-1
GCA_CTS_SOCKET=$s1/run/cts-app.sock gca-exec --gid "$gid" -- "$counter" --log "$TEST_TMP/c.log" --tick 20 &
job=$!
on_exit "kill -9 $job"
check "a job runs at site 1" wait_for 10 grep -q 'counter 3' "$TEST_TMP/c.log"
check "its binding reached site 2's directory" wait_for 10 sh -c "ldapsearch -x -LLL -H '$u2' -b ou=jobs,o=gca '(gcaGID=$gid)' gcaCTSName | grep -qx 'gcaCTSName: cts-app'"
out=$(gca-ctl --gcs "$g2" checkpoint "$gid" 2>&1); rc=$?
expect_eq "checkpoint through site 2's GCS: exit 0" "$rc" 0
case "$out" in *"seq 1 at cts-app"*) pass "routed to site 1's CTS: seq 1 at cts-app" ;; *) fail "routed to site 1's CTS" "$out" ;; esac
id=$(awk '$1=="checkpoint"{print $2}' <<<"$out")
check "the record is in site 2's directory" wait_for 10 sh -c "ldapsearch -x -LLL -H '$u2' -b ou=jobs,o=gca '(gcaCheckpointId=$id)' dn | grep -q '^dn:'"
check "and in site 1's" sh -c "ldapsearch -x -LLL -H '$u1' -b ou=jobs,o=gca '(gcaCheckpointId=$id)' dn | grep -q '^dn:'"
check "site 2's subscriber heard it (relayed from its directory)" wait_for 10 grep -q "\"checkpoint\": \"$id\"" "$TEST_TMP/sub2"
check "a class added through site 2 appears at site 1" sh -c ". '$s1/admin.env'; gca-ctl --admin --gcs '$g2' class add site2class x=y"
check "(replicated)" wait_for 10 sh -c "ldapsearch -x -LLL -H '$u1' -b ou=classes,o=gca '(cn=site2class)' dn | grep -q '^dn:'"

# -- the same GID bound at both sites at once --
contested=contested-1
kill -STOP "$(cat "$s1/ldap/slapd.pid")" "$(cat "$s2/ldap/slapd.pid")"
GCA_CTS_SOCKET=$s1/run/cts-app.sock gca-exec --gid "$contested" -- "$counter" --log "$TEST_TMP/x1.log" --tick 50 > "$TEST_TMP/x1.out" 2>&1 &
x1=$!
GCA_CTS_SOCKET=$s2/run/cts-app-s2.sock gca-exec --gid "$contested" -- "$counter" --log "$TEST_TMP/x2.log" --tick 50 > "$TEST_TMP/x2.out" 2>&1 &
x2=$!
on_exit "kill -9 $x1 $x2"
sleep 1	# both binds wait in their GCS's directory thread
kill -CONT "$(cat "$s1/ldap/slapd.pid")" "$(cat "$s2/ldap/slapd.pid")"
holder() { ldapsearch -x -LLL -H "$1" -b ou=jobs,o=gca "(gcaGID=$contested)" gcaCTSName | awk '/^gcaCTSName:/{print $2}'; }
settled() { h=$(holder "$u1"); [ -n "$h" ] && [ "$h" = "$(holder "$u2")" ]; }
check "both directories settle on one binding" wait_for 15 settled
winner=$(holder "$u1")
case "$winner" in cts-app) loser=cts-app-s2 loser_out=$TEST_TMP/x2.out ;; cts-app-s2) loser=cts-app loser_out=$TEST_TMP/x1.out ;; *) loser=? ;; esac
pass "the winner is $winner"
told() { cat "$TEST_TMP/sub1" "$TEST_TMP/sub2" | grep -q "\"event\": \"bind_lost\", \"gid\": \"$contested\", \"cts\": \"$loser\""; }
refused() { grep -qi "conflict\|held by" "$loser_out"; }
# A GCS whose change feed was away (its slapd restarted above) tells once its feed is back.
told_or_refused() { told || refused; }
wait_for 20 told_or_refused
if told; then
	pass "the loser ($loser) is told: a bind_lost event from its GCS"
	check "and its GCS's log says so" grep -q "GID $contested: the binding to CTS $loser made here lost to CTS $winner" "$s1/log/gcs.log" "$s2/log/gcs.log"
	check "and the loser's CTS, told by its GCS (job_moved), stops watching its process" wait_for 10 grep -q "job $contested (pid [0-9]*) is no longer watched here: the GCS says GID $contested moved to CTS $winner" "$s1/log/$loser.log" "$s2/log/$loser.log"
elif refused; then
	pass "the loser ($loser) is told: its bind was refused (replication was quicker than the race)"
else
	fail "the loser ($loser) is told" "$(cat "$TEST_TMP/sub1" "$TEST_TMP/sub2" "$loser_out" | tail -8)"
	grep -h "$contested\\|feed" "$s1/log/gcs.log" "$s2/log/gcs.log" 2>/dev/null | sed 's/^/# /'
	cat "$TEST_TMP/sub1" "$TEST_TMP/sub2" | sed 's/^/# /'
fi
expect_eq "no bind_lost names the winner" "$(cat "$TEST_TMP/sub1" "$TEST_TMP/sub2" | grep -c "\"event\": \"bind_lost\", \"gid\": \"$contested\", \"cts\": \"$winner\"" || true)" 0
out=$(gca-ctl --gcs "$g2" checkpoint "$contested" 2>&1)
case "$out" in *"at $winner"*) pass "a checkpoint of the contested GID goes to the winner" ;; *) fail "a checkpoint of the contested GID goes to the winner" "$out" ;; esac
done_testing
