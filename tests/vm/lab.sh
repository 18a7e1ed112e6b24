# tests/vm/lab.sh: a Debian 12 kernel booted by qemu from a busybox initramfs, for the VM suites.
# Sourced (after tests/lib.sh); every function is lab_*, every setting LAB_*. Reused by later VM
# suites (the VMM core service): lab_kernel and lab_initramfs take what they ship as arguments.
#
#   lab_kernel                     Debian 12's kernel (the package linux-image-amd64 depends on),
#                                  fetched with apt-get download into $LAB_CACHE, unpacked with
#                                  dpkg-deb -x, never installed. Sets LAB_KREL, LAB_VMLINUZ,
#                                  LAB_KMODS (its lib/modules/REL folder).
#   lab_initramfs PROG...          an initramfs (cached by content hash) holding busybox, the given
#                                  programs with every library ldd names (the ELF interpreter too),
#                                  the kernel modules of LAB_MODULES with a busybox-made
#                                  modules.dep (/sbin/modprobe is busybox's), and tests/vm/guest/init.
#                                  Sets LAB_INITRD.
#   lab_boot SHARE LOG [FWD...]    starts qemu in the background (TCG, LAB_MEM MiB, 9p share of
#                                  folder SHARE, user networking with hostfwd FWD = HOSTPORT:GUESTPORT,
#                                  console to LOG), bounded by LAB_TIMEOUT seconds. Sets LAB_PID.
#   lab_wait SECONDS               waits for qemu to end; 1 if it had to be killed.
#   lab_stop                       kills qemu if it still runs.
#   lab_wait_file SECONDS FILE     polls for FILE (written by the guest into the share).
#   lab_guest_boot NAME SHARE LOG NETDEV NIC [QEMU-ARG...]
#                                  one of several guests of a suite, booted like lab_boot but on
#                                  the network qemu's -netdev NETDEV gives (e.g. a tap on a bridge
#                                  the suite made), NIC appended to its virtio-net device (",mac=.."
#                                  : guests on one bridge need their own), more qemu arguments
#                                  after (a second share). Its qemu's pid in LAB_PIDS[NAME].
#   lab_guest_wait NAME SECONDS, lab_guest_stop NAME, lab_guest_wait_file NAME SECONDS FILE
#                                  lab_wait, lab_stop and lab_wait_file for that guest.
#
# The guest's init (tests/vm/guest/init) runs SHARE/scenario with sh in a new session, its output in
# SHARE/scenario.log and its exit status in SHARE/scenario.rc, then powers off.
# lab_usable says why the lab cannot run here (for a suite's "not run: <reason>" line).

: "${LAB_CACHE:=$GCA_BUILD/vm}"
: "${LAB_MEM:=2048}"
: "${LAB_TIMEOUT:=200}"
: "${LAB_ACCEL:=tcg}"
# The guest's /init (the VMM suite gives tests/vm/guest/vmm-init).
: "${LAB_INIT:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/guest/init}"
# Folders and files under the kernel's lib/modules/REL/kernel/ that go into the initramfs: the net
# modules CRIU probes for (sock-diag family, nf_tables, tun, veth, ...), virtio and 9p.
LAB_MODULES_DEFAULT="net lib crypto fs/9p fs/netfs fs/fscache drivers/virtio drivers/net/virtio_net.ko
drivers/net/net_failover.ko drivers/net/tun.ko drivers/net/veth.ko drivers/char/virtio_console.ko"
: "${LAB_MODULES:=$LAB_MODULES_DEFAULT}"
LAB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_PID=
declare -A LAB_PIDS=()

lab_log() { echo "# lab: $*"; }

# Prints why the lab cannot run here; returns 0 (and prints nothing) when it can.
lab_usable() {
	local p
	for p in qemu-system-x86_64 busybox dpkg-deb cpio zstd ldd; do
		command -v "$p" >/dev/null 2>&1 || { echo "$p is not installed (make deps)"; return 0; }
	done
	# the kernel package is fetched with apt-get unless one is cached already
	if ! ls "$LAB_CACHE"/linux-image-[0-9]*.deb >/dev/null 2>&1; then
		for p in apt-get apt-cache; do
			command -v "$p" >/dev/null 2>&1 ||
				{ echo "$p is not there to fetch Debian 12's kernel package (and none is cached in $LAB_CACHE)"; return 0; }
		done
	fi
	busybox --list 2>/dev/null | grep -qx depmod || { echo "busybox has no depmod applet (busybox-static)"; return 0; }
	ldd "$(command -v busybox)" >/dev/null 2>&1 &&
		{ echo "busybox is not the static one (make deps: busybox-static)"; return 0; }
	return 0
}

# The kernel package's name: what linux-image-amd64 depends on (apt-cache), else a cached one.
lab_kernel_package() {
	local name
	name=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$name" ]; then
		# the newest by version: as text, 6.1.0-9 would come after 6.1.0-57
		name=$(ls "$LAB_CACHE"/linux-image-[0-9]*.deb 2>/dev/null | sort -V | tail -1 | xargs -r basename | cut -d_ -f1)
	fi
	echo "$name"
}

lab_kernel() {
	local pkg deb tree
	mkdir -p "$LAB_CACHE"
	pkg=$(lab_kernel_package)
	[ -n "$pkg" ] || { echo "lab_kernel: apt-cache names no package for linux-image-amd64 (apt-get update?)" >&2; return 1; }
	deb=$(ls "$LAB_CACHE/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1)
	if [ -z "$deb" ]; then
		lab_log "fetching $pkg with apt-get download"
		(cd "$LAB_CACHE" && apt-get download -q "$pkg" >"$LAB_CACHE/apt-download.log" 2>&1) ||
			{ echo "lab_kernel: apt-get download $pkg failed: $(tail -2 "$LAB_CACHE/apt-download.log")" >&2; return 1; }
		deb=$(ls "$LAB_CACHE/${pkg}"_*.deb 2>/dev/null | sort -V | tail -1)
		[ -n "$deb" ] || { echo "lab_kernel: apt-get download left no $pkg .deb in $LAB_CACHE" >&2; return 1; }
	fi
	tree=$LAB_CACHE/kernel-$(basename "$deb" .deb)
	if [ ! -f "$tree/.unpacked" ]; then
		rm -rf "$tree"
		dpkg-deb -x "$deb" "$tree" || { echo "lab_kernel: dpkg-deb -x $deb failed" >&2; return 1; }
		touch "$tree/.unpacked"
	fi
	LAB_VMLINUZ=$(ls "$tree"/boot/vmlinuz-* | head -1)
	LAB_KREL=${LAB_VMLINUZ##*/vmlinuz-}
	LAB_KMODS=$tree/lib/modules/$LAB_KREL
	[ -f "$LAB_VMLINUZ" ] && [ -d "$LAB_KMODS/kernel" ] ||
		{ echo "lab_kernel: $deb holds no kernel and modules" >&2; return 1; }
}

# Copies a program and every library it needs into the staging root, each at its own path.
lab_stage_program() {
	local root=$1 prog=$2 lib
	install -D -m 0755 "$prog" "$root/usr/bin/${prog##*/}"
	# "name => /path (addr)" and the interpreter "/lib64/ld-linux-x86-64.so.2 (addr)"
	for lib in $(ldd "$prog" 2>/dev/null | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
		[ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
	done
}

# What goes into the initramfs, one line per input, for the content hash.
lab_initramfs_inputs() {
	local p lib
	echo "init $(sha256sum < "$LAB_INIT")"
	echo "lab $(sha256sum < "$LAB_HERE/lab.sh")"
	echo "busybox $(sha256sum < "$(command -v busybox)")"
	echo "kernel $LAB_KREL $LAB_MODULES"
	for p in "$@"; do
		echo "prog $p $(sha256sum < "$p")"
		for lib in $(ldd "$p" 2>/dev/null | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
			echo "lib $lib $(sha256sum < "$lib")"
		done
	done
}

lab_initramfs() {
	local hash root out m p b
	[ -n "${LAB_KMODS:-}" ] || lab_kernel || return 1
	hash=$(lab_initramfs_inputs "$@" | sha256sum | cut -c1-16)
	out=$LAB_CACHE/initramfs-$hash.cpio.zst
	LAB_INITRD=$out
	[ -f "$out" ] && { lab_log "initramfs $out (cached)"; return 0; }
	root=$LAB_CACHE/root-$hash
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,mnt/share,root,var/tmp}
	install -m 0755 "$(command -v busybox)" "$root/bin/busybox"
	for b in $(busybox --list); do
		[ -e "$root/bin/$b" ] || ln -s busybox "$root/bin/$b"
	done
	ln -sf ../bin/busybox "$root/sbin/modprobe"
	ln -sf ../bin/busybox "$root/sbin/poweroff"
	for p in "$@"; do
		lab_stage_program "$root" "$p" || return 1
	done
	# criu and gca-cts are looked for in the usual places
	[ -e "$root/usr/bin/criu" ] && ln -sf ../bin/criu "$root/usr/sbin/criu"
	install -m 0755 "$LAB_INIT" "$root/init"
	echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
	echo "root:x:0:" > "$root/etc/group"
	# gca-cts's network process runs as gca (cts.conf net_user, docs/ARCHITECTURE.md)
	echo "gca:x:999:999:gca:/nonexistent:/sbin/nologin" >> "$root/etc/passwd"
	echo "gca:x:999:" >> "$root/etc/group"
	echo "127.0.0.1 localhost" > "$root/etc/hosts"
	mkdir -p "$root/lib/modules/$LAB_KREL/kernel"
	for m in $LAB_MODULES; do
		[ -e "$LAB_KMODS/kernel/$m" ] || continue
		mkdir -p "$root/lib/modules/$LAB_KREL/kernel/$(dirname "$m")"
		cp -a "$LAB_KMODS/kernel/$m" "$root/lib/modules/$LAB_KREL/kernel/$(dirname "$m")/"
	done
	cp "$LAB_KMODS"/modules.{order,builtin}* "$root/lib/modules/$LAB_KREL/" 2>/dev/null
	busybox depmod -b "$root" "$LAB_KREL" ||
		{ echo "lab_initramfs: busybox depmod failed in $root" >&2; return 1; }
	(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | zstd -q -3 -T0 > "$out.tmp") ||
		{ echo "lab_initramfs: cpio | zstd failed" >&2; rm -f "$out.tmp"; return 1; }
	mv "$out.tmp" "$out"
	rm -rf "$root"
	# older images are left for whoever runs an older tree; keep the newest few
	ls -t "$LAB_CACHE"/initramfs-*.cpio.zst 2>/dev/null | tail -n +5 | xargs -r rm -f
	lab_log "initramfs $out ($(du -h "$out" | cut -f1))"
}

# lab_qemu SHARE LOG NETDEV NIC [QEMU-ARG...]: one guest's qemu in the background ($! its pid).
lab_qemu() {
	local share=$1 log=$2 net=$3 nic=$4
	shift 4
	rm -f "$share/scenario.rc"
	timeout -k 5 "$LAB_TIMEOUT" qemu-system-x86_64 -accel "$LAB_ACCEL" -cpu max -m "$LAB_MEM" -smp 1 \
		-display none -no-reboot -monitor none -serial "file:$log" \
		-kernel "$LAB_VMLINUZ" -initrd "$LAB_INITRD" \
		-append "console=ttyS0 quiet panic=-1 rdinit=/init" \
		-netdev "$net" -device "virtio-net-pci,netdev=n0$nic" \
		-virtfs "local,path=$share,mount_tag=share,security_model=none" \
		"$@" </dev/null >"$log.qemu" 2>&1 &
}

lab_boot() {
	local share=$1 log=$2 fwd net
	shift 2
	net="user,id=n0"
	for fwd in "$@"; do
		net+=",hostfwd=tcp:127.0.0.1:${fwd%%:*}-:${fwd##*:}"
	done
	lab_qemu "$share" "$log" "$net" ""
	LAB_PID=$!
	on_exit lab_stop
}

lab_guest_boot() {
	local name=$1
	shift
	lab_qemu "$@"
	LAB_PIDS[$name]=$!
	on_exit "lab_guest_stop $name"
}

# The single-guest functions, each on this guest's pid (LAB_PID is dynamically scoped).
lab_guest_wait() {
	local LAB_PID=${LAB_PIDS[$1]:-} rc
	lab_wait "$2"
	rc=$?
	LAB_PIDS[$1]=$LAB_PID
	return $rc
}

lab_guest_stop() {
	local LAB_PID=${LAB_PIDS[$1]:-}
	lab_stop
	LAB_PIDS[$1]=
}

lab_guest_wait_file() {
	local LAB_PID=${LAB_PIDS[$1]:-}
	lab_wait_file "$2" "$3"
}

lab_wait() {
	local limit=$1 i
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 "$LAB_PID" 2>/dev/null || { wait "$LAB_PID" 2>/dev/null; return 0; }
		sleep 0.1
	done
	lab_stop
	return 1
}

lab_stop() {
	[ -n "$LAB_PID" ] || return 0
	kill "$LAB_PID" 2>/dev/null && wait "$LAB_PID" 2>/dev/null
	LAB_PID=
	return 0
}

lab_wait_file() {
	local limit=$1 file=$2 i
	for ((i = 0; i < limit * 10; i++)); do
		[ -e "$file" ] && return 0
		[ -n "$LAB_PID" ] && ! kill -0 "$LAB_PID" 2>/dev/null && { [ -e "$file" ]; return; }
		sleep 0.1
	done
	return 1
}
