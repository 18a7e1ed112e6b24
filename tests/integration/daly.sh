# --checkpoint-every auto (docs/ARCHITECTURE.md, "Adaptive checkpoint intervals"): an app job whose
# saves get slower (examples/counter --slow-saves: save k sleeps k * 300 ms) under gca-exec with a
# 10 s MTBF (cts.conf mtbf); the interval published on its job entry (gca-ctl jobs) follows its
# measured checkpoint cost upward, each value Daly's for the delta and M it names, and every record
# carries its cost. Recovered under a CTS without mtbf, M is observed from the GID's restarts and
# delta goes on from the record. Bad mtbf values are refused at class add and at CTS start.
# timeout: 90
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
export GCA_SITE_CTS_EXTRA=$'mtbf 10s\nauto_min 1s\nauto_max 1h'
on_exit "gca-site down $site"
check "gca-site up with mtbf 10s, auto_min 1s in cts.conf" gca-site up "$site"
. "$site/site.env"
# a simple bind needs TLS: ldaps:// with the site CA (docs/DEPLOYMENT.md, "TLS to the directory")
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
counter=$GCA_BUILD/examples/counter
[ -x "$counter" ] || { fail "examples/counter is built"; exit 1; }

# -- bad mtbf values: refused at class add and at CTS start --
out=$(. "$site/admin.env"; gca-ctl class add slowjobs mtbf=soon 2>&1); rc=$?
case "$rc $out" in "1 "*"mtbf=soon is not a positive duration"*"(bad_field)") pass "class add mtbf=soon: bad_field, says why" ;;
	*) fail "class add mtbf=soon is refused" "$rc $out" ;; esac
out=$(. "$site/admin.env"; gca-ctl class add slowjobs mtbf=0 2>&1); rc=$?
case "$rc $out" in "1 "*"mtbf=0 is not a positive duration"*) pass "class add mtbf=0 is refused" ;; *) fail "class add mtbf=0 is refused" "$rc $out" ;; esac
out=$(. "$site/admin.env"; gca-ctl class add slowjobs mtbf=12h 2>&1); rc=$?
expect_eq "class add mtbf=12h is taken" "$rc" 0
sed -e 's/^mtbf .*/mtbf -1h/' -e '/^metrics_listen /d' -e "s|^state .*|state $TEST_TMP/badstate|" -e "s|^socket .*|socket $TEST_TMP/bad.sock|" \
    "$site/cts-app.conf" > "$TEST_TMP/bad.conf"
out=$(timeout 10 gca-cts -f "$TEST_TMP/bad.conf" 2>&1); rc=$?
case "$rc $out" in 1\ *"mtbf: \"-1h\" is not a positive duration"*) pass "gca-cts with mtbf -1h: refuses to start, says why" ;;
	*) fail "gca-cts with mtbf -1h refuses to start" "$rc $out" ;; esac
sed -i -e 's/^mtbf .*/mtbf 10s/' -e 's/^auto_min .*/auto_min 2h/' "$TEST_TMP/bad.conf"
out=$(timeout 10 gca-cts -f "$TEST_TMP/bad.conf" 2>&1); rc=$?
case "$rc $out" in 1\ *"auto_min is more than auto_max"*) pass "gca-cts with auto_min > auto_max: refuses to start" ;;
	*) fail "gca-cts with auto_min > auto_max refuses to start" "$rc $out" ;; esac

{ cat "$site/cts-app.ldif"; echo "gcaProperty: mtbf=never"; } > "$TEST_TMP/bad.ldif"
sed -i -e 's/^auto_min .*/auto_min 1s/' -e "s|^descriptor .*|descriptor $TEST_TMP/bad.ldif|" "$TEST_TMP/bad.conf"
out=$(timeout 10 gca-cts -f "$TEST_TMP/bad.conf" 2>&1); rc=$?
case "$rc $out" in 1\ *"gcaProperty mtbf=never: not a positive duration"*) pass "gca-cts with a descriptor's mtbf=never: refuses to start" ;;
	*) fail "gca-cts with a descriptor's mtbf=never refuses to start" "$rc $out" ;; esac
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
out=$(ldapsearch -LLL -o ldif-wrap=no -x -H "$GCA_LDAPS_URI" -D "$bind" -w "$pw" -b "cn=cts-app,ou=cts,$GCA_BASE_DN" gcaProperty)
grep -qx "gcaProperty: mtbf=10000ms" <<<"$out" && pass "the CTS entry publishes its mtbf" || fail "the CTS entry publishes its mtbf" "$out"

# -- the job: saves get slower, the interval follows --
log=$TEST_TMP/counter.log
gca-exec --gid daly-1 --checkpoint-every auto -- "$counter" --log "$log" --tick 20 --slow-saves 300 &
job=$!
on_exit "kill -9 $job"
# interval values seen on the job entry, in order, each once ("auto:<T>ms delta=<d>ms mtbf=...")
seen=()
interval_now() { gca-ctl --json jobs 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e.get("gcaGID") == ["daly-1"]:
        for v in e.get("gcaProperty", []):
            if v.startswith("interval="): print(v[len("interval="):])'; }
deadline=$((SECONDS + 40))
while [ ${#seen[@]} -lt 4 ] && [ $SECONDS -lt $deadline ]; do
	v=$(interval_now)
	if [ -n "$v" ] && { [ ${#seen[@]} -eq 0 ] || [ "${seen[-1]}" != "$v" ]; }; then seen+=("$v"); fi
	sleep 0.2
done
printf '#   %s\n' "${seen[@]}"
[ ${#seen[@]} -ge 4 ] && pass "four intervals published in turn on the job entry" || fail "four intervals published" "${seen[*]}"
# each is Daly's for the delta and M it names, from cts.conf; the interval and delta grow
python3 - "${seen[@]}" <<'PY' && pass "each is Daly's T for its delta, M = 10 s from cts.conf, and T and delta grow" || fail "Daly's T, growing"
import math, re, sys
last_t = last_d = -1
for v in sys.argv[1:]:
    m = re.fullmatch(r"auto:(\d+)ms delta=(\d+)ms mtbf=(\d+)ms mtbf_from=(\w+)", v)
    assert m, v
    t, d, mt, src = int(m[1]), int(m[2]), int(m[3]), m[4]
    assert mt == 10000 and src == "cts", v
    want = mt if d >= 2 * mt else math.sqrt(2*d*mt) * (1 + math.sqrt(d/(2*mt))/3 + d/(18*mt)) - d
    want = min(max(want, 1000), 3600000)
    assert abs(t - want) <= 1, (v, want)
    assert t > last_t and d > last_d, (v, last_t, last_d)
    last_t, last_d = t, d
PY
out=$(gca-ctl jobs 2>&1)
grep -q "^daly-1 .*auto:[0-9]*ms delta=" <<<"$out" && grep -q "INTERVAL" <<<"$out" && pass "gca-ctl jobs shows the interval in its INTERVAL column" || fail "gca-ctl jobs shows the interval" "$out"
# the records carry each checkpoint's measured cost, growing with the saves' sleep
costs=$(ldapsearch -LLL -o ldif-wrap=no -x -H "$GCA_LDAPS_URI" -D "$bind" -w "$pw" -b "$GCA_BASE_DN" \
    "(&(objectClass=gcaCheckpoint)(gcaGID=daly-1))" gcaSequenceNumber gcaProperty | python3 -c '
import sys
recs = [dict(l.split(": ", 1) for l in e.splitlines() if ": " in l and not l.startswith(("dn:", "gcaProperty: ")))
        | {"cost": [l.split("=", 1)[1] for l in e.splitlines() if l.startswith("gcaProperty: cost_ms=")]}
        for e in sys.stdin.read().strip().split("\n\n")]
print(" ".join(r["cost"][0] for r in sorted(recs, key=lambda r: int(r["gcaSequenceNumber"])) if r["cost"]))')
echo "#   costs (ms): $costs"
python3 -c '
import sys
c = [int(x) for x in sys.argv[1:]]
assert len(c) >= 4 and all(b > a for a, b in zip(c, c[1:])) and c[0] >= 300, c' $costs &&
    pass "the records carry cost_ms, growing with the saves" || fail "records carry a growing cost_ms" "$costs"
kill -TERM $job; wait $job 2>/dev/null

# -- no mtbf in cts.conf: M is observed, the time since the GID first started over its recoveries --
kill "$(cat "$site/cts-app.pid")"
check "cts-app stopped" wait_for 10 sh -c "! kill -0 $(cat "$site/cts-app.pid") 2>/dev/null"
check "cts-app started again without mtbf" env GCA_SITE_CTS_EXTRA=$'auto_min 1s' gca-site up "$site"
first=$(sed -n 's/^gcaProperty: since=//p' < <(ldapsearch -LLL -o ldif-wrap=no -x -H "$GCA_LDAPS_URI" -D "$bind" -w "$pw" \
    -b "$GCA_BASE_DN" "(&(objectClass=gcaCheckpoint)(gcaGID=daly-1))" gcaProperty) | sort -u)
expect_eq "every record of the first run names one start time" "$(wc -w <<<"$first")" 1
gca-recover --gid daly-1 --checkpoint latest --checkpoint-every auto -- "$counter" --log "$log" --tick 20 &
rec=$!
on_exit "kill -TERM $rec"
got_restarts() { interval_now | grep -q "mtbf_from=restarts"; }
check "after the recovery's first checkpoint the interval's M comes from restarts" wait_for 20 got_restarts
v=$(interval_now); now=$(date +%s%3N)
echo "#   $v"
python3 - "$v" "$first" "$now" <<'PY' && pass "M is the time since the first start over 1 recovery; delta goes on from the record" || fail "M from restarts, delta seeded" "$v"
import re, sys
m = re.fullmatch(r"auto:(\d+)ms delta=(\d+)ms mtbf=(\d+)ms mtbf_from=restarts", sys.argv[1])
assert m, sys.argv[1]
first, now, mt, d = int(sys.argv[2]), int(sys.argv[3]), int(m[3]), int(m[2])
assert now - first - 5000 <= mt <= now - first, (mt, now - first)
assert d >= 300, d  # the seeded delta (about 950 ms) halved at most once
PY
kill -TERM $rec; wait $rec 2>/dev/null
done_testing
