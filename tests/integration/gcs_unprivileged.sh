# gca-gcs needs nothing of root (issue 20.3): `gca-site up` run as root starts it as an
# unprivileged user (default gca, made when missing; or --gcs-user UID), with no capability and
# no_new_privs, owning its key, its directory identity and its log; the site works through it.
# timeout: 180
. "$GCA_TOP/tests/lib.sh"
test_tmpdir
site=$TEST_TMP/site
export GCA_SITE_HEARTBEAT=1
on_exit "gca-site down $site"
[ "$(id -u)" = 0 ] || not_run gcs_unprivileged "gca-site drops the GCS's privileges only when run as root"
command -v setpriv >/dev/null || not_run gcs_unprivileged "setpriv (util-linux) is not installed"
counter=$GCA_BUILD/examples/counter

status_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# $1: what the GCS runs as (a uid), $2: a gid for the job
check_gcs() {
	local want=$1 pid
	pid=$(cat "$site/gcs.pid")
	check "gca-gcs runs ($pid)" test "$(cat "/proc/$pid/comm" 2>/dev/null)" = gca-gcs
	expect_eq "its uid (/proc/PID/status) is $want, not 0" "$(status_of "$pid" Uid)" "$want"
	expect_eq "its CapEff is 0" "$(status_of "$pid" CapEff)" 0000000000000000
	expect_eq "its CapBnd is 0 (nothing to regain)" "$(status_of "$pid" CapBnd)" 0000000000000000
	expect_eq "no_new_privs is set" "$(status_of "$pid" NoNewPrivs)" 1
	expect_eq "its TLS key is its own" "$(stat -c %u "$site/pki/gcs-gcs-1.key")" "$want"
	expect_eq "its directory identity is its own (0600)" "$(stat -c %u:%a "$site/gcs-directory.conf")" "$want:600"
	expect_eq "its log is its own" "$(stat -c %u "$site/log/gcs.log")" "$want"
	check "a checkpoint through it ($2)" wait_for 15 gca-ctl checkpoint "$2"
}

check "gca-site up as root" gca-site up "$site"
. "$site/site.env"
gca_uid=$(id -u gca 2>/dev/null)
check "the user gca exists (made by gca-site when missing)" test -n "$gca_uid"
gid=unpriv-1
log=$TEST_TMP/counter.log
gca-exec --gid "$gid" -- "$counter" --log "$log" --tick 20 &
job=$!
on_exit "kill -9 $job"
check "a job runs under gca-exec" wait_for 10 grep -q 'counter 3' "$log"
check_gcs "$gca_uid" "$gid"

# A numeric uid with no account behind it.
check "gca-site down" gca-site down "$site"
check "gca-site up --gcs-user 64999" gca-site up "$site" --gcs-user 64999
check_gcs 64999 "$gid"
n=$(ldapsearch -x -LLL -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" "(&(objectClass=gcaCheckpoint)(gcaGID=$gid))" dn | grep -c '^dn:')
expect_eq "both checkpoints are recorded" "$n" 2
check "gca-site up again keeps the user (site.conf)" sh -c "gca-site down '$site' && gca-site up '$site' && test \$(awk '\$1==\"Uid:\"{print \$2}' /proc/\$(cat '$site/gcs.pid')/status) = 64999"
done_testing
