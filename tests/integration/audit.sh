# gca-ctl audit against a real site (gca-site: slapd, PKI, two gca-gcs, two gca-cts) and real
# jobs: a clean site is clean through either GCS (exit 0, every count 0); then the site is broken
# for real, one kind at a time, each reported (exit 1, its kind and only it) and mended: an image
# folder deleted, an image file corrupted, a record added with ldapadd and no image, an image with
# no record, a record naming a CTS without a copy (and not the one with it), a bound job lost from
# its CTS's state, a sequence gap and a repeat made with ldapmodify; retention at work stays clean.
# A broker's certificate is refused, an unreachable GCS, a CTS stopped (SIGSTOP: bounded by the
# GCS's request_timeout) and a CTS killed are named (exit 2).
# timeout: 120
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
export HOME=$TEST_TMP/nohome
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
export GCA_SITE_REQUEST_TIMEOUT=3	# how long the GCS waits for a CTS (a stopped one, below)
on_exit "gca-site down $site"
check "gca-site up --gcs 2" gca-site up "$site" --gcs 2
. "$site/site.env"
export LDAPTLS_CACERT="$GCA_LDAP_CA_FILE"
counter=$GCA_BUILD/examples/counter
bind=$(awk '$1=="binddn"{print $2}' "$site/gcs-directory.conf")
pw=$(awk '$1=="password"{print $2}' "$site/gcs-directory.conf")
lds() { ldapsearch -LLL -o ldif-wrap=no -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" -b "ou=jobs,$GCA_BASE_DN" "$@"; }
ldm() { ldapmodify -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" "$@" >/dev/null; }
as_admin() { ( . "$site/admin.env"; "$@" ); }
store=$site/cts/cts-app/images
last_count() { awk '$1=="counter"{n=$2} END{print n+0}' "$1"; }
reached() { [ "$(last_count "$1")" -ge "$2" ]; }

# audit_is WANT_RC KIND [PATTERN]: gca-ctl audit exits WANT_RC; with KIND, the JSON counts that
# kind once and no other, and the finding's row matches PATTERN (grep -E)
audit_is() {
	local want=$1 kind=${2:-} pat=${3:-} out rc
	out=$(as_admin gca-ctl --json audit 2>&1); rc=$?
	if [ "$rc" != "$want" ]; then fail "audit: exit $want${kind:+ ($kind)}" "exit $rc: $out"; return; fi
	pass "audit: exit $want${kind:+ ($kind)}"
	[ -n "$kind" ] || return 0
	if python3 -c '
import json, sys
d = json.loads(sys.argv[1]); k = sys.argv[2]
assert d["counts"][k] == 1 and sum(d["counts"].values()) == 1 and d["complete"], d
assert [f["kind"] for f in d["findings"]] == [k], d' "$out" "$kind"; then pass "audit: one $kind and nothing else"
	else fail "audit: one $kind and nothing else" "$out"; fi
	out=$(as_admin gca-ctl audit 2>&1)
	if grep -qE "^$kind +$pat" <<<"$out" && grep -q "^found: .*$kind 1" <<<"$out"; then pass "audit: the table's row ($kind $pat) and count"
	else fail "audit: the table's row ($kind $pat) and count" "$out"; fi
}

# -- two jobs, three checkpoints each --
start_job() {	# start_job GID LOG: a counter under gca-exec, bound
	gca-exec --gid "$1" -- "$counter" --log "$2" --tick 20 &
	on_exit "kill -9 $!"
	wait_for 10 reached "$2" 3
}
declare -A ids
for g in audit-1 audit-2; do
	start_job $g "$TEST_TMP/$g.log" || fail "$g runs" "$(cat "$TEST_TMP/$g.log")"
	for k in 1 2 3; do
		out=$(gca-ctl checkpoint $g 2>&1) || fail "checkpoint $k of $g" "$out"
		ids[$g.$k]=$(awk '$1=="checkpoint"{print $2}' <<<"$out")
	done
done
expect_eq "six records in the directory" "$(lds '(objectClass=gcaCheckpoint)' dn | grep -c '^dn:')" 6

# -- a clean site --
out=$(as_admin gca-ctl audit); rc=$?
expect_eq "a clean site: exit 0" "$rc" 0
case "$out" in *"clean: nothing wrong"*) pass "a clean site: says clean" ;; *) fail "a clean site: says clean" "$out" ;; esac
check "a clean site: --json counts zero of every kind, 6 records, 2 CTSes asked" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["clean"] and d["complete"] and d["findings"] == [] and d["unchecked"] == [], d
assert sorted(d["counts"]) == sorted(["image_missing", "image_bad", "copy_bad", "image_unrecorded",
    "job_unknown", "seq_repeat", "seq_gap"]) and not any(d["counts"].values()), d
assert d["records"] == 6 and d["jobs"] == 2 and d["images"] == 6 and d["cts"] == 2, d' "$(as_admin gca-ctl --json audit)"
check "audit GID: only that job's" python3 -c '
import json, sys
d = json.loads(sys.argv[1]); assert d["clean"] and d["records"] == 3 and d["jobs"] == 1, d' "$(as_admin gca-ctl --json audit audit-2)"

# through either GCS (the CTSes beat to the first: the second asks them at their endpoints)
for ep in ${GCA_GCS_ENDPOINT//,/ }; do
	out=$(as_admin gca-ctl --gcs "$ep" audit 2>&1); rc=$?
	case "$rc $out" in "0 "*"checked: 6 records, 2 jobs, 6 images at 2 CTSes"*"clean: nothing wrong"*) pass "audit through the GCS at $ep: clean" ;;
	*) fail "audit through the GCS at $ep: clean" "$rc $out" ;; esac
done

# -- refused and unreachable --
out=$(gca-ctl audit 2>&1); rc=$?
case "$rc $out" in "2 "*forbidden*) pass "a broker's certificate is refused (exit 2, forbidden)" ;; *) fail "a broker's certificate is refused" "$rc $out" ;; esac
out=$(as_admin gca-ctl --gcs 127.0.0.1:1 --timeout 5 audit 2>&1); rc=$?
case "$rc $out" in "2 "*"cannot reach the GCS"*) pass "an unreachable GCS: exit 2, named" ;; *) fail "an unreachable GCS: exit 2, named" "$rc $out" ;; esac

# -- a CTS that does not answer (SIGSTOP): named after the GCS's request_timeout, never a hang --
criu_pid=$(cat "$site/cts-criu.pid")
kill -STOP "$criu_pid"
on_exit "kill -CONT $criu_pid"
t0=$(date +%s)
out=$(as_admin gca-ctl audit 2>&1); rc=$?
took=$(( $(date +%s) - t0 ))
kill -CONT "$criu_pid"
case "$rc $out" in "2 "*"not checked: cts-criu: "*) pass "a stopped CTS: exit 2, named under not checked" ;; *) fail "a stopped CTS: exit 2, named" "$rc $out" ;; esac
[ "$took" -le 8 ] && pass "a stopped CTS: answered in ${took}s (request_timeout 3 s)" || fail "a stopped CTS: answered within 8 s" "${took}s"
wait_for 10 sh -c ". '$site/admin.env'; gca-ctl audit" || fail "cts-criu answers again" "$(as_admin gca-ctl audit 2>&1)"

# -- an image folder deleted: its record has no copy --
id=${ids[audit-1.1]}
cp -a "$store/audit-1/$id" "$TEST_TMP/keep"
rm -rf "$store/audit-1/$id"
audit_is 1 image_missing "audit-1 +$id +cts-app +at every holder: cts-app: missing"
out=$(as_admin gca-ctl audit audit-2); expect_eq "audit of the other GID: still clean (exit $?)" "$(tail -1 <<<"$out")" "clean: nothing wrong"
mv "$TEST_TMP/keep" "$store/audit-1/$id"
audit_is 0 ""

# -- an image file corrupted: its copy fails its sha256 --
id=${ids[audit-1.2]}
cp -a "$store/audit-1/$id/counter" "$TEST_TMP/keep"
printf 'x' >> "$store/audit-1/$id/counter"
audit_is 1 image_bad "audit-1 +$id +cts-app +at every holder: cts-app: image file counter .*(size|sha256) mismatch"
cp "$TEST_TMP/keep" "$store/audit-1/$id/counter"
# the manifest edited to match (a store edited consistently): refused by the record's sha256
sed -i 's/^time_ms .*/time_ms 1/' "$store/audit-1/$id/manifest"
audit_is 1 image_bad "audit-1 +$id .*the manifest of checkpoint $id has sha256"
rm -rf "$store/audit-1/$id"; cp -a "$store/audit-1/${ids[audit-1.3]}" "$TEST_TMP/keep3"
audit_is 1 image_missing "audit-1 +$id"
# (mended below with the backup made of the folder before: the record's own copy)

# -- a record with no image (ldapadd): no copy at its holder --
nid=01900000-0000-7000-8000-000000000001
jobdn=$(lds '(&(objectClass=gcaJob)(gcaGID=audit-2))' dn | sed -n 's/^dn: //p')
ldapadd -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" >/dev/null <<EOF
dn: gcaCheckpointId=$nid,$jobdn
objectClass: gcaCheckpoint
gcaCheckpointId: $nid
gcaGID: audit-2
gcaSequenceNumber: 4
gcaCTSName: cts-app
gcaCoreService: app
gcaImageSha256: $(printf '%064d' 0)
gcaLocation: cts-app
EOF
[ $? = 0 ] || fail "ldapadd of a record"
ldm <<EOF
dn: $jobdn
changetype: modify
replace: gcaLastSequence
gcaLastSequence: 4
EOF
# the folder removed above is still missing: two findings, each named
out=$(as_admin gca-ctl --json audit); rc=$?
check "a record added with no image: exit 1, image_missing for it and for the folder removed" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["counts"]["image_missing"] == 2 and sum(d["counts"].values()) == 2, d
assert sorted(f["checkpoint"] for f in d["findings"]) == sorted(sys.argv[2:]), d' "$out" "$nid" "$id"
expect_eq "  (exit 1)" "$rc" 1
ldapdelete -x -ZZ -H "$GCA_LDAP_URI" -D "$bind" -w "$pw" "gcaCheckpointId=$nid,$jobdn"
# mend audit-1's second image: a copy of the third (its manifest names the third) is no copy of it
cp -a "$TEST_TMP/keep3" "$store/audit-1/$id"
audit_is 1 image_bad "audit-1 +$id .*the manifest of checkpoint $id has sha256"
rm -rf "$store/audit-1/$id"
ldm <<EOF
dn: gcaCheckpointId=$id,$(lds '(&(objectClass=gcaJob)(gcaGID=audit-1))' dn | sed -n 's/^dn: //p')
changetype: modify
replace: gcaStatus
gcaStatus: expired
EOF
audit_is 0 ""
pass "an expired record without an image is no finding"

# -- an image with no record --
uid=01900000-0000-7000-8000-000000000002
cp -a "$store/audit-2/${ids[audit-2.1]}" "$store/audit-2/$uid"
audit_is 1 image_unrecorded "audit-2 +$uid +cts-app +an image with no record"
rm -rf "${store:?}/audit-2/$uid"
audit_is 0 ""

# -- a location with no copy (ldapmodify adds cts-criu to a record's gcaLocation): cts-app's copy
# is good, so nothing is lost, but the record names a CTS that does not hold it --
rdn2=$(lds "(gcaCheckpointId=${ids[audit-2.1]})" dn | sed -n 's/^dn: //p')
ldm <<EOF
dn: $rdn2
changetype: modify
add: gcaLocation
gcaLocation: cts-criu
EOF
audit_is 1 copy_bad "audit-2 +${ids[audit-2.1]} +cts-criu +missing: no image folder .*another holder's copy is good"
ldm <<EOF
dn: $rdn2
changetype: modify
delete: gcaLocation
gcaLocation: cts-app
EOF
check "the only holder named has no copy, the copy held is not named: image_missing and image_unrecorded" python3 -c '
import json, sys
d = json.loads(sys.argv[1]); c = d["counts"]
assert c["image_missing"] == 1 and c["image_unrecorded"] == 1 and sum(c.values()) == 2, d
assert any("does not name this CTS" in f["detail"] for f in d["findings"]), d' "$(as_admin gca-ctl --json audit)"
ldm <<EOF
dn: $rdn2
changetype: modify
replace: gcaLocation
gcaLocation: cts-app
EOF
audit_is 0 ""

# -- a sequence gap and a repeat (ldapmodify) --
rdn() { lds "(gcaCheckpointId=$1)" dn | sed -n 's/^dn: //p'; }
setseq() { ldm <<EOF
dn: $(rdn "$1")
changetype: modify
replace: gcaSequenceNumber
gcaSequenceNumber: $2
EOF
}
setseq "${ids[audit-2.3]}" 2
audit_is 1 seq_repeat "audit-2 +${ids[audit-2.3]} +cts-app +sequence number 2 is also checkpoint"
setlast() { ldm <<EOF
dn: $jobdn
changetype: modify
replace: gcaLastSequence
gcaLastSequence: $1
EOF
}
setlast 6
setseq "${ids[audit-2.3]}" 6
audit_is 1 seq_gap "audit-2 +- +- +no record has sequence numbers 3 to 5"
setlast 5
check "gcaLastSequence below a recorded number: seq_repeat (and the gap)" python3 -c '
import json, sys
d = json.loads(sys.argv[1]); c = d["counts"]
assert c["seq_repeat"] == 1 and c["seq_gap"] == 1 and sum(c.values()) == 2, d
assert any("gcaLastSequence 5 is below the highest recorded number 6" in f["detail"] for f in d["findings"]), d' "$(as_admin gca-ctl --json audit)"
setlast 6
setseq "${ids[audit-2.3]}" 3
audit_is 0 ""

# -- retention at work (gca-site keeps 10 per job): the oldest copy removed, its record expired --
for k in $(seq 4 12); do gca-ctl checkpoint audit-1 >/dev/null 2>&1 || fail "checkpoint $k of audit-1"; done
check "retention removed audit-1's first image and expired its record" wait_for 15 sh -c "[ ! -e '$store/audit-1/${ids[audit-1.1]}' ] && ldapsearch -LLL -x -ZZ -H '$GCA_LDAP_URI' -D '$bind' -w '$pw' -b 'ou=jobs,$GCA_BASE_DN' '(gcaCheckpointId=${ids[audit-1.1]})' gcaStatus | grep -q expired"
audit_is 0 ""

# -- a bound job lost from its CTS's state: the CTS killed, the job gone, its line removed --
start_job audit-3 "$TEST_TMP/audit-3.log" || fail "audit-3 runs"
job3=$!
cts_pid=$(cat "$site/cts-app.pid")
kill -9 "$cts_pid"
kill -9 "$job3"; wait "$job3" 2>/dev/null	# its job dies with it (PR_SET_PDEATHSIG)
# the CTS is down: named, exit 2, whatever else
out=$(as_admin gca-ctl audit 2>&1); rc=$?
case "$rc $out" in "2 "*"not checked: cts-app"*incomplete*) pass "a CTS killed: exit 2, named under not checked" ;; *) fail "a CTS killed: exit 2, named" "$rc $out" ;; esac
check "a CTS killed: --json complete false" python3 -c '
import json, sys
d = json.loads(sys.argv[1]); assert not d["complete"] and d["unchecked"][0].startswith("cts-app: "), d' "$(as_admin gca-ctl --json audit)"
sed -i '/ audit-3$/d' "$site/cts/cts-app/jobs"
check "gca-site up restarts the CTS" gca-site up "$site"
wait_for 20 sh -c ". '$site/admin.env'; gca-ctl audit >/dev/null 2>&1; [ \$? != 2 ]"
audit_is 1 job_unknown "audit-3 +- +cts-app +bound to this CTS .*which does not hold it"
ldm <<EOF
dn: $(lds '(&(objectClass=gcaJob)(gcaGID=audit-3))' dn | sed -n 's/^dn: //p')
changetype: modify
replace: gcaJobState
gcaJobState: finished
EOF
audit_is 0 ""
done_testing
