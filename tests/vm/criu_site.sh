# tests/vm/criu_site.sh: what the criu VM suites share, up to the guest's scenario.
# Sourced by tests/vm/criu.sh and criu_incr.sh (after tests/lib.sh and lab.sh), with S (the
# suite's name) and CRIU_CTS_MORE (the guest's extra cts.conf lines) set. It checks what the suite
# needs (not_run otherwise), builds the test job, the kernel and the initramfs, brings the site up
# on the host (PKI naming 10.0.2.2, gca-site, site.env) and writes the guest CTS's identity,
# descriptor and cts.conf into the 9p share (criu_site_cts). Sets T, job, site, share, gcs_port,
# fwd, suite_t0 and since().
suite_t0=$(date +%s.%N)
why=$(lab_usable)
[ -z "$why" ] || not_run $S "$why"
command -v criu >/dev/null || not_run $S "criu is not installed (make deps)"
command -v ldapsearch >/dev/null || not_run $S "ldapsearch is not installed (make deps)"
# the programs under test: one that did not build is a failure, not a part missing here
for p in gca-cts gca-exec gca-recover gca-gcs gca-ctl; do
	[ -x "$GCA_BUILD/$p" ] || { fail "$GCA_BUILD/$p is built (make)"; exit 1; }
done
test_tmpdir
T=$TEST_TMP
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

# ---- the job, the kernel, the initramfs ----
job=$LAB_CACHE/job
mkdir -p "$LAB_CACHE"
if [ ! -x "$job" ] || [ "$GCA_TOP/tests/vm/guest/job.c" -nt "$job" ]; then
	cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$job" "$GCA_TOP/tests/vm/guest/job.c" ||
		{ fail "the test job builds"; exit 1; }
fi
lab_kernel 2>"$T/kernel.err" || not_run $S "no Debian 12 kernel: $(cat "$T/kernel.err")"
pass "Debian 12 kernel $LAB_KREL (apt-get download, unpacked, not installed)"
t=$(date +%s.%N)
lab_initramfs "$(command -v criu)" "$GCA_BUILD/gca-cts" "$GCA_BUILD/gca-exec" \
	"$GCA_BUILD/gca-recover" "$job" || { fail "the initramfs builds"; exit 1; }
pass "initramfs with busybox, criu, gca-cts, gca-exec, gca-recover and the net/virtio/9p modules ($(since "$t") s)"

# ---- the site on the host; the guest CTS's identity and configuration ----
site=$T/site
share=$T/share
mkdir -p "$share" "$site"
# The guest dials the GCS at 10.0.2.2: its certificate must name that address too.
gca-pki init "$site/pki" >/dev/null &&
	gca-pki issue "$site/pki" gcs gcs-1 --host 127.0.0.1 --host ::1 --host localhost --host 10.0.2.2 >/dev/null ||
	{ fail "the site's PKI"; exit 1; }
on_exit "gca-site down '$site'"
GCA_SITE_HEARTBEAT=2 gca-site up "$site" >"$T/site.log" 2>&1 || { fail "gca-site up"; cat "$T/site.log" | sed 's/^/#   /'; exit 1; }
. "$site/site.env"
gcs_port=${GCA_GCS_ENDPOINT##*:}
free_host_port() {
	local p
	for p in $(shuf -i 20000-30000 -n 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}
# criu_site_cts NAME SHARE ENDPOINT GCS MIGRATION MORE [HOST...]: a guest's CTS of core service
# criu, in SHARE (the guest's /mnt/share): its certificate (naming each HOST) and the CA, its
# descriptor (gcaMigration MIGRATION) and its cts.conf: listening on port 7000 of the guest,
# published as ENDPOINT, dialling the GCS at GCS, the lines MORE added.
criu_site_cts() {
	local name=$1 dir=$2 ep=$3 gcs=$4 mig=$5 more=$6 h hosts=()
	shift 6
	for h in "$@"; do hosts+=(--host "$h"); done
	gca-pki issue "$site/pki" cts "$name" "${hosts[@]}" >/dev/null || return 1
	gca-pki issue "$site/pki" sign "$name" >/dev/null || return 1
	mkdir -p "$dir/pki"
	cp -p "$site/pki/ca.crt" "$site/pki/cts-$name.crt" "$site/pki/cts-$name.key" \
	    "$site/pki/sign-$name.crt" "$site/pki/sign-$name.key" "$dir/pki/"
	cat > "$dir/$name.ldif" <<LDIF
dn: cn=$name,ou=cts,$GCA_BASE_DN
gcaCoreService: criu
gcaClass: basic
gcaExternalCheckpoints: TRUE
gcaSelfCheckpointing: TRUE
gcaMigration: $mig
gcaExecuteWrapper: gca-exec
gcaRecoveryWrapper: gca-recover
gcaExecuteParams: GCA_JOB_NAME={gid}
gcaRecoveryParams: GCA_JOB_NAME={gid}
description: the criu CTS $name of a qemu guest (VM suite $S)
LDIF
	cat > "$dir/$name.conf" <<CONF
name $name
core_service criu
descriptor /mnt/share/$name.ldif
listen 0.0.0.0:7000
endpoint $ep
socket /run/$name.sock
gcs $gcs
ca /mnt/share/pki/ca.crt
cert /mnt/share/pki/cts-$name.crt
key /mnt/share/pki/cts-$name.key
sign_cert /mnt/share/pki/sign-$name.crt
sign_key /mnt/share/pki/sign-$name.key
state /tmp/$name
heartbeat 2
$more
CONF
}
# The one guest of criu.sh and criu_incr.sh, on user networking: its CTS is reached through a
# hostfwd on the host's loopback, the GCS at 10.0.2.2. (A suite of several guests on a network of
# its own sets CRIU_SITE_OWN_NETWORK and calls criu_site_cts itself.)
if [ -z "${CRIU_SITE_OWN_NETWORK:-}" ]; then
	fwd=$(free_host_port)
	criu_site_cts cts-vm "$share" "127.0.0.1:$fwd" "10.0.2.2:$gcs_port" FALSE "$CRIU_CTS_MORE" ||
		{ fail "the guest CTS's certificate"; exit 1; }
fi
