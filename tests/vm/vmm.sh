# vmm: the VMM core service for real (issue 9): a job counting inside a QEMU VM started through gca,
# checkpointed by a broker through the GCS, the VM killed, resumed from the latest and from the
# first checkpoint; signals and exit status through the resumer; the errors a user can act on;
# figures (build/bench/vmm-vm.json, bench/ from make test-vmm).
# timeout: 600
#
# The host runs the site (slapd, gca-gcs) and a CTS with core service vmm. The guest is Debian 12's
# kernel with a busybox initramfs holding gca-gate (tests/vm/guest/gca-gate.c) as its only agent
# (tests/vm/guest/vmm-init): no share, no network. The job's own output, streamed through the gate,
# proves where each resumed VM went on from.
. "$GCA_TOP/tests/lib.sh"
. "$GCA_TOP/tests/vm/lab.sh"

S=vmm
suite_t0=$(date +%s.%N)
why=$(lab_usable)
[ -z "$why" ] || not_run $S "$why"
command -v ldapsearch >/dev/null || not_run $S "ldapsearch is not installed (make deps)"
command -v python3 >/dev/null || not_run $S "python3 is not installed (make deps)"
for p in gca-cts gca-gcs gca-ctl vmm-ready-job-executor vmm-ready-job-resumer; do
	[ -x "$GCA_BUILD/$p" ] || not_run $S "$GCA_BUILD/$p is not built (make)"
done
test_tmpdir
# A background child that bash forked but has not exec'd yet still holds the EXIT trap: a signal
# in that window would run test_cleanup there and remove $T under the suite. Only this shell may.
trap '[ "$BASHPID" = "'$$'" ] && test_cleanup' EXIT
T=$TEST_TMP
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
: "${VMM_ACCEL:=tcg}"		# the figures are TCG's unless asked (another qemu may run here)
export TMPDIR=$T			# the wrappers' run folders (kept after a failure) go with the suite

# ---- the guest image: the kernel, an initramfs with gca-gate ----
gate=$LAB_CACHE/gca-gate
mkdir -p "$LAB_CACHE"
if [ ! -x "$gate" ] || [ "$GCA_TOP/tests/vm/guest/gca-gate.c" -nt "$gate" ]; then
	cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$gate" "$GCA_TOP/tests/vm/guest/gca-gate.c" ||
		{ fail "gca-gate builds"; exit 1; }
fi
lab_kernel 2>"$T/kernel.err" || not_run $S "no Debian 12 kernel: $(cat "$T/kernel.err")"
LAB_INIT=$GCA_TOP/tests/vm/guest/vmm-init
LAB_MODULES="drivers/virtio drivers/char/virtio_console.ko drivers/block/virtio_blk.ko"
t=$(date +%s.%N)
lab_initramfs "$gate" || { fail "the initramfs builds"; exit 1; }
pass "guest image: Debian 12 kernel $LAB_KREL, busybox initramfs with gca-gate ($(since "$t") s)"
# the guest is the CTS's (cts.conf vmm_kernel, vmm_initrd): the executor is told it by the CTS
unset GCA_VMM_KERNEL GCA_VMM_INITRD

# ---- the site, and a CTS with core service vmm ----
site=$T/site
on_exit "gca-site down '$site'"
GCA_SITE_HEARTBEAT=2 gca-site up "$site" >"$T/site.log" 2>&1 || { fail "gca-site up"; sed 's/^/#   /' "$T/site.log"; exit 1; }
. "$site/site.env"
gca-pki issue "$site/pki" cts cts-vmm >/dev/null
gca-pki issue "$site/pki" sign cts-vmm >/dev/null
cat > "$T/cts-vmm.ldif" <<LDIF
dn: cn=cts-vmm,ou=cts,$GCA_BASE_DN
gcaCoreService: vmm
gcaClass: basic
gcaExternalCheckpoints: TRUE
gcaSelfCheckpointing: TRUE
gcaMigration: FALSE
gcaExecuteWrapper: vmm-ready-job-executor
gcaRecoveryWrapper: vmm-ready-job-resumer
gcaExecuteParams: GCA_JOB_NAME={gid}
gcaRecoveryParams: GCA_JOB_NAME={gid}
description: the vmm CTS of tests/vm/vmm.sh
LDIF
cts_conf() {
	cat <<CONF
name $1
core_service vmm
descriptor $T/$1.ldif
socket $T/$1.sock
gcs $GCA_GCS_ENDPOINT
ca $site/pki/ca.crt
cert $site/pki/cts-$1.crt
key $site/pki/cts-$1.key
sign_cert $site/pki/sign-$1.crt
sign_key $site/pki/sign-$1.key
state $T/$1
heartbeat 2
retention 10
vmm_timeout 60
listen 127.0.0.1:0
$2
CONF
}
cts_conf cts-vmm "vmm_kernel $LAB_VMLINUZ
vmm_initrd $LAB_INITRD" > "$T/cts-vmm.conf"
gca-cts -f "$T/cts-vmm.conf" >>"$T/cts-vmm.log" 2>&1 &
cts_pid=$!
on_exit "kill $cts_pid"
wait_for 10 test -S "$T/cts-vmm.sock" || { fail "gca-cts cts-vmm starts" "$(tail -3 "$T/cts-vmm.log")"; exit 1; }
export GCA_CTS_SOCKET=$T/cts-vmm.sock
cts_entry() { ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "cn=$1,ou=cts,$GCA_BASE_DN" -s base "$2" 2>/dev/null; }
wait_for 15 bash -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b 'cn=cts-vmm,ou=cts,$GCA_BASE_DN' -s base gcaStatus 2>/dev/null | grep -q 'gcaStatus: ok'"
expect_eq "cts-vmm is published ok (ldapsearch)" "$(cts_entry cts-vmm gcaStatus | awk '/^gcaStatus:/ { print $2 }')" ok
qv=$(qemu-system-x86_64 --version | awk '/version/ { print $4; exit }')
check "cts-vmm publishes its probe: qemu=$qv and kvm=yes|no (gcaProperty)" \
	bash -c "cts_out=\$(ldapsearch -x -LLL -o ldif-wrap=no -H '$GCA_LDAP_URI' -b 'cn=cts-vmm,ou=cts,$GCA_BASE_DN' -s base gcaProperty); echo \"\$cts_out\" | grep -q 'gcaProperty: qemu=$qv' && echo \"\$cts_out\" | grep -Eq 'gcaProperty: kvm=(yes|no)'"
props=$(cts_entry cts-vmm gcaProperty)
pc=$(qemu-system-x86_64 -machine help | awk '$1 == "pc" { sub(/.*alias of /, ""); sub(/\).*/, ""); print }')
if echo "$props" | grep -qx "gcaProperty: vmm.guest.kernel=$LAB_VMLINUZ" &&
	echo "$props" | grep -qx "gcaProperty: vmm.guest.initrd=$LAB_INITRD" &&
	echo "$props" | grep -qx "gcaProperty: vmm.guest.memory=256" &&
	echo "$props" | grep -qx "gcaProperty: vmm.guest.machine=$pc"; then
	pass "cts-vmm publishes the guest cts.conf names (vmm.guest.kernel, initrd, memory, machine=$pc: pc resolved)"
else
	fail "cts-vmm publishes its guest" "$(echo "$props" | grep vmm.guest)"
fi
check "cts-vmm publishes the machine types its QEMU offers, $pc among them, aliases not (vmm.machine=)" \
	bash -c "echo '$props' | grep -qx 'gcaProperty: vmm.machine=$pc' && ! echo '$props' | grep -qx 'gcaProperty: vmm.machine=pc' && [ \$(echo '$props' | grep -c 'vmm.machine=') -gt 10 ]"

# ---- the job: counts in the guest; TERM makes it say where it stopped and exit 3, USR1 exit 4 ----
# (each line also says the guest's clock, in seconds)
JOB='trap "echo stopped at \$i; exit 3" TERM; trap "exit 4" USR1; i=0; while :; do echo counter $i $(date +%s); i=$((i + 1)); sleep 0.2; done'
t=$(date +%s.%N)
# no --kernel, --initrd, --memory: the CTS's guest
vmm-ready-job-executor --gid vmm-job --accel "$VMM_ACCEL" -- sh -c "$JOB" >"$T/job.out" 2>"$T/exec.err" &
exec_pid=$!
on_exit "kill $exec_pid"
if wait_for 90 grep -q '^counter 3' "$T/job.out"; then
	pass "vmm-ready-job-executor started a VM and the job counts in it ($(since "$t") s to counter 3)"
else
	fail "vmm-ready-job-executor started a VM and the job counts in it" "$(tail -3 "$T/exec.err")"
	exit 1
fi
qemu_pid=$(pgrep -P "$exec_pid" | head -1)
check "gca-ctl jobs shows vmm-job on cts-vmm" bash -c "gca-ctl jobs | grep vmm-job | grep -q cts-vmm"

# The broker checkpoints twice; the counter before and after each bounds the point saved.
last() { awk '$1 == "counter" { n = $2 } END { print n + 0 }' "$1"; }
ckpt() {
	local i=$1 lo hi id t
	lo=$(last "$T/job.out"); t=$(date +%s.%N)
	id=$(gca-ctl checkpoint vmm-job 2>"$T/ckpt$i.err" | awk '$1 == "checkpoint" { print $2; exit }')
	secs=$(since "$t")
	sleep 0.3	# lines the guest wrote before it was stopped may still be on their way
	hi=$(last "$T/job.out")
	echo "$lo $hi" > "$T/ckpt$i.range"
	if [ -n "$id" ]; then
		pass "gca-ctl checkpoint vmm-job #$i: $id (counter $lo..$hi, $secs s)"
		echo "$id" > "$T/ckpt$i.id"
	else
		fail "gca-ctl checkpoint vmm-job #$i" "$(cat "$T/ckpt$i.err"; tail -3 "$T/cts-vmm.log")"
	fi
}
ckpt 1
sleep 1.5
ckpt 2
sleep 1
check "the VM runs on after each checkpoint (the job still counts)" \
	bash -c "n=\$(awk '\$1 == \"counter\" { n = \$2 } END { print n }' '$T/job.out'); [ \$n -gt $(awk '{ print $2 }' "$T/ckpt2.range") ]"
recs=$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaGID=vmm-job)(gcaCoreService=vmm))" gcaProperty 2>/dev/null)
expect_eq "two vmm records of vmm-job in the directory (ldapsearch)" "$(echo "$recs" | grep -c '^dn:')" 2
check "each record says what a restore must match (vmm.memory, vmm.machine, vmm.qemu, vmm.devices)" \
	bash -c "[ \$(echo '$recs' | grep -c 'gcaProperty: vmm.memory=268435456') = 2 ] && echo '$recs' | grep -q 'gcaProperty: vmm.machine=$pc' && echo '$recs' | grep -q 'gcaProperty: vmm.qemu=$qv' && echo '$recs' | grep -q 'gcaProperty: vmm.devices=virtio-serial-pci,virtserialport'"
check "records carry what the image needs, not what the resource offers (no vmm.guest.* on them)" \
	bash -c "! echo '$recs' | grep -q 'vmm.guest'"
conf1=$(find "$T/cts-vmm/images" -path "*$(cat "$T/ckpt1.id")/vm.conf")
expect_eq "vm.conf records the machine QEMU ran, $pc, where the command line said the alias pc" \
	"$(grep -A1 -x 'arg -machine' "$conf1" | tail -1)" "arg $pc"

# ---- the VM dies; the executor says so ----
kill -9 "$qemu_pid"
wait "$exec_pid"; rc=$?
expect_eq "the VM killed: vmm-ready-job-executor exits 1" "$rc" 1
check "... saying the VM ended before the job" grep -q 'the VM ended' "$T/exec.err"
killed=$(last "$T/job.out")
echo "mark killed" >> "$T/job.out"

# ---- resumed from the latest checkpoint; SIGTERM reaches the job, its status 3 comes back ----
in_range() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le $(($3 + 1)) ]; }
first_after() { awk -v m="$2" 'f && $1 == "counter" { print $2; exit } $0 == m { f = 1 }' "$1"; }
t=$(date +%s.%N)
vmm-ready-job-resumer --gid vmm-job --checkpoint latest >>"$T/job.out" 2>"$T/res1.err" &
res_pid=$!
on_exit "kill $res_pid"
wait_for 60 bash -c "awk 'f && /^counter/ { ok = 1 } /^mark killed/ { f = 1 } END { exit !ok }' '$T/job.out'"
r1=$(first_after "$T/job.out" "mark killed")
read -r lo2 hi2 < "$T/ckpt2.range"
if in_range "$r1" "$lo2" "$hi2" && [ "$r1" -le "$killed" ]; then
	pass "resumed from the latest checkpoint: the job went on at counter $r1 (saved at $lo2..$hi2, killed at $killed; $(since "$t") s)"
else
	fail "resumed from the latest checkpoint where it was saved" "first counter '$r1', window $lo2..$hi2; $(tail -3 "$T/res1.err")"
fi
grep -o 'resumed from .*' "$T/res1.err" | sed 's/^/# /'
rq=$(pgrep -P "$res_pid" | head -1)
check "the resumer starts QEMU paused (-S) with -incoming defer, and sends cont itself" \
	bash -c "tr '\\0' ' ' < /proc/$rq/cmdline | grep -q -- ' -S -incoming defer'"
sleep 1
check "gca-ctl jobs shows vmm-job bound again" bash -c "gca-ctl jobs | grep vmm-job | grep -q cts-vmm"
kill -TERM "$res_pid"; wait "$res_pid"; rc=$?
expect_eq "SIGTERM to the resumer reached the job in the VM; its exit status 3 came back" "$rc" 3
check "the resumed job said where it stopped" grep -q '^stopped at' "$T/job.out"
echo "mark resume2" >> "$T/job.out"

# ---- resumed from the first checkpoint; SIGUSR1 -> 4 ----
vmm-ready-job-resumer --gid vmm-job --checkpoint "$(cat "$T/ckpt1.id")" >>"$T/job.out" 2>"$T/res2.err" &
res_pid=$!
on_exit "kill $res_pid"
wait_for 60 bash -c "awk 'f && /^counter/ { ok = 1 } /^mark resume2/ { f = 1 } END { exit !ok }' '$T/job.out'"
r2=$(first_after "$T/job.out" "mark resume2")
read -r lo1 hi1 < "$T/ckpt1.range"
if in_range "$r2" "$lo1" "$hi1"; then
	pass "resumed from the first checkpoint id: the job went on at counter $r2 (saved at $lo1..$hi1)"
else
	fail "resumed from the first checkpoint id" "first counter '$r2', window $lo1..$hi1; $(tail -3 "$T/res2.err")"
fi
# the guest's clock stood still from checkpoint 1 until now; the resumer sets it again
stale=$(awk -v m="mark resume2" 'f && $1 == "counter" { print $3; exit } $0 == m { f = 1 }' "$T/job.out")
wait_for 10 bash -c "[ \$(awk -v m='mark resume2' 'f && \$1 == \"counter\" { n++ } \$0 == m { f = 1 } END { print n + 0 }' '$T/job.out') -ge 8 ]"
now=$(date +%s); guest=$(awk '$1 == "counter" { d = $3 } END { print d }' "$T/job.out")
if [ -n "$guest" ] && [ $((now - guest)) -le 2 ] && [ $((guest - now)) -le 2 ]; then
	pass "the resumed guest's clock is the host's again (guest $guest, host $now; $((now - ${stale:-now})) s behind right after the load)"
else
	fail "the resumed guest's clock is reset" "guest $guest, host $now, first line after resume $stale"
fi

# The CTS's QMP client does not block its loop: a VM whose QMP never answers (a stand-in QEMU that
# accepts and stays silent) fails its own checkpoint after the QMP timeout, while the resumed VM
# is checkpointed meanwhile as if nothing were waiting.
cat > "$T/mute-qemu" <<'PY'
#!/usr/bin/env python3
import socket, sys, time
a = sys.argv
paths = [a[a.index("-qmp") + 1][5:].split(",")[0]]
paths += [kv[5:] for kv in a[a.index("-chardev") + 1].split(",") if kv.startswith("path=")]
socks = []
for p in paths:
    s = socket.socket(socket.AF_UNIX); s.bind(p); s.listen(4); socks.append(s)
open(sys.argv[0] + ".ready", "w").write("ready")

time.sleep(60)
PY
# GID QEMU: the executor with a stand-in QEMU, which writes QEMU.ready; waits until it is bound
fake_vm() {
	chmod +x "$2"
	vmm-ready-job-executor --gid "$1" --qemu "$2" --gate-timeout 30 -- true >/dev/null 2>"$T/$1.err" &
	fake_pid=$!
	on_exit "kill $fake_pid"
	wait_for 10 test -s "$2.ready"
	wait_for 10 bash -c "gca-ctl jobs | grep -q '$1'"
}
fake_vm vmm-mute "$T/mute-qemu"
mute_pid=$fake_pid
t=$(date +%s.%N)
gca-ctl checkpoint vmm-mute >"$T/mute.ck" 2>&1 &
mute_ck=$!
sleep 0.5
id=$(gca-ctl checkpoint vmm-job 2>"$T/ckpt3.err" | awk '$1 == "checkpoint" { print $2; exit }')
echo "$id" > "$T/ckpt3.id"
s3=$(since "$t")
if [ -n "$id" ] && kill -0 "$mute_ck" 2>/dev/null; then
	pass "a resumed VM is checkpointed ($s3 s) while another VM's QMP keeps a checkpoint waiting"
else
	fail "a resumed VM is checkpointed while another VM's QMP is silent" "$(cat "$T/ckpt3.err" "$T/mute.ck")"
fi
wait "$mute_ck"; rc=$?
if [ $rc != 0 ] && grep -q 'did not answer on QMP within' "$T/mute.ck"; then
	pass "the silent QMP fails its checkpoint after the QMP timeout ($(since "$t") s): $(head -1 "$T/mute.ck")"
else
	fail "the silent QMP fails its checkpoint" "rc $rc: $(cat "$T/mute.ck")"
fi
kill "$mute_pid" 2>/dev/null; wait "$mute_pid" 2>/dev/null

# A bound "QEMU" whose QMP path is a socket served by another process (a user who swapped the path
# between the CTS's check and its connect, to point a root CTS at another VM): refused, named.
cat > "$T/swap-qemu" <<'PY'
#!/usr/bin/env python3
import os, socket, sys, time
a = sys.argv
qmp = a[a.index("-qmp") + 1][5:].split(",")[0]
gate = [kv[5:] for kv in a[a.index("-chardev") + 1].split(",") if kv.startswith("path=")][0]
g = socket.socket(socket.AF_UNIX); g.bind(gate); g.listen(1)
if os.fork() == 0:	# another process serves "our" QMP socket, and speaks QMP
    s = socket.socket(socket.AF_UNIX); s.bind(qmp); s.listen(4)
    open(sys.argv[0] + ".ready", "w").write(str(os.getpid()))
    while True:
        c, _ = s.accept()
        c.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\n')
        f = c.makefile("r")
        for line in f:
            c.sendall(b'{"return": {}}\n')
time.sleep(60)
PY
fake_vm vmm-swap "$T/swap-qemu"
swap_pid=$fake_pid
other=$(cat "$T/swap-qemu.ready" 2>/dev/null)
on_exit "kill $other"
out=$(gca-ctl checkpoint vmm-swap 2>&1); rc=$?
if [ $rc != 0 ] && echo "$out" | grep -q "served by process $other .*not by the bound QEMU"; then
	pass "a QMP socket served by another process than the bound QEMU is refused: $(echo "$out" | head -1)"
else
	fail "a QMP socket served by another process is refused" "rc $rc: $out"
fi
kill "$swap_pid" "$other" 2>/dev/null; wait "$swap_pid" 2>/dev/null
kill -USR1 "$res_pid"; wait "$res_pid"; rc=$?
expect_eq "SIGUSR1 to the resumer reached the job; its exit status 4 came back" "$rc" 4

# ---- a job asks for its own checkpoint (gca-gate checkpoint in the guest) ----
SELF='r=$(gca-gate checkpoint); echo "asked: $r"; i=0; while :; do echo tick $i; i=$((i + 1)); sleep 0.2; done'
vmm-ready-job-executor --gid vmm-self --accel "$VMM_ACCEL" -- sh -c "$SELF" >"$T/self.out" 2>"$T/self.err" &
self_pid=$!
on_exit "kill $self_pid"
if wait_for 90 grep -q '^tick 2' "$T/self.out" && grep -q '^asked: checkpoint ' "$T/self.out"; then
	self_id=$(awk '/^asked: checkpoint / { print $3; exit }' "$T/self.out")
	pass "a job in a VM asked for its own checkpoint and got its id: $self_id"
else
	fail "a job in a VM asks for its own checkpoint" "$(cat "$T/self.out" | head -3; tail -3 "$T/self.err")"
fi
expect_eq "its record is in the directory as kind job (ldapsearch)" "$(ldapsearch -x -LLL -o ldif-wrap=no -H "$GCA_LDAP_URI" -b "ou=jobs,$GCA_BASE_DN" \
	"(&(objectClass=gcaCheckpoint)(gcaGID=vmm-self))" gcaCheckpointKind 2>/dev/null | awk '/^gcaCheckpointKind:/ { print $2 }')" job
kill -9 "$(pgrep -P "$self_pid" | head -1)"; wait "$self_pid" 2>/dev/null
echo "mark killed" >> "$T/self.out"
vmm-ready-job-resumer --gid vmm-self --checkpoint latest >>"$T/self.out" 2>"$T/self-res.err" &
self_res=$!
on_exit "kill $self_res"
wait_for 60 bash -c "awk 'f && /^tick/ { ok = 1 } /^mark killed/ { f = 1 } END { exit !ok }' '$T/self.out'"
after=$(awk 'f && /^asked:/ { print; exit } /^mark killed/ { f = 1 }' "$T/self.out")
expect_eq "resumed from it, the job's request answers \"restored\" and it goes on from there" "$after" "asked: restored ${self_id:-?}"
kill -TERM "$self_res"; wait "$self_res" 2>/dev/null

# ---- a user's VM resumed by root: QEMU runs as the user again, never as root ----
if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	mkdir -p "$T/nobody" && chown nobody "$T/nobody"	# its run folders
	# setpriv and env exec: $! is the executor itself
	setpriv --reuid nobody --regid "$(id -gn nobody)" --clear-groups env TMPDIR="$T/nobody" \
		vmm-ready-job-executor --gid vmm-user --accel "$VMM_ACCEL" -- sh -c "$JOB" >"$T/user.out" 2>"$T/user.err" &
	user_pid=$!
	on_exit "kill $user_pid"
	if wait_for 90 grep -q '^counter 2' "$T/user.out"; then
		uq=$(pgrep -P "$user_pid" | head -1)
		on_exit "kill $uq"
		expect_eq "a VM started by user nobody runs as nobody" "$(ps -o user=,comm= -p "$uq" | xargs)" "nobody qemu-system-x86"
		id=$(gca-ctl checkpoint vmm-user 2>"$T/user.ck" | awk '$1 == "checkpoint" { print $2; exit }')
		[ -n "$id" ] || fail "gca-ctl checkpoint of nobody's VM" "$(cat "$T/user.ck")"
		kill -9 "$uq"; wait "$user_pid" 2>/dev/null
		echo "mark killed" >> "$T/user.out"
		TMPDIR="$T/nobody" vmm-ready-job-resumer --gid vmm-user --checkpoint latest >>"$T/user.out" 2>"$T/user-res.err" &
		ures=$!
		on_exit "kill $ures"
		if wait_for 60 bash -c "awk 'f && /^counter/ { ok = 1 } /^mark killed/ { f = 1 } END { exit !ok }' '$T/user.out'"; then
			uq=$(pgrep -P "$ures" | head -1)
			on_exit "kill $uq"
			expect_eq "resumed by root, nobody's VM runs as nobody again (the recorded command line is the user's)" \
				"$(ps -o user= -p "$uq") $(ps -o user= -p "$ures")" "nobody nobody"
		else
			fail "root resumes nobody's VM" "$(tail -3 "$T/user-res.err")"
		fi
		kill -TERM "$ures"; wait "$ures" 2>/dev/null
	else
		fail "user nobody starts a VM job" "$(tail -3 "$T/user.err")"
	fi
else
	echo "$S: not run: root resuming a user's VM (needs root, setpriv and user nobody)"
fi

# ---- disks (issue 24): a writable qcow2 disk per job, its layers in every checkpoint ----
# The job reads its disk (/dev/vda, O_DIRECT: not the guest's page cache) and then writes its
# counter there, so every line says "disk N [cM]" with M = N-1 only if the disk a VM sees is the
# one of its memory's instant. Checkpoints A and B of the VM, C of the VM resumed from A: each
# resume (from B, from A, from C through the resumer's own layer) must go on consistently.
if command -v qemu-img >/dev/null; then
DJOB='i=0; while :; do d=$(dd if=/dev/vda bs=4096 count=1 iflag=direct 2>/dev/null | tr -d "\000"); echo "disk $i [$d]"; echo "c$i" | dd of=/dev/vda bs=4096 count=1 conv=sync,notrunc oflag=direct 2>/dev/null; i=$((i + 1)); sleep 0.2; done'
qemu-img create -q -f qcow2 "$T/base.qcow2" 64M
base_sum=$(sha256sum < "$T/base.qcow2")
dlast() { awk '$1 == "disk" { n = $2 } END { print n + 0 }' "$1"; }
# lines after MARK: the first N, and whether the first 6 all read what the line before wrote
dfirst() { awk -v m="$2" 'f && $1 == "disk" { print $2; exit } $0 == m { f = 1 }' "$1"; }
dconsistent() { awk -v m="$2" 'f && $1 == "disk" && k < 6 { k++; if ($3 != "[c" ($2 - 1) "]") bad = bad " " $0 } $0 == m { f = 1 } END { if (k < 6) print "only " k " lines"; else if (bad != "") print bad }' "$1"; }
dckpt() {	# NAME: a checkpoint of vmm-disk, its counter window in $T/disk-NAME.range
	local lo id t
	lo=$(dlast "$T/disk.out"); t=$(date +%s.%N)
	id=$(gca-ctl checkpoint vmm-disk 2>"$T/disk-$1.err" | awk '$1 == "checkpoint" { print $2; exit }')
	local secs=$(since "$t")
	sleep 0.3
	echo "$lo $(dlast "$T/disk.out")" > "$T/disk-$1.range"
	if [ -n "$id" ]; then
		echo "$id" > "$T/disk-$1.id"
		pass "checkpoint $1 of a VM with a disk: $id (counter $(cat "$T/disk-$1.range"), $secs s)"
	else
		fail "checkpoint $1 of a VM with a disk" "$(cat "$T/disk-$1.err"; tail -3 "$T/cts-vmm.log")"
	fi
}
dresume() {	# NAME [CTS]: resumed from checkpoint NAME (at CTS cts-vmm or CTS), checked; QEMU's pid in dq
	local mark="mark disk $1 ${2:-}" lo hi r bad
	echo "$mark" >> "$T/disk.out"
	vmm-ready-job-resumer --gid vmm-disk --checkpoint "$(cat "$T/disk-$1.id")" --cts "$T/${2:-cts-vmm}.sock" >>"$T/disk.out" 2>"$T/disk-res-$1.err" &
	dres=$!
	on_exit "kill $dres"
	wait_for 60 bash -c "[ \$(awk -v m='$mark' 'f && \$1 == \"disk\" { n++ } \$0 == m { f = 1 } END { print n + 0 }' '$T/disk.out') -ge 6 ]"
	read -r lo hi < "$T/disk-$1.range"
	r=$(dfirst "$T/disk.out" "$mark"); bad=$(dconsistent "$T/disk.out" "$mark")
	if in_range "$r" "$lo" "$hi" && [ -z "$bad" ]; then
		pass "resumed from checkpoint $1${2:+ on $2}: the job goes on at $r (saved at $lo..$hi) and reads the disk of that instant"
	else
		fail "resumed from checkpoint $1 with its disk" "first $r, window $lo..$hi; $bad; $(tail -2 "$T/disk-res-$1.err")"
	fi
	dq=$(pgrep -P "$dres" | head -1)
}
t=$(date +%s.%N)
vmm-ready-job-executor --gid vmm-disk --accel "$VMM_ACCEL" --disk "$T/base.qcow2" -- sh -c "$DJOB" >"$T/disk.out" 2>"$T/disk.err" &
dexec=$!
on_exit "kill $dexec"
if wait_for 90 bash -c "[ \$(awk '\$1 == \"disk\"' '$T/disk.out' | wc -l) -ge 4 ]"; then
	bad=$(awk '$1 == "disk" && $2 > 0 && $3 != "[c" ($2 - 1) "]"' "$T/disk.out" | head -2)
	if [ -z "$bad" ]; then
		pass "a VM job with --disk base.qcow2 writes and reads its disk ($(since "$t") s to 4 lines)"
	else
		fail "the job reads back what it wrote to its disk" "$bad"
	fi
	dckpt A
	sleep 1
	dckpt B
	ida=$(cat "$T/disk-A.id" 2>/dev/null); idb=$(cat "$T/disk-B.id" 2>/dev/null)
	da=$(find "$T/cts-vmm/images" -type d -name "$ida"); db=$(find "$T/cts-vmm/images" -type d -name "$idb")
	expect_eq "checkpoint B's image names A as its parent (manifest), A none" \
		"$(awk '$1 == "parent" { print $2 }' "$db/manifest") $(awk '$1 == "parent" { print $2 }' "$da/manifest")" "$ida -"
	check "each image holds its own disk layer, sealed in its manifest (gca-disk0.qcow2)" \
		bash -c "grep -q ' gca-disk0.qcow2\$' '$da/manifest' && grep -q ' gca-disk0.qcow2\$' '$db/manifest'"
	expect_eq "B's layer names its backing file relatively (qemu-img info: parent/gca-disk0.qcow2)" \
		"$(qemu-img info --output=json "$db/gca-disk0.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("backing-filename"))')" "parent/gca-disk0.qcow2"
	sums_before=$(sha256sum "$da/gca-disk0.qcow2" "$db/gca-disk0.qcow2")
	kill -9 "$(pgrep -P "$dexec" | head -1)"; wait "$dexec" 2>/dev/null
	dresume B; kill -9 "$dq"; wait "$dres" 2>/dev/null
	dresume A
	dckpt C
	expect_eq "checkpoint C of the VM resumed from A stands on A (manifest parent)" \
		"$(awk '$1 == "parent" { print $2 }' "$(find "$T/cts-vmm/images" -type d -name "$(cat "$T/disk-C.id")")/manifest")" "$ida"
	kill -9 "$dq"; wait "$dres" 2>/dev/null
	dresume C; kill -9 "$dq"; wait "$dres" 2>/dev/null
	expect_eq "no restore changed a layer the checkpoints hold (sha256 of A's and B's)" \
		"$(sha256sum "$da/gca-disk0.qcow2" "$db/gca-disk0.qcow2")" "$sums_before"
	expect_eq "the base image is never written" "$(sha256sum < "$T/base.qcow2")" "$base_sum"
	# ---- moved: another vmm CTS (gcaMigration TRUE) fetches B and its parent A, with a grant ----
	vcts() {	# NAME CONF-LINES: a second vmm CTS that takes other resources' images
		gca-pki issue "$site/pki" cts "$1" >/dev/null
		gca-pki issue "$site/pki" sign "$1" >/dev/null
		sed "s/cts-vmm/$1/; s/gcaMigration: FALSE/gcaMigration: TRUE/" "$T/cts-vmm.ldif" > "$T/$1.ldif"
		cts_conf "$1" "$2" > "$T/$1.conf"
		gca-cts -f "$T/$1.conf" >>"$T/$1.log" 2>&1 &
		on_exit "kill $!"
		wait_for 15 bash -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b 'cn=$1,ou=cts,$GCA_BASE_DN' -s base gcaStatus 2>/dev/null | grep -q 'gcaStatus: ok'"
	}
	vcts cts-vmm2 ""
	dresume B cts-vmm2; kill -9 "$dq"; wait "$dres" 2>/dev/null
	if grep -q "fetched and verified" "$T/cts-vmm2.log" && [ -f "$(find "$T/cts-vmm2/images" -type d -name "$ida")/gca-disk0.qcow2" ]; then
		pass "cts-vmm2 fetched B and its parent A (image_fetch, grant, verified) before resuming: $(grep -c 'fetched and verified' "$T/cts-vmm2.log") images"
	else
		fail "cts-vmm2 fetched B's chain" "$(grep -i 'fetch\|refused' "$T/cts-vmm2.log" | tail -3)"
	fi
	# a resource whose QEMU lacks the image's machine type refuses it before fetching anything
	cat > "$T/qemu-nopc" <<SH
#!/bin/sh
if [ "\$1 \$2" = "-machine help" ]; then qemu-system-x86_64 "\$@" | grep -v "^$pc \\|^pc "; exit 0; fi
exec qemu-system-x86_64 "\$@"
SH
	chmod +x "$T/qemu-nopc"
	vcts cts-vmm3 "vmm_qemu $T/qemu-nopc
vmm_machine q35"
	out=$(vmm-ready-job-resumer --gid vmm-disk --checkpoint "$idb" --cts "$T/cts-vmm3.sock" 2>&1); rc=$?
	if [ $rc = 1 ] && echo "$out" | grep -q "needs machine type $pc (vmm.machine)" && [ ! -d "$T/cts-vmm3/images/vmm-disk" ]; then
		pass "a resource whose QEMU has no $pc refuses the image, nothing fetched: $(echo "$out" | head -1)"
	else
		fail "a resource without the image's machine type refuses it" "rc $rc: $out; $(tail -2 "$T/cts-vmm3.log")"
	fi
	# a layer A holds, damaged: B (which needs it) is refused before QEMU starts
	printf 'X' | dd of="$da/gca-disk0.qcow2" bs=1 seek=70000 conv=notrunc status=none
	out=$(vmm-ready-job-resumer --gid vmm-disk --checkpoint "$idb" 2>&1); rc=$?
	if [ $rc = 1 ] && echo "$out" | grep -q 'gca-disk0.qcow2' && ! echo "$out" | grep -q 'resumed from'; then
		pass "a layer that fails its hash (in the parent) refuses the restore, no VM started: $(echo "$out" | head -1)"
	else
		fail "a damaged layer refuses the restore" "rc $rc: $out"
	fi
else
	fail "a VM job with a disk starts" "$(tail -3 "$T/disk.err")"
fi
kill "$dexec" 2>/dev/null
out=$(vmm-ready-job-executor --gid vmm-nodisk --disk "$T/no-such.qcow2" -- true 2>&1); rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q "no-such.qcow2: No such file"; then pass "a missing base image: $out"
else fail "a missing base image is said" "rc $rc: $out"; fi
head -c 1M /dev/zero > "$T/raw.img"
out=$(vmm-ready-job-executor --gid vmm-nodisk --disk "$T/raw.img" -- true 2>&1); rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q "is not a qcow2 image"; then pass "a base image that is not qcow2: $out"
else fail "a base image that is not qcow2 is refused" "rc $rc: $out"; fi
check "... and no VM was started for them (gca-ctl jobs)" bash -c "! gca-ctl jobs | grep -q vmm-nodisk"
# Retention with disks: a CTS that keeps 1 image keeps every layer the kept one stands on. X1 <- X2
# <- X3 all stay (X3 needs them); the VM resumed from X1 then takes X4 on X1: X2 and X3 go, X1
# stays, and X4 still resumes with its disk.
gca-pki issue "$site/pki" cts cts-vmm4 >/dev/null
gca-pki issue "$site/pki" sign cts-vmm4 >/dev/null
sed "s/cts-vmm/cts-vmm4/" "$T/cts-vmm.ldif" > "$T/cts-vmm4.ldif"
cts_conf cts-vmm4 "vmm_kernel $LAB_VMLINUZ
vmm_initrd $LAB_INITRD
vmm_disk $T/base.qcow2" | sed 's/^retention 10$/retention 1/' > "$T/cts-vmm4.conf"
gca-cts -f "$T/cts-vmm4.conf" >>"$T/cts-vmm4.log" 2>&1 &
on_exit "kill $!"
wait_for 15 bash -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b 'cn=cts-vmm4,ou=cts,$GCA_BASE_DN' -s base gcaStatus 2>/dev/null | grep -q 'gcaStatus: ok'"
expect_eq "cts-vmm4 publishes its cts.conf vmm_disk (gcaProperty vmm.guest.disk)" \
	"$(cts_entry cts-vmm4 gcaProperty | grep -c "^gcaProperty: vmm.guest.disk=$T/base.qcow2\$")" 1
rck() { gca-ctl checkpoint vmm-ret 2>>"$T/ret.err" | awk '$1 == "checkpoint" { print $2; exit }'; }
rdir() { echo "$T/cts-vmm4/images/vmm-ret/$1"; }
echo "mark start" > "$T/ret.out"
vmm-ready-job-executor --cts "$T/cts-vmm4.sock" --gid vmm-ret --accel "$VMM_ACCEL" -- sh -c "$DJOB" >>"$T/ret.out" 2>>"$T/ret.err" &
rexec=$!
on_exit "kill $rexec"
if wait_for 90 bash -c "[ \$(awk '\$1 == \"disk\"' '$T/ret.out' | wc -l) -ge 3 ]"; then
	x1=$(rck); sleep 0.5; x2=$(rck); sleep 0.5; x3=$(rck)
	sleep 1
	check "retention 1: X1, X2 and X3 all stay while X3 stands on X2 and X1" \
		bash -c "[ -n '$x3' ] && [ -d '$(rdir "$x1")' ] && [ -d '$(rdir "$x2")' ] && [ -d '$(rdir "$x3")' ]"
	kill -9 "$(pgrep -P "$rexec" | head -1)"; wait "$rexec" 2>/dev/null
	echo "mark x1" >> "$T/ret.out"
	vmm-ready-job-resumer --cts "$T/cts-vmm4.sock" --gid vmm-ret --checkpoint "$x1" >>"$T/ret.out" 2>>"$T/ret.err" &
	rres=$!
	on_exit "kill $rres"
	wait_for 60 bash -c "[ \$(awk -v m='mark x1' 'f && \$1 == \"disk\" { n++ } \$0 == m { f = 1 } END { print n + 0 }' '$T/ret.out') -ge 3 ]"
	x4=$(rck)
	if [ -n "$x4" ] && wait_for 10 bash -c "[ ! -d '$(rdir "$x2")' ] && [ ! -d '$(rdir "$x3")' ]" && [ -d "$(rdir "$x1")" ] && [ -d "$(rdir "$x4")" ]; then
		pass "retention 1 after X4 (on X1): X2 and X3, which no kept image needs, removed; X1, which X4 needs, kept"
	else
		fail "retention keeps exactly the layers the kept image needs" "x4 '$x4'; $(ls "$T/cts-vmm4/images/vmm-ret" 2>&1 | tr '\n' ' '); $(tail -3 "$T/ret.err")"
	fi
	kill -9 "$(pgrep -P "$rres" | head -1)"; wait "$rres" 2>/dev/null
	echo "mark x4" >> "$T/ret.out"
	vmm-ready-job-resumer --cts "$T/cts-vmm4.sock" --gid vmm-ret --checkpoint "$x4" >>"$T/ret.out" 2>>"$T/ret.err" &
	rres=$!
	on_exit "kill $rres"
	wait_for 60 bash -c "[ \$(awk -v m='mark x4' 'f && \$1 == \"disk\" { n++ } \$0 == m { f = 1 } END { print n + 0 }' '$T/ret.out') -ge 6 ]"
	bad=$(dconsistent "$T/ret.out" "mark x4")
	if [ -z "$bad" ]; then pass "X4 resumes after the retention with the disk of its instant"
	else fail "X4 resumes after the retention" "$bad; $(tail -3 "$T/ret.err")"; fi
	kill -9 "$(pgrep -P "$rres" | head -1)"; wait "$rres" 2>/dev/null
else
	fail "a VM job with a disk starts on cts-vmm4" "$(tail -3 "$T/ret.err")"
fi
kill "$rexec" 2>/dev/null
# a cts.conf vmm_disk that is not qcow2: the CTS is published unavailable, saying why
gca-pki issue "$site/pki" cts cts-rawdisk >/dev/null
gca-pki issue "$site/pki" sign cts-rawdisk >/dev/null
sed "s/cts-vmm/cts-rawdisk/" "$T/cts-vmm.ldif" > "$T/cts-rawdisk.ldif"
cts_conf cts-rawdisk "vmm_disk $T/raw.img" > "$T/cts-rawdisk.conf"
gca-cts -f "$T/cts-rawdisk.conf" >>"$T/cts-rawdisk.log" 2>&1 &
rd_pid=$!
on_exit "kill $rd_pid"
if wait_for 15 bash -c "ldapsearch -x -LLL -o ldif-wrap=no -H '$GCA_LDAP_URI' -b 'cn=cts-rawdisk,ou=cts,$GCA_BASE_DN' -s base gcaStatus description 2>/dev/null | grep -q 'vmm_disk .*raw.img is not a qcow2 image'"; then
	pass "a CTS whose vmm_disk is not qcow2 is published unavailable with the reason (ldapsearch)"
else
	fail "a CTS whose vmm_disk is not qcow2 is unavailable" "$(cts_entry cts-rawdisk '*' | tail -4; tail -2 "$T/cts-rawdisk.log")"
fi
kill $rd_pid 2>/dev/null
else
	echo "$S: not run: VM disks (qemu-img is not installed: make deps, qemu-utils)"
fi

# ---- a disk that fills during a checkpoint (issue 24) ----
# cts-full's image store is a 256 MiB tmpfs in a mount namespace of its own (gone with the CTS).
# The job writes block i of its disk with "c<i>" each turn and first reads blocks 0..i-1 back
# ("fill I ok" only if each holds what the job, in its memory, knows it wrote there). A block is
# 64 KiB, qcow2's cluster: a later write never copies an older block up into a newer layer. At
# turn 10 it also writes 48 MiB beyond those blocks, so that the next layer is larger than 24 MiB.
# The store filled twice: with room for the memory but not the layer (it fails in the seal's
# copy, after cont), then with 8 MiB left (it fails in the migration, the VM stopped). Each fails
# after its snapshot froze the disk's layer: the broker hears why, the VM runs on, checkpoint A is
# untouched. Once space is freed, the next checkpoint takes the layers the failed ones froze (the
# blocks written since A), and its resume reads them back.
if command -v qemu-img >/dev/null && command -v unshare >/dev/null && command -v nsenter >/dev/null &&
	[ "$(id -u)" = 0 ]; then
gca-pki issue "$site/pki" cts cts-full >/dev/null
gca-pki issue "$site/pki" sign cts-full >/dev/null
sed "s/cts-vmm/cts-full/" "$T/cts-vmm.ldif" > "$T/cts-full.ldif"
cts_conf cts-full "vmm_kernel $LAB_VMLINUZ
vmm_initrd $LAB_INITRD" > "$T/cts-full.conf"
mkdir -p "$T/cts-full/images" && chmod 700 "$T/cts-full/images"
# unshare without --fork execs: $! is the CTS itself, and its mount namespace dies with it
unshare -m --propagation private sh -c 'mount -t tmpfs -o size=256m,mode=0700 gca-full "$1" && exec gca-cts -f "$2"' \
	sh "$T/cts-full/images" "$T/cts-full.conf" >>"$T/cts-full.log" 2>&1 &
full_cts=$!
on_exit "kill $full_cts"
infull() { nsenter -t "$full_cts" -m -- "$@"; }
FS=$T/cts-full.sock
FJOB='i=0; w=; while :; do g=$(dd if=/dev/vda bs=65536 count=$i iflag=direct 2>/dev/null | tr -d "\000" | tr "\n" " "); if [ "$g" = "$w" ]; then r=ok; else r=bad; fi; echo "fill $i $r"; echo "c$i" | dd of=/dev/vda bs=65536 seek=$i count=1 conv=sync,notrunc oflag=direct 2>/dev/null; [ $i != 10 ] || dd if=/dev/zero of=/dev/vda bs=1M seek=16 count=48 oflag=direct 2>/dev/null; w="${w}c$i "; i=$((i + 1)); sleep 0.2; done'
flast() { awk '$1 == "fill" { n = $2 } END { print n + 0 }' "$T/fill.out"; }
fck() {	# NAME: gca-ctl checkpoint fill-job; its id in $T/fill-NAME.id, its window in .range
	local lo=$(flast) id rc
	gca-ctl checkpoint fill-job >"$T/fill-$1.ck" 2>&1; rc=$?
	id=$(awk '$1 == "checkpoint" { print $2; exit }' "$T/fill-$1.ck")
	sleep 0.3
	echo "$lo $(flast)" > "$T/fill-$1.range"
	echo "$id" > "$T/fill-$1.id"
	return $rc
}
fsums() { infull sh -c 'cd "$1" && sha256sum * | sort' sh "$T/cts-full/images/fill-job/$1"; }
ffull() {	# NAME FREE-BYTES WHERE: the store filled to FREE bytes, checkpoint NAME fails in WHERE
	local avail rc n
	avail=$(infull df -B1 --output=avail "$T/cts-full/images" | tail -1)
	# a dot file: the CTS's scans of its store skip it
	infull fallocate -l $((avail - $2)) "$T/cts-full/images/.filler-$1"
	fck "$1"; rc=$?
	if [ $rc != 0 ] && grep -qi "$3.*no space left on device" "$T/fill-$1.ck"; then
		pass "checkpoint $1, the store full ($(($2 >> 20)) MiB left), fails in $3, the broker told why (rc $rc): $(grep -i 'no space' "$T/fill-$1.ck" | head -1)"
	else
		fail "checkpoint $1, the store full, fails in $3 with a clear error" "rc $rc: $(cat "$T/fill-$1.ck"; tail -3 "$T/cts-full.log")"
	fi
	n=$(flast)
	check "... the VM runs on after it (the job goes on past $n, its disk reads back right)" \
		bash -c "for i in \$(seq 40); do [ \$(awk '\$1 == \"fill\" { n = \$2 } END { print n + 0 }' '$T/fill.out') -gt $((n + 3)) ] && break; sleep 0.25; done; [ \$(awk '\$1 == \"fill\" { n = \$2 } END { print n + 0 }' '$T/fill.out') -gt $((n + 3)) ] && ! grep -q ' bad\$' '$T/fill.out'"
	expect_eq "... checkpoint A is unchanged (sha256 of each of its files) and the failed one left no folder" \
		"$(fsums "$fa"; infull ls "$T/cts-full/images/fill-job")" "$sums_a
$fa"
}
qemu-img create -q -f qcow2 "$T/base-full.qcow2" 64M
if wait_for 15 bash -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b 'cn=cts-full,ou=cts,$GCA_BASE_DN' -s base gcaStatus 2>/dev/null | grep -q 'gcaStatus: ok'" &&
	[ "$(infull stat -f -c %T "$T/cts-full/images")" = tmpfs ]; then
	vmm-ready-job-executor --cts "$FS" --gid fill-job --accel "$VMM_ACCEL" --disk "$T/base-full.qcow2" -- sh -c "$FJOB" >"$T/fill.out" 2>"$T/fill.err" &
	fexec=$!
	on_exit "kill $fexec"
	if wait_for 90 grep -q '^fill 4 ' "$T/fill.out" && ! grep -q ' bad$' "$T/fill.out"; then
		if fck A; then pass "checkpoint A of fill-job on cts-full: $(cat "$T/fill-A.id")"
		else fail "checkpoint A of fill-job" "$(cat "$T/fill-A.ck")"; fi
		fa=$(cat "$T/fill-A.id")
		sums_a=$(fsums "$fa")
		# blocks that only the layers the failing checkpoints freeze will hold, and 48 MiB
		wait_for 30 grep -q '^fill 12 ' "$T/fill.out"
		ffull B1 $(( $(infull stat -c %s "$T/cts-full/images/fill-job/$fa/vm.state") + (24 << 20) )) 'copying layer'
		sleep 1
		ffull B2 $((8 << 20)) 'migration'
		infull sh -c 'rm -f "$1"/.filler-*' sh "$T/cts-full/images"
		sleep 1
		fck C || fail "checkpoint C of fill-job, space freed" "$(cat "$T/fill-C.ck"; tail -3 "$T/cts-full.log")"
		fc=$(cat "$T/fill-C.id")
		fcm=$(infull cat "$T/cts-full/images/fill-job/$fc/manifest" 2>/dev/null)
		if [ -n "$fc" ] && [ "$(echo "$fcm" | awk '$1 == "parent" { print $2 }')" = "$fa" ] &&
			[ "$(echo "$fcm" | grep -c ' gca-disk0\(\.[12]\)\?\.qcow2$')" = 3 ]; then
			pass "space freed, checkpoint C ($fc) succeeds on A and holds the layers the failed ones froze (gca-disk0.1.qcow2, .2)"
		else
			fail "checkpoint C takes the layers the failed checkpoints froze" "id '$fc': $(echo "$fcm" | grep 'parent\|gca-disk')"
		fi
		expect_eq "... and A is still unchanged" "$(fsums "$fa")" "$sums_a"
		kill -9 "$(pgrep -P "$fexec" | head -1)"; wait "$fexec" 2>/dev/null
		echo "mark killed" >> "$T/fill.out"
		vmm-ready-job-resumer --cts "$FS" --gid fill-job --checkpoint "$fc" >>"$T/fill.out" 2>"$T/fill-res.err" &
		fres=$!
		on_exit "kill $fres"
		wait_for 60 bash -c "[ \$(awk 'f && \$1 == \"fill\" { n++ } \$0 == \"mark killed\" { f = 1 } END { print n + 0 }' '$T/fill.out') -ge 4 ]"
		read -r lo hi < "$T/fill-C.range"
		r=$(awk 'f && $1 == "fill" { print $2; exit } $0 == "mark killed" { f = 1 }' "$T/fill.out")
		bad=$(awk 'f && $1 == "fill" && $3 != "ok" { print } $0 == "mark killed" { f = 1 }' "$T/fill.out")
		nres=$(awk 'f && $1 == "fill" { n++ } $0 == "mark killed" { f = 1 } END { print n + 0 }' "$T/fill.out")
		if in_range "$r" "$lo" "$hi" && [ "$nres" -ge 4 ] && [ -z "$bad" ]; then
			pass "resumed from C: the job goes on at $r (saved at $lo..$hi) and reads back every block, those written between A and the failed checkpoints too"
		else
			fail "resumed from C with every block it wrote" "first '$r', window $lo..$hi, $nres lines; $bad; $(tail -3 "$T/fill-res.err")"
		fi
		kill -TERM "$fres" 2>/dev/null; wait "$fres" 2>/dev/null
	else
		fail "fill-job starts on cts-full and reads back its disk" "$(tail -3 "$T/fill.err"; grep ' bad$' "$T/fill.out" | head -2)"
	fi
	kill "$fexec" 2>/dev/null; wait "$fexec" 2>/dev/null
else
	fail "cts-full starts with its store on a tmpfs" "$(tail -3 "$T/cts-full.log")"
fi
kill "$full_cts" 2>/dev/null; wait "$full_cts" 2>/dev/null
else
	echo "$S: not run: a disk that fills during a checkpoint (needs root, qemu-img, unshare and nsenter)"
fi

# ---- errors a user can act on ----
# The resumer asks the VM it started (paused, nothing loaded) what it is, and refuses to load an
# image taken from another: each difference named. QEMU itself would say "Unknown savevm section".
refused() {	# WHAT PATTERN RESUMER-ARGS...: the resumer refuses latest with PATTERN in its message
	local what=$1 pat=$2 out rc
	shift 2
	out=$(vmm-ready-job-resumer --gid vmm-job --checkpoint latest "$@" 2>&1); rc=$?
	if [ $rc = 1 ] && echo "$out" | grep -q -- "$pat"; then pass "$what: $(echo "$out" | grep -- "$pat" | head -1)"
	else fail "$what" "rc $rc: $out"; fi
}
refused "an image of another memory size is refused before QEMU loads it" \
	'memory 256 MiB, here 512 MiB' --memory 512
printf '#!/bin/sh\nexec qemu-system-x86_64 "$@" -device virtio-rng-pci\n' > "$T/qemu-rng"
chmod +x "$T/qemu-rng"
refused "an image of another device set is refused, the difference named" \
	'devices virtio-serial-pci,virtserialport, here virtio-rng-pci,virtio-serial-pci,virtserialport (not in the image: virtio-rng-pci; missing here: none)' --qemu "$T/qemu-rng"
cat > "$T/qemu-q35" <<'SH'
#!/bin/sh
for a; do shift; case "$prev" in -machine) a=q35 ;; esac; set -- "$@" "$a"; prev=$a; done
exec qemu-system-x86_64 "$@"
SH
chmod +x "$T/qemu-q35"
q35=$(qemu-system-x86_64 -machine help | awk '$1 == "q35" { sub(/.*alias of /, ""); sub(/\).*/, ""); print }')
refused "an image of another machine type is refused" "machine type $pc, here $q35" --qemu "$T/qemu-q35"
# an older QEMU: a stand-in that answers QMP as 7.1.0 would, the rest as the recorded VM
cat > "$T/old-qemu" <<PY
#!/usr/bin/env python3
import socket, sys
a = sys.argv
s = socket.socket(socket.AF_UNIX); s.bind(a[a.index("-qmp") + 1][5:].split(",")[0]); s.listen(1)
c, _ = s.accept()
c.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 7}}, "capabilities": []}}\n')
answers = {"query-version": '{"qemu": {"micro": 0, "minor": 1, "major": 7}}',
    "qom-get": '"$pc-machine"', "query-memory-size-summary": '{"base-memory": 268435456}',
    "qom-list": '[{"name": "device[0]", "type": "child<virtio-serial-pci>"}, {"name": "device[1]", "type": "child<virtserialport>"}]'}
for line in c.makefile("r"):
    cmd = line.split('"execute": "')[1].split('"')[0]
    if cmd == "qom-list" and "peripheral-anon" not in line: cmd = "none"
    c.sendall(('{"return": %s}\n' % answers.get(cmd, "{}")).encode())
PY
chmod +x "$T/old-qemu"
refused "an image from a newer QEMU is refused by an older one" "QEMU 7.1.0 here is older than $qv" --qemu "$T/old-qemu"
refused "the resumer says QEMU is missing, and what the checkpoint needs" \
	"QEMU (/nonexistent/qemu) is not installed here; checkpoint .* needs QEMU $qv, machine $pc" --qemu /nonexistent/qemu
out=$(vmm-ready-job-executor --gid vmm-noqemu --qemu /nonexistent/qemu-system-x86_64 -- true 2>&1); rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q 'not installed'; then pass "QEMU missing: $out"
else fail "QEMU missing is said" "rc $rc: $out"; fi
cts_conf cts-noqemu "vmm_qemu /nonexistent/qemu" > "$T/cts-noqemu.conf"
sed 's/cts-vmm/cts-noqemu/' "$T/cts-vmm.ldif" > "$T/cts-noqemu.ldif"
gca-pki issue "$site/pki" cts cts-noqemu >/dev/null
gca-pki issue "$site/pki" sign cts-noqemu >/dev/null
gca-cts -f "$T/cts-noqemu.conf" >>"$T/cts-noqemu.log" 2>&1 &
nq_pid=$!
on_exit "kill $nq_pid"
if wait_for 15 bash -c "ldapsearch -x -LLL -o ldif-wrap=no -H '$GCA_LDAP_URI' -b 'cn=cts-noqemu,ou=cts,$GCA_BASE_DN' -s base gcaStatus description 2>/dev/null | grep -qi 'qemu is not installed'"; then
	pass "a vmm CTS without QEMU is published unavailable with the reason (ldapsearch)"
else
	fail "a vmm CTS without QEMU is published unavailable" "$(cts_entry cts-noqemu '*' | tail -5; tail -2 "$T/cts-noqemu.log")"
fi
kill $nq_pid 2>/dev/null
# a guest without the gate: an initramfs whose init only sleeps
mkdir -p "$T/silent/bin"
cp "$(command -v busybox)" "$T/silent/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox sleep 1000\n' > "$T/silent/init"
chmod +x "$T/silent/init"
(cd "$T/silent" && find . | cpio -o -H newc --quiet > "$T/silent.cpio")
t=$(date +%s.%N)
vmm-ready-job-executor --gid vmm-silent --accel "$VMM_ACCEL" --initrd "$T/silent.cpio" --gate-timeout 8 -- true >/dev/null 2>"$T/silent.err" &
silent_pid=$!
on_exit "kill $silent_pid"
# meanwhile its VM is checkpointed (the gate plays no part in that), for the resumer's turn
wait_for 10 bash -c "gca-ctl jobs | grep -q vmm-silent"
# (bound as soon as QEMU was started: on a loaded machine it may not have made its QMP socket yet)
for i in 1 2 3 4 5; do
	silent_id=$(gca-ctl checkpoint vmm-silent 2>"$T/silent.ck" | awk '$1 == "checkpoint" { print $2; exit }')
	[ -z "$silent_id" ] && grep -q 'is QEMU still starting' "$T/silent.ck" || break
	sleep 1
done
wait "$silent_pid"; rc=$?
if [ $rc = 1 ] && grep -q 'did not answer within 8 s' "$T/silent.err"; then pass "a silent gate is reported after --gate-timeout ($(since "$t") s): $(head -1 "$T/silent.err")"
else fail "a silent gate is reported" "rc $rc: $(cat "$T/silent.err")"; fi
if [ -n "$silent_id" ]; then
	t=$(date +%s.%N)
	out=$(vmm-ready-job-resumer --gid vmm-silent --checkpoint "$silent_id" --gate-timeout 4 2>&1); rc=$?
	if [ $rc = 1 ] && echo "$out" | grep -q 'did not answer within 4 s'; then pass "the resumer reports a resumed VM whose gate does not answer after --gate-timeout ($(since "$t") s): $(echo "$out" | grep 'did not answer')"
	else fail "the resumer reports a silent gate" "rc $rc: $out"; fi
else
	fail "the silent VM is checkpointed" "$(cat "$T/silent.ck")"
fi
# tampered: one byte of the first checkpoint's image in the CTS's store
img=$(find "$T/cts-vmm/images" -path "*$(cat "$T/ckpt1.id")/vm.state")
printf 'X' | dd of="$img" bs=1 seek=100000 conv=notrunc status=none
out=$(vmm-ready-job-resumer --gid vmm-job --checkpoint "$(cat "$T/ckpt1.id")" 2>&1); rc=$?
if [ $rc = 1 ] && echo "$out" | grep -qi 'sha256\|vm.state'; then pass "a tampered image is refused by its sha256 before QEMU sees it: $(echo "$out" | head -1)"
else fail "a tampered image is refused" "rc $rc: $out"; fi
# truncated: the latest image loses its last MiB
img=$(find "$T/cts-vmm/images" -path "*$(cat "$T/ckpt3.id" 2>/dev/null)/vm.state")
if [ -n "$img" ]; then
	truncate -s -1M "$img"
	out=$(vmm-ready-job-resumer --gid vmm-job --checkpoint latest 2>&1); rc=$?
	if [ $rc = 1 ] && echo "$out" | grep -qi 'vm.state'; then pass "a truncated image is refused before QEMU sees it: $(echo "$out" | head -1)"
	else fail "a truncated image is refused" "rc $rc: $out"; fi
else
	fail "a truncated image is refused" "no third checkpoint to truncate"
fi
# every resume above failed: the verified copies made for them go (their callers are gone)
if wait_for 15 bash -c "! ls '$T/cts-vmm/staging' | grep -q '^restore-'"; then
	pass "the copies made for failed resumes are removed from the CTS's staging folder"
else
	fail "the copies of failed resumes are removed" "$(ls "$T/cts-vmm/staging")"
fi

# ---- a pool of booted VMs (issue 24): cts.conf vmm_pool; a pooled VM serves one job and goes ----
# local REQ JSON [SOCKET]: one frame on a CTS's unix socket (msgpack by hand: python3 has no msgpack
# here); prints "ok {body}" or "err code msg" as JSON; the caller's pid is this python's
cat > "$T/local.py" <<'PY'
import json, socket, struct, sys, time
def pk(o):
    if isinstance(o, bool): return b"\xc3" if o else b"\xc2"
    if isinstance(o, int): return bytes([o]) if o < 128 else b"\xcf" + o.to_bytes(8, "big")
    if isinstance(o, str):
        b = o.encode()
        return (b"\xd9" + bytes([len(b)]) if len(b) < 256 else b"\xda" + len(b).to_bytes(2, "big")) + b
    if isinstance(o, dict): return bytes([0x80 | len(o)]) + b"".join(pk(k) + pk(v) for k, v in o.items())
    raise TypeError(o)
def up(b, i):
    t = b[i]
    if t < 0x80: return t, i + 1
    if 0x80 <= t <= 0x8f or t in (0xde, 0xdf):
        n, i = (t & 15, i + 1) if t <= 0x8f else (int.from_bytes(b[i+1:i+3], "big"), i + 3) if t == 0xde else (int.from_bytes(b[i+1:i+5], "big"), i + 5)
        d = {}
        for _ in range(n):
            k, i = up(b, i); v, i = up(b, i); d[k] = v
        return d, i
    if 0x90 <= t <= 0x9f or t == 0xdc:
        n, i = (t & 15, i + 1) if t <= 0x9f else (int.from_bytes(b[i+1:i+3], "big"), i + 3)
        l = []
        for _ in range(n):
            v, i = up(b, i); l.append(v)
        return l, i
    if 0xa0 <= t <= 0xbf or t in (0xd9, 0xda, 0xdb):
        w = {0xd9: 1, 0xda: 2, 0xdb: 4}.get(t, 0)
        n = t & 31 if not w else int.from_bytes(b[i+1:i+1+w], "big")
        i += 1 + w
        return b[i:i+n].decode(), i + n
    if t in (0xcc, 0xcd, 0xce, 0xcf):
        w = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t]
        return int.from_bytes(b[i+1:i+1+w], "big"), i + 1 + w
    if t in (0xc0, 0xc2, 0xc3): return {0xc0: None, 0xc2: False, 0xc3: True}[t], i + 1
    raise ValueError("msgpack type %#x" % t)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[3] if len(sys.argv) > 3 else __import__("os").environ["GCA_CTS_SOCKET"])
p = pk({"v": 1, "t": sys.argv[1], "id": 1, "b": json.loads(sys.argv[2])})
s.sendall(struct.pack(">I", len(p)) + p)
f = s.makefile("rb")
n = struct.unpack(">I", f.read(4))[0]
r, _ = up(f.read(n), 0)
print(json.dumps([r["t"], r.get("b")]), flush=True)
if len(sys.argv) > 4: time.sleep(float(sys.argv[4]))	# holds what it took that long
PY
upy=/usr/bin/python3	# nobody cannot run a python3 found in root's own folders
if [ "$(id -u)" = 0 ] && [ -x "$upy" ] && id daemon >/dev/null 2>&1 && id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
gca-pki issue "$site/pki" cts cts-pool >/dev/null
gca-pki issue "$site/pki" sign cts-pool >/dev/null
sed "s/cts-vmm/cts-pool/" "$T/cts-vmm.ldif" > "$T/cts-pool.ldif"
cts_conf cts-pool "vmm_kernel $LAB_VMLINUZ
vmm_initrd $LAB_INITRD
vmm_pool 1
vmm_pool_user daemon
vmm_pool_accel $VMM_ACCEL" > "$T/cts-pool.conf"
gca-cts -f "$T/cts-pool.conf" >>"$T/cts-pool.log" 2>&1 &
pool_cts=$!
on_exit "kill $pool_cts"
PS=$T/cts-pool.sock
pooled() { grep -c 'pooled VM pid [0-9]* is ready' "$T/cts-pool.log"; }
readyq() { grep -o 'pooled VM pid [0-9]* is ready' "$T/cts-pool.log" | tail -1 | awk '{ print $4 }'; }
if wait_for 120 bash -c "[ \$(grep -c 'pooled VM pid [0-9]* is ready' '$T/cts-pool.log') -ge 1 ]" &&
	wait_for 15 bash -c "ldapsearch -x -LLL -H '$GCA_LDAP_URI' -b 'cn=cts-pool,ou=cts,$GCA_BASE_DN' -s base gcaStatus 2>/dev/null | grep -q 'gcaStatus: ok'"; then
	q1=$(readyq)
	pass "cts-pool boots its pooled VM (pid $q1): $(grep -o 'its gate answered after [0-9.]* s' "$T/cts-pool.log" | head -1)"
	expect_eq "cts-pool publishes its pool (gcaProperty vmm.pool=1)" "$(cts_entry cts-pool gcaProperty | grep -c '^gcaProperty: vmm.pool=1$')" 1
	check "an executor at a CTS without a pool does not ask it for one (exec.err says nothing of a pool)" \
		bash -c "! grep -q 'pooled' '$T/exec.err'"
	expect_eq "the pooled QEMU runs as vmm_pool_user daemon, not root" "$(ps -o user= -p "$q1" | xargs)" daemon
	qdir=$(grep -o "pooled VM pid $q1 boots in [^ ]*" "$T/cts-pool.log" | awk '{ print $NF }')
	expect_eq "its QMP socket is daemon's, mode 0700 (no job's user reaches QMP)" "$(stat -c '%U %a' "$qdir/qmp")" "daemon 700"
	# refusals of local_vm_take: the VM asked for is not the pool's; a CTS without a pool
	guest='"gid":"pool-x","qemu":"qemu-system-x86_64","machine":"'"$pc"'","accel":"'"$VMM_ACCEL"'","kernel":"'"$LAB_VMLINUZ"'","initrd":"'"$LAB_INITRD"'"'
	out=$(python3 "$T/local.py" local_vm_take "{$guest,\"memory_mib\":512}" "$PS" 2>&1)
	check "local_vm_take of another VM than the pool's is refused, saying which (512 MiB asked)" \
		bash -c "echo '$out' | grep -q 'pooled VMs have 256 MiB, not 512'"
	out=$(python3 "$T/local.py" local_vm_take "{$guest,\"memory_mib\":256}" "$T/cts-vmm.sock" 2>&1)
	check "local_vm_take at a CTS without a pool is refused (unavailable: keeps no pool)" \
		bash -c "echo '$out' | grep -q 'keeps no pool of VMs'"
	# with the pool: submit to running
	t=$(date +%s.%N)
	vmm-ready-job-executor --cts "$PS" --gid pool-a --accel "$VMM_ACCEL" -- sh -c 'echo secret > /tmp/leak; echo running; while :; do sleep 1; done' >"$T/pool-a.out" 2>"$T/pool-a.err" &
	pa=$!
	on_exit "kill $pa"
	if wait_for 90 grep -q '^running' "$T/pool-a.out"; then
		pool_secs=$(since "$t")
		pass "a job on a pooled VM runs $pool_secs s after it was submitted"
	else
		fail "a job on a pooled VM runs" "$(tail -3 "$T/pool-a.err"; tail -3 "$T/cts-pool.log")"
	fi
	check "... on the pooled QEMU pid $q1, handed to the executor (cts log), no VM of its own" \
		bash -c "grep -q 'pooled VM pid $q1 handed to pid $pa (uid 0) for GID pool-a' '$T/cts-pool.log' && ! pgrep -P $pa >/dev/null && ! grep -q 'no pooled VM' '$T/pool-a.err'"
	check "gca-ctl jobs shows pool-a on cts-pool" bash -c "gca-ctl jobs | grep pool-a | grep -q cts-pool"
	# the binding: nobody else may bind the handed QEMU, neither another uid nor another process
	out=$(setpriv --reuid nobody --regid "$(id -gn nobody)" --clear-groups "$upy" "$T/local.py" local_bind "{\"gid\":\"pool-steal\",\"pid\":$q1}" "$PS" 2>&1)
	check "uid nobody cannot bind pool-a's pooled QEMU (local_bind refused: neither the caller nor its child)" \
		bash -c "echo '$out' | grep -q 'forbidden' && echo '$out' | grep -q 'neither the caller'"
	out=$(python3 "$T/local.py" local_bind "{\"gid\":\"pool-steal\",\"pid\":$q1}" "$PS" 2>&1)
	check "nor another process of the same uid (root) that was not handed it" \
		bash -c "echo '$out' | grep -q 'forbidden' && echo '$out' | grep -q 'neither the caller'"
	id=$(gca-ctl checkpoint pool-a 2>"$T/pool-a.ck" | awk '$1 == "checkpoint" { print $2; exit }')
	check "gca-ctl checkpoint pool-a checkpoints the pooled VM (QMP of daemon's QEMU, by the CTS)" \
		bash -c "[ -n '$id' ] && [ -f '$(find "$T/cts-pool/images" -path "*$id/vm.conf" 2>/dev/null | head -1)' ] && grep -qx 'uid 0' '$(find "$T/cts-pool/images" -path "*$id/vm.conf" 2>/dev/null | head -1)'"
	[ -n "$id" ] || echo "# $(cat "$T/pool-a.ck"; tail -3 "$T/cts-pool.log")"
	# the pool is refilled meanwhile; another uid's take gets that other VM, never pool-a's
	wait_for 120 bash -c "[ \$(grep -c 'pooled VM pid [0-9]* is ready' '$T/cts-pool.log') -ge 2 ]"
	q2=$(readyq)
	out=$(setpriv --reuid nobody --regid "$(id -gn nobody)" --clear-groups "$upy" "$T/local.py" local_vm_take "{$guest,\"memory_mib\":256}" "$PS" 2>&1)
	check "uid nobody's local_vm_take gets the refilled VM $q2, never pool-a's $q1" \
		bash -c "echo '$out' | grep -q '\"pid\": $q2' && [ '$q2' != '$q1' ]"
	check "... and it goes once the process that took it has exited (never bound)" \
		bash -c "for i in \$(seq 80); do kill -0 $q2 2>/dev/null || exit 0; sleep 0.25; done; exit 1"
	# pool-a ends: its VM goes, folder and all
	kill -TERM "$pa"; wait "$pa" 2>/dev/null
	check "pool-a's pooled QEMU $q1 is gone after its job, its folder removed" \
		bash -c "for i in \$(seq 80); do kill -0 $q1 2>/dev/null || break; sleep 0.25; done; ! kill -0 $q1 2>/dev/null && [ ! -e '$qdir' ]"
	# the next job gets a fresh VM: nothing of pool-a's
	wait_for 120 bash -c "[ \$(grep -c 'pooled VM pid [0-9]* is ready' '$T/cts-pool.log') -ge 3 ]"
	q3=$(readyq)
	vmm-ready-job-executor --cts "$PS" --gid pool-b --accel "$VMM_ACCEL" -- sh -c 'if [ -e /tmp/leak ]; then echo leaked; else echo clean; fi' >"$T/pool-b.out" 2>"$T/pool-b.err"
	check "the next job (pool-b) runs on another pooled VM ($q3) and does not see pool-a's file" \
		bash -c "grep -qx clean '$T/pool-b.out' && grep -q 'pooled VM pid $q3 handed to pid [0-9]* (uid 0) for GID pool-b' '$T/cts-pool.log' && [ '$q3' != '$q1' ]"
	# empty pool (refilling): the executor boots its own and says so
	vmm-ready-job-executor --cts "$PS" --gid pool-c --accel "$VMM_ACCEL" -- true >"$T/pool-c.out" 2>"$T/pool-c.err"; rc=$?
	if [ $rc = 0 ] && grep -q 'no pooled VM (no pooled VM is ready ([01] booting)): starting one' "$T/pool-c.err"; then
		pass "with the pool empty the executor boots its own VM and says so (rc 0): $(head -1 "$T/pool-c.err")"
	else
		fail "with the pool empty the executor boots its own VM and says so" "rc $rc; $(tail -3 "$T/pool-c.err")"
	fi
	# without the pool, the same CTS (its pool ready and idle): submit to running
	wait_for 120 bash -c "[ \$(grep -c 'pooled VM pid [0-9]* is ready' '$T/cts-pool.log') -ge 4 ]"
	t=$(date +%s.%N)
	vmm-ready-job-executor --cts "$PS" --no-pool --gid pool-d --accel "$VMM_ACCEL" -- sh -c 'echo running' >"$T/pool-d.out" 2>"$T/pool-d.err"
	nopool_secs=$(since "$t")
	grep -q '^running' "$T/pool-d.out" || fail "--no-pool: the job runs" "$(tail -3 "$T/pool-d.err")"
	check "submit to running: pool $pool_secs s < own VM $nopool_secs s (--no-pool)" \
		awk -v a="${pool_secs:-999}" -v b="$nopool_secs" 'BEGIN { exit !(a < b) }'
	# a user's job on a pooled VM: the gate is handed to that uid, QMP stays daemon's
	mkdir -p "$T/nobody" && chown nobody "$T/nobody"
	setpriv --reuid nobody --regid "$(id -gn nobody)" --clear-groups env TMPDIR="$T/nobody" \
		vmm-ready-job-executor --cts "$PS" --gid pool-n --accel "$VMM_ACCEL" -- sh -c 'echo running as job of nobody' >"$T/pool-n.out" 2>"$T/pool-n.err"; rc=$?
	if [ $rc = 0 ] && grep -q '^running as job of nobody' "$T/pool-n.out" && grep -q 'handed to pid [0-9]* (uid 65534) for GID pool-n' "$T/cts-pool.log"; then
		pass "user nobody's job runs on a pooled VM handed to uid 65534 (rc 0)"
	else
		fail "user nobody's job on a pooled VM" "rc $rc; $(tail -3 "$T/pool-n.err"; grep pool-n "$T/cts-pool.log" | tail -2)"
	fi
	# the resume of a pooled job's checkpoint: nobody's job on a pooled VM (QEMU of daemon) writes a
	# file in the guest and counts; checkpointed, its VM gone with its executor, it is resumed by
	# nobody with the resumer, as any VM job: QEMU then is nobody's, bound as the resumer's child
	tok=pooled-$RANDOM
	wait_for 120 bash -c "[ \$(grep -c 'pooled VM pid [0-9]* is ready' '$T/cts-pool.log') -ge 5 ]"
	setpriv --reuid nobody --regid "$(id -gn nobody)" --clear-groups env TMPDIR="$T/nobody" \
		vmm-ready-job-executor --cts "$PS" --gid pool-r --accel "$VMM_ACCEL" -- sh -c \
		"echo $tok > /tmp/state; i=0; while :; do echo \"tick \$i \$(cat /tmp/state)\"; i=\$((i + 1)); sleep 0.2; done" \
		>"$T/pool-r.out" 2>"$T/pool-r.err" &
	pr=$!
	on_exit "kill $pr"
	tlast() { awk '$1 == "tick" { n = $2 } END { print n + 0 }' "$T/pool-r.out"; }
	if wait_for 90 grep -q '^tick 3 ' "$T/pool-r.out" && grep -q "handed to pid $pr (uid 65534) for GID pool-r" "$T/cts-pool.log"; then
		qr=$(grep -o "pooled VM pid [0-9]* handed to pid $pr " "$T/cts-pool.log" | awk '{ print $4 }')
		lo=$(tlast)
		id=$(gca-ctl checkpoint pool-r 2>"$T/pool-r.ck" | awk '$1 == "checkpoint" { print $2; exit }')
		sleep 0.3; hi=$(tlast)
		rconf=$(find "$T/cts-pool/images/pool-r" -path "*$id/vm.conf" 2>/dev/null | head -1)
		check "nobody's pooled job (QEMU $qr of daemon) is checkpointed, recorded as uid 65534's (vm.conf)" \
			bash -c "[ -n '$id' ] && [ -f '$rconf' ] && grep -qx 'uid 65534' '$rconf'"
		[ -n "$id" ] || echo "# $(cat "$T/pool-r.ck"; tail -3 "$T/cts-pool.log")"
		kill -9 "$pr"; wait "$pr" 2>/dev/null
		check "its executor killed, the pooled QEMU $qr goes" \
			bash -c "for i in \$(seq 20); do kill -0 $qr 2>/dev/null || exit 0; sleep 0.25; done; exit 1"
		echo "mark pooled" >> "$T/pool-r.out"
		# the pool's user is not the job's: it may not resume it
		out=$(setpriv --reuid daemon --regid "$(id -gn daemon)" --clear-groups env TMPDIR=/tmp \
			vmm-ready-job-resumer --cts "$PS" --gid pool-r --checkpoint "$id" 2>&1); rc=$?
		if [ $rc != 0 ] && ! echo "$out" | grep -q 'resumed from' && ! grep -q 'GID pool-r bound to pid [0-9]* (user daemon' "$T/cts-pool.log"; then
			pass "vmm_pool_user daemon, which ran the VM, cannot resume nobody's job (rc $rc): $(echo "$out" | head -1)"
		else
			fail "vmm_pool_user daemon cannot resume nobody's job" "rc $rc: $out"
		fi
		setpriv --reuid nobody --regid "$(id -gn nobody)" --clear-groups env TMPDIR="$T/nobody" \
			vmm-ready-job-resumer --cts "$PS" --gid pool-r --checkpoint "$id" >>"$T/pool-r.out" 2>"$T/pool-r.res" &
		rr=$!
		on_exit "kill $rr"
		wait_for 60 bash -c "[ \$(awk 'f && \$1 == \"tick\" { n++ } \$0 == \"mark pooled\" { f = 1 } END { print n + 0 }' '$T/pool-r.out') -ge 3 ]"
		r=$(awk 'f && $1 == "tick" { print $2 " " $3; exit } $0 == "mark pooled" { f = 1 }' "$T/pool-r.out")
		if in_range "${r% *}" "$lo" "$hi" && [ "${r#* }" = "$tok" ]; then
			pass "nobody resumed the pooled job's checkpoint: it goes on at tick ${r% *} (saved at $lo..$hi) and reads its file ($tok) from the guest's memory"
		else
			fail "the resume of a pooled job's checkpoint goes on where it was" "first '$r', window $lo..$hi, token $tok; $(tail -3 "$T/pool-r.res")"
		fi
		rq=$(pgrep -P "$rr" | head -1)
		expect_eq "the resumed VM is no pooled one: QEMU is the resumer's child and runs as nobody, as the resumer" \
			"$([ -z "$rq" ] || echo "$(ps -o user= -p "$rq" | xargs) $(ps -o user= -p "$rr" | xargs) $(ps -o comm= -p "$rq")")" "nobody nobody qemu-system-x86"
		check "pool-r is bound again to that QEMU (pid $rq, the caller's child of the same uid; cts log)" \
			grep -q "GID pool-r bound to pid $rq " "$T/cts-pool.log"
		kill -TERM "$rr" 2>/dev/null; wait "$rr" 2>/dev/null
	else
		fail "nobody's job runs on a pooled VM" "$(tail -3 "$T/pool-r.err"; grep pool-r "$T/cts-pool.log" | tail -2)"
	fi
	kill "$pr" 2>/dev/null; wait "$pr" 2>/dev/null
	pool_row="\"submit_to_running\": {\"pool_s\": ${pool_secs:-null}, \"own_vm_s\": $nopool_secs, \"what\": \"vmm-ready-job-executor started until the job's first line, 256 MiB guest, $VMM_ACCEL: a VM from the CTS's pool (vmm_pool 1) vs --no-pool (boots its own; the pool's VM idle meanwhile)\"},"
	kill "$pool_cts"; wait "$pool_cts" 2>/dev/null
	check "cts-pool stopped: no pooled QEMU left" bash -c "! pgrep -u daemon -f 'cts-pool/pool/vm-' >/dev/null"
else
	fail "cts-pool boots its pooled VM" "$(tail -5 "$T/cts-pool.log")"
fi
else
	echo "$S: not run: the pool of VMs (needs root, setpriv, /usr/bin/python3 and users daemon and nobody)"
fi

# ---- figures: raw QMP (python, same steps) vs gca-ctl checkpoint; resume times ----
bench_vm() {	# MIB: start a VM job, wait until it counts; sets bpid, bqemu
	vmm-ready-job-executor --gid "bench-$1" --accel "$VMM_ACCEL" --memory "$1" -- sh -c "$JOB" >"$T/bench-$1.out" 2>"$T/bench-$1.err" &
	bpid=$!
	on_exit "kill $bpid"
	wait_for 90 grep -q '^counter 2' "$T/bench-$1.out" || return 1
	bqemu=$(pgrep -P "$bpid" | head -1)
}
raw_qmp() {	# QEMU-PID IMAGE [LAYER]: stop, [snapshot gca-disk0,] getfd, migrate fd:, poll, cont
	# over its QMP socket [, then the frozen layer copied to LAYER]; prints seconds
	python3 - "$1" "$2" "${3:-}" <<'PY'
import json, os, socket, sys, time
args = open("/proc/%s/cmdline" % sys.argv[1], "rb").read().split(b"\0")
path = args[args.index(b"-qmp") + 1].decode()[5:].split(",")[0]
s = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("r")
def call(cmd, fds=None, **a):
    msg = (json.dumps({"execute": cmd, "arguments": a} if a else {"execute": cmd}) + "\n").encode()
    socket.send_fds(s, [msg], fds) if fds else s.sendall(msg)
    while True:
        r = json.loads(f.readline())
        if "return" in r: return r["return"]
        if "error" in r: raise SystemExit(r["error"]["desc"])
f.readline(); call("qmp_capabilities")
call("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
t = time.time()
layer = sys.argv[3]
if layer:
    import shutil, uuid
    blk = [b for b in call("query-block") if b["device"] == "gca-disk0"][0]
    active = blk["inserted"]["file"]
    # a name the CTS reads as "stands on a checkpoint not in the store": its next checkpoint
    # takes this frozen layer too, as after a failed checkpoint
    new = "%s/gca-disk0.after-%s.qcow2" % (os.path.dirname(active), uuid.uuid4())
call("stop")
if layer:
    call("transaction", actions=[{"type": "blockdev-snapshot-sync", "data": {"device": "gca-disk0",
        "snapshot-file": new, "format": "qcow2"}}])
call("getfd", [fd], fdname="raw"); call("migrate", uri="fd:raw")
while call("query-migrate").get("status") != "completed": time.sleep(0.02)
call("cont")
if layer:
    shutil.copyfile(active, layer); os.fsync(os.open(layer, os.O_RDONLY))
print("%.3f" % (time.time() - t))
PY
}
raw_restore() {	# IMAGE-FOLDER: QEMU with vm.conf's argv, -S -incoming defer, getfd + migrate-incoming, cont; seconds
	python3 - "$1" "$T" <<'PY'
import json, os, re, socket, subprocess, sys, tempfile, time
img, tmp = sys.argv[1], sys.argv[2]
args = [re.sub("%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), l[4:].rstrip("\n"))
        for l in open(img + "/vm.conf") if l.startswith("arg ")]
d = tempfile.mkdtemp(dir=tmp)
for i in range(1, len(args)):
    if args[i - 1] == "-qmp": args[i] = "unix:%s/qmp,server=on,wait=off" % d
    if args[i - 1] == "-chardev": args[i] = "socket,id=gate,path=%s/gate,server=on,wait=off" % d
    if args[i - 1] == "-serial": args[i] = "file:%s/console" % d
t = time.time()
for i in range(1, len(args)):
    if args[i - 1] == "-drive" and "id=gca-disk" in args[i]:
        n = args[i].split("id=gca-disk")[1].split(",")[0]
        ov = "%s/gca-disk%s.qcow2" % (d, n)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
            "%s/gca-disk%s.qcow2" % (img, n), ov], check=True)
        args[i] = "file=%s,%s" % (ov, args[i].split(",", 1)[1])
p = subprocess.Popen(args + ["-S", "-incoming", "defer"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
s = socket.socket(socket.AF_UNIX)
while True:
    try: s.connect(d + "/qmp"); break
    except OSError: time.sleep(0.01)
f = s.makefile("r")
def call(cmd, fds=None, **a):
    msg = (json.dumps({"execute": cmd, "arguments": a} if a else {"execute": cmd}) + "\n").encode()
    socket.send_fds(s, [msg], fds) if fds else s.sendall(msg)
    while True:
        r = json.loads(f.readline())
        if "return" in r: return r["return"]
        if "error" in r: raise SystemExit(r["error"]["desc"])
f.readline(); call("qmp_capabilities")
fd = os.open(img + "/vm.state", os.O_RDONLY)
call("getfd", [fd], fdname="raw"); call("migrate-incoming", uri="fd:raw")
while call("query-status")["status"] == "inmigrate": time.sleep(0.02)
call("cont")
print("%.3f" % (time.time() - t))
p.kill(); p.wait()
PY
}
rows=() table=()
for mib in 256 1024; do
	bench_vm $mib || { fail "bench $mib MiB: the VM job starts" "$(tail -3 "$T/bench-$mib.err")"; break; }
	raw=$(raw_qmp "$bqemu" "$T/raw-$mib.img" 2>"$T/raw.err") || { fail "bench $mib MiB: raw QMP" "$(cat "$T/raw.err")"; break; }
	rawsize=$(stat -c %s "$T/raw-$mib.img"); rm -f "$T/raw-$mib.img"
	t=$(date +%s.%N)
	id=$(gca-ctl checkpoint "bench-$mib" 2>"$T/bench-$mib.ckerr" | awk '$1 == "checkpoint" { print $2; exit }')
	gsecs=$(since "$t")
	[ -n "$id" ] || { fail "bench $mib MiB: gca-ctl checkpoint" "$(cat "$T/bench-$mib.ckerr")"; break; }
	gdir=$(dirname "$(find "$T/cts-vmm/images" -path "*$id/vm.state")")
	gsize=$(stat -c %s "$gdir/vm.state")
	kill -9 "$bqemu"; wait "$bpid" 2>/dev/null
	vmm-ready-job-resumer --gid "bench-$mib" --checkpoint latest >>"$T/bench-$mib.out" 2>"$T/bench-$mib.res" &
	rpid=$!
	on_exit "kill $rpid"
	wait_for 60 grep -q 'resumed from' "$T/bench-$mib.res"
	rsecs=$(grep -o 'in [0-9.]* s' "$T/bench-$mib.res" | head -1 | awk '{ print $2 }')
	grep -o '(image checked.*' "$T/bench-$mib.res" | sed "s/^/# resumer $mib MiB: /"
	kill -TERM "$rpid"; wait "$rpid" 2>/dev/null
	# the same image by hand, with no other VM running (as for the resumer)
	rawres=$(raw_restore "$gdir" 2>"$T/rawres.err") || { fail "bench $mib MiB: raw restore" "$(cat "$T/rawres.err")"; rawres=null; }
	ratio=$(awk -v g="$gsecs" -v r="$raw" 'BEGIN { printf "%.1f", (r > 0) ? g / r : 0 }')
	rratio=$(awk -v g="${rsecs:-0}" -v r="$rawres" 'BEGIN { printf "%.1f", (r > 0) ? g / r : 0 }')
	pass "bench $mib MiB: checkpoint raw QMP $raw s, gca-ctl $gsecs s (ratio $ratio); image $((gsize >> 20)) MiB (raw $((rawsize >> 20)) MiB); restore raw QEMU -incoming $rawres s, vmm-ready-job-resumer ${rsecs:-?} s (ratio $rratio)"
	table+=("$(printf '# | %4d MiB | %5s / %5s s (%sx) | %4d MiB (raw %d MiB) | %5s / %5s s (%sx) |' "$mib" "$raw" "$gsecs" "$ratio" $((gsize >> 20)) $((rawsize >> 20)) "$rawres" "${rsecs:-?}" "$rratio")")
	rows+=("{\"mib\": $mib, \"raw_qmp_checkpoint_s\": $raw, \"gca_ctl_checkpoint_s\": $gsecs, \"checkpoint_ratio\": $ratio, \"image_bytes\": $gsize, \"raw_image_bytes\": $rawsize, \"raw_restore_s\": $rawres, \"resumer_restore_s\": ${rsecs:-null}, \"restore_ratio\": $rratio}")
done
# A VM with a disk: 1 GiB qcow2 of which the job wrote 100 MiB (zeros, O_DIRECT; QEMU stores them:
# detect-zeroes is off) before it counts. Raw: the same QMP steps plus the snapshot transaction and
# the copy of the frozen layer; restore raw: QEMU with an overlay (qemu-img) on the image's layer.
if command -v qemu-img >/dev/null && [ ${#rows[@]} -eq 2 ]; then
	qemu-img create -q -f qcow2 "$T/base1g.qcow2" 1G
	vmm-ready-job-executor --gid bench-disk --accel "$VMM_ACCEL" --memory 1024 --disk "$T/base1g.qcow2" -- sh -c \
		"dd if=/dev/zero of=/dev/vda bs=1M count=100 oflag=direct 2>/dev/null; $JOB" >"$T/bench-disk.out" 2>"$T/bench-disk.err" &
	bpid=$!
	on_exit "kill $bpid"
	if wait_for 180 grep -q '^counter 2' "$T/bench-disk.out"; then
		bqemu=$(pgrep -P "$bpid" | head -1)
		raw=$(raw_qmp "$bqemu" "$T/raw-disk.img" "$T/raw-disk.layer" 2>"$T/raw.err") || raw=null
		rawsize=$(( $(stat -c %s "$T/raw-disk.img") + $(stat -c %s "$T/raw-disk.layer") )); rm -f "$T/raw-disk.img" "$T/raw-disk.layer"
		t=$(date +%s.%N)
		id=$(gca-ctl checkpoint bench-disk 2>"$T/bench-disk.ckerr" | awk '$1 == "checkpoint" { print $2; exit }')
		gsecs=$(since "$t")
	fi
	if [ -n "${id:-}" ] && [ "$raw" != null ]; then
		gdir=$(find "$T/cts-vmm/images/bench-disk" -mindepth 1 -maxdepth 1 -type d -name "$id")
		gsize=$(du -cb "$gdir"/vm.state "$gdir"/gca-disk0*.qcow2 | awk 'END { print $1 }')
		kill -9 "$bqemu"; wait "$bpid" 2>/dev/null
		vmm-ready-job-resumer --gid bench-disk --checkpoint latest >>"$T/bench-disk.out" 2>"$T/bench-disk.res" &
		rpid=$!
		on_exit "kill $rpid"
		wait_for 60 grep -q 'resumed from' "$T/bench-disk.res"
		rsecs=$(grep -o 'in [0-9.]* s' "$T/bench-disk.res" | head -1 | awk '{ print $2 }')
		kill -TERM "$rpid"; wait "$rpid" 2>/dev/null
		rawres=$(raw_restore "$gdir" 2>"$T/rawres.err") || { fail "bench disk: raw restore" "$(cat "$T/rawres.err")"; rawres=null; }
		ratio=$(awk -v g="$gsecs" -v r="$raw" 'BEGIN { printf "%.1f", (r > 0) ? g / r : 0 }')
		rratio=$(awk -v g="${rsecs:-0}" -v r="$rawres" 'BEGIN { printf "%.1f", (r > 0) ? g / r : 0 }')
		pass "bench 1024 MiB + 1 GiB disk (100 MiB written): checkpoint raw QMP $raw s, gca-ctl $gsecs s (ratio $ratio); image $((gsize >> 20)) MiB with the layer (raw $((rawsize >> 20)) MiB); restore raw $rawres s, resumer ${rsecs:-?} s (ratio $rratio)"
		table+=("$(printf '# | %4d MiB + disk | %5s / %5s s (%sx) | %4d MiB (raw %d MiB) | %5s / %5s s (%sx) |' 1024 "$raw" "$gsecs" "$ratio" $((gsize >> 20)) $((rawsize >> 20)) "$rawres" "${rsecs:-?}" "$rratio")")
		rows+=("{\"mib\": 1024, \"disk\": \"1 GiB qcow2, 100 MiB written\", \"raw_qmp_checkpoint_s\": $raw, \"gca_ctl_checkpoint_s\": $gsecs, \"checkpoint_ratio\": $ratio, \"image_bytes\": $gsize, \"raw_image_bytes\": $rawsize, \"raw_restore_s\": $rawres, \"resumer_restore_s\": ${rsecs:-null}, \"restore_ratio\": $rratio}")
	else
		fail "bench with a disk: both checkpoints" "raw ${raw:-?} ($(cat "$T/raw.err" 2>/dev/null)); $(cat "$T/bench-disk.ckerr" "$T/bench-disk.err" 2>/dev/null | tail -3)"
	fi
	kill "$bpid" 2>/dev/null
fi
if [ ${#rows[@]} -gt 0 ]; then
	# figures go to the build folder; make test-vmm (GCA_FIGURES_DIR=bench) records them in bench/
	bench_json=${GCA_FIGURES_DIR:-$GCA_BUILD/bench}/vmm-vm.json; mkdir -p "${bench_json%/*}"
	{
		echo "{"
		echo "  \"what\": \"whole-VM checkpoint: raw QMP (stop, getfd, migrate fd:, query-migrate, cont; python, timed around those) vs gca-ctl checkpoint through the GCS and a vmm CTS (seal and record included); restore: raw = QEMU with the recorded argv, -S -incoming defer, getfd + migrate-incoming fd:, cont (python, from launch to cont); resumer = vmm-ready-job-resumer from restore_prepare (sha256 check and copy of the image) to the guest's clock reset, as it reports; the row with a disk adds, raw, the snapshot transaction in the same stop and the copy of the frozen layer after cont (gca: the same, in the seal), and qemu-img's overlay on the image's layer before QEMU starts (both)\","
		echo "  \"guest\": \"qemu $qv $VMM_ACCEL, Debian 12 kernel $LAB_KREL, busybox initramfs, a shell job counting\","
		echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
		echo "  \"load_average\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
		[ -z "$pool_row" ] || echo "  $pool_row"
		echo "  \"runs\": [$(IFS=,; echo "${rows[*]}" | sed 's/},{/}, {/g')]"
		echo "}"
	} > "$bench_json"
	pass "figures written to ${bench_json#"$GCA_TOP"/}"
	echo "# | guest | checkpoint: raw QMP / gca-ctl | image | restore: raw QEMU / resumer |"
	printf '%s\n' "${table[@]}"
fi
echo "# suite wall time $(since "$suite_t0") s"
done_testing
