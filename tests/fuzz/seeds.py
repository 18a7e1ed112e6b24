#!/usr/bin/env python3
"""Writes corpus/fuzz_server/, corpus/fuzz_client/, corpus/fuzz_fetch/, corpus/fuzz_ctl/ and corpus/fuzz_relay/: seeds of real frames for fuzz_server.c (3 bytes: table, role,
directory mode; then frames as a peer sends them). Run again after a message changes; libFuzzer
grows the rest from these. Frames are msgpack maps {v, t, id, b}, encoded here by hand so that no
Python package is needed."""
import os
import struct
import sys

def pack(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if o >= 0:
            return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        return pack_str(o)
    if isinstance(o, bytes):
        return b"\xc4" + bytes([len(o)]) + o
    if isinstance(o, list):
        return bytes([0x90 | len(o)]) + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(o)

def pack_str(s):
    b = s.encode()
    if len(b) < 32:
        return bytes([0xa0 | len(b)]) + b
    return (b"\xd9" + bytes([len(b)]) if len(b) < 256 else b"\xda" + struct.pack(">H", len(b))) + b

def enc(o):
    if isinstance(o, str):
        return pack_str(o)
    if isinstance(o, list):
        return bytes([0x90 | len(o)]) + b"".join(enc(x) for x in o)
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(enc(k) + enc(v) for k, v in o.items())
    return pack(o)

def frame(t, i, b=None):
    if isinstance(t, tuple):        # (type, id): a reply, with the id of what it answers
        t, i = t
    payload = enc({"v": 1, "t": t, "id": i, "b": b or {}})
    return struct.pack(">I", len(payload)) + payload

TABLES = {"gcs": 0, "cts": 1, "cts-local": 2, "gcs>cts": 0, "cts>gcs": 1}  # fuzz_client: 0, 1
ROLES = {"none": 0, "broker": 1, "admin": 2, "cts": 3, "gcs": 4, "local": 5}
CK = "0123abcd-0000-4000-8000-00000000000a"
CK2 = "0123abcd-0000-4000-8000-00000000000b"
REG = {"name": "fuzz-cts", "endpoint": "127.0.0.1:7391", "exec_manager": "fork",
       "core_service": "app", "external": True, "self_checkpoint": True, "migrate": True,
       "any_image": False, "classes": ["batch"], "properties": ["arch=x86_64"], "status": "ok"}
LOG = {"checkpoint_id": CK, "gid": "job1", "cts": "fuzz-cts", "core_service": "app",
       "image_name": "img", "exec_manager": "fork", "sha256": "a" * 64, "kind": "full",
       "time_ms": 1700000000000, "size": 4096, "properties": []}

SEEDS = {
    "gcs-cts-life": ("gcs", "cts", 0, [
        ("cts_register", REG), ("cts_heartbeat", {"name": "fuzz-cts", "status": "ok"}),
        ("job_bind", {"gid": "job1", "cts": "fuzz-cts", "local_id": "123:456", "owner": "1000"}),
        ("checkpoint_log", LOG),
        ("checkpoint_log", dict(LOG, checkpoint_id=CK2, parent=CK, kind="incremental")),
        ("query", {"what": "checkpoints", "gid": "job1"}),
        ("image_grant", {"checkpoint_id": CK, "target_cts": "fuzz-cts"}),
        ("image_location", {"checkpoint_id": CK, "gid": "job1", "cts": "fuzz-cts",
                            "removed": True}),
        ("job_unbind", {"gid": "job1", "cts": "fuzz-cts", "state": "finished",
                        "exit_status": 0, "local_id": "123:456"})]),
    "gcs-cts-down": ("gcs", "cts", 4, [("cts_register", REG), ("checkpoint_log", LOG)]),
    "gcs-cts-cas": ("gcs", "cts", 5, [
        ("job_bind", {"gid": "job1", "cts": "fuzz-cts", "recovery": True,
                      "checkpoint_id": CK})]),
    "gcs-broker": ("gcs", "broker", 0, [
        ("ping", {}), ("do_checkpoint", {"gid": "job1", "idem_key": "k1", "timeout_ms": 1000}),
        ("query", {"what": "jobs"}), ("query", {"what": "cts", "class": "batch"}),
        ("query", {"what": "latest", "gid": "job1"}), ("subscribe", {"gid": "job1"})]),
    "gcs-admin": ("gcs", "admin", 0, [
        ("class_register", {"name": "batch", "description": "d", "properties": ["a=b"]}),
        ("cts_remove", {"name": "fuzz-cts"}), ("image_gc", {"gid": "job1", "dry_run": True}),
        ("query", {"what": "services"}), ("subscribe", {})]),
    "gcs-local": ("gcs", "local", 0, [("ping", {}), ("query", {"what": "jobs"})]),
    "gcs-stray": ("gcs", "broker", 0, [("ok", {}), ("err", {"code": "x", "msg": "y"})]),
    "cts-gcs": ("cts", "gcs", 0, [
        ("ping", {}), ("do_checkpoint", {"gid": "job1", "timeout_ms": 1000}),
        ("job_moved", {"gid": "job1", "cts": "other", "local_id": "1:2"}),
        ("image_gc", {"gid": "job1", "dry_run": True})]),
    "cts-cts": ("cts", "cts", 0, [
        ("image_fetch", {"checkpoint_id": CK, "grant": "G1.x.y", "file": "manifest",
                         "offset": 0, "max": 65536}),
        ("image_replicate", {"checkpoint_id": CK, "gid": "job1", "sha256": "a" * 64,
                             "grant": "G1.x.y", "holders": ["other"]})]),
    "cts-admin": ("cts", "admin", 0, [("image_gc", {"gid": "job1"}), ("ok", {})]),
    "local-info": ("cts-local", "local", 0, [
        ("ping", {}), ("local_info", {}), ("local_checkpoint", {"gid": "job1"}),
        ("local_exit", {"gid": "job1", "pid": 1, "exit_status": 0}),
        ("app_saved", {"checkpoint_id": CK, "ok": True}),
        ("restore_prepare", {"gid": "job1", "checkpoint": "latest", "target_cts": "fuzz-cts"}),
        ("local_vm_take", {"gid": "job1", "memory_mib": 64})]),
    # whole (every field the type requires): the handler runs, and refuses (no vmm pool here)
    "local-vm-take": ("cts-local", "local", 0, [
        ("local_vm_take", {"gid": "job1", "qemu": "/usr/bin/qemu-system-x86_64", "machine": "q35",
                           "accel": "kvm", "kernel": "/boot/vmlinuz", "initrd": "/boot/initrd",
                           "memory_mib": 64})]),
    # client scenarios: the frames are what the hostile peer answers
    "hostile-cts-ok": ("gcs>cts", "none", 0, [
        (("ok", 1), {"checkpoint_id": CK, "image_name": "img", "cts": "fuzz-cts", "seq": 1})]),
    "hostile-cts-err": ("gcs>cts", "none", 0, [
        (("err", 1), {"code": "busy", "msg": "no"}),
        ("notify", {"event": "checkpoint", "gid": "job1"})]),
    "hostile-gcs-ok": ("cts>gcs", "none", 0, [
        (("ok", 1), {}), (("ok", 2), {"state": "bound"}), (("ok", 3), {})]),
    "hostile-gcs-moved": ("cts>gcs", "none", 0, [
        (("ok", 1), {}), (("err", 2), {"code": "moved", "msg": "elsewhere"}),
        ("job_moved", {"gid": "job1", "cts": "other"})]),
    "local-bind": ("cts-local", "local", 0, [
        ("local_bind", {"gid": "job1", "pid": 1, "checkpoint_every_ms": 0})]),
}

# fuzz_ctl: byte 0 the descriptors sent (0 none, 1 one, 2 two, 3 one with an empty message), then
# one control message as the CTS's network process sends it (proto/relay.c).
CTL_SEEDS = {
    "accepted": (1, "net_accepted", {"role": "cts", "name": "fuzz-cts"}),
    "accepted-broker": (1, "net_accepted", {"role": "broker", "name": "b1"}),
    "accepted-local": (1, "net_accepted", {"role": "local", "name": "x"}),
    "accepted-nofd": (0, "net_accepted", {"role": "cts", "name": "fuzz-cts"}),
    "refused": (0, "net_refused", {"name": "certificate"}),
    "refused-unknown": (0, "net_refused", {"name": "whatever"}),
    "refused-fd": (1, "net_refused", {"name": "tls_error"}),
    "two-fds": (2, "net_accepted", {"role": "admin", "name": "a"}),
    "connect": (0, "net_connect", {"endpoint": "127.0.0.1:1", "role": "gcs", "name": "g"}),
    "empty": (3, "net_accepted", {"role": "cts", "name": "c"}),
    "too-long": (1, "net_accepted", {"role": "cts", "name": "n" * 4120}),
}

# fuzz_relay: byte 0 bit 0 a peer the relay accepted, byte 1 how many bytes the daemon writes first
# (its requests), then what the peer sends.
RELAY_SEEDS = {
    "served": (1, [], [("ping", {}), ("do_checkpoint", {"gid": "job1", "timeout_ms": 1000}),
                       ("query", {"what": "jobs"})]),
    "served-stray-ok": (1, [], [(("ok", 7), {"x": 1})]),
    "served-bad-body": (1, [], [("do_checkpoint", {"gid": 5})]),
    "dialled-answers": (0, [("cts_register", REG), ("do_checkpoint", {"gid": "job1"})],
                        [(("ok", 1), {}), (("err", 2), {"code": "busy", "msg": "no"}),
                         ("notify", {"event": "checkpoint", "gid": "job1"})]),
    "dialled-ok-checkpoint": (0, [("do_checkpoint", {"gid": "job1", "timeout_ms": 1000})],
                              [(("ok", 1), {"checkpoint_id": CK, "image_name": "img",
                                            "cts": "fuzz-cts", "seq": 1})]),
    "dialled-bad-reply": (0, [("do_checkpoint", {"gid": "job1"})], [(("ok", 1), {"checkpoint_id": 5})]),
    "dialled-bad-frame": (0, [], [("ping", {"x": [1, 2]}), ("no_such_type", {})]),
}

# fuzz_fetch: byte 0 (bits 0-1) the holders named, bit 2 the first is another CTS; then what each
# connection the fetch makes is answered, split on "HOLD". FETCH_MANIFEST's sha256 is the record's
# (FETCH_SHA in fuzz_fetch.c), so a holder sending it reaches the signature check.
FETCH_MANIFEST = b"gca-image 1\ncheckpoint " + CK.encode() + b"\ngid job1\nfile " + \
    b"0" * 64 + b" 5 pages.img\n"
FETCH_SIG = b"not a signature"

def fetch_ok(i, data, eof=True, size=None):
    return (("ok", i), {"data": data, "eof": eof, "size": len(data) if size is None else size})

FETCH_SEEDS = {
    "manifest-and-sig": (0, [[fetch_ok(1, FETCH_MANIFEST), fetch_ok(2, FETCH_SIG)]]),
    "refused-then-replica": (1, [[(("err", 1), {"code": "forbidden", "msg": "no grant"})],
                                 [fetch_ok(2, FETCH_MANIFEST), fetch_ok(3, FETCH_SIG)]]),
    "broken-then-resumed": (0, [[fetch_ok(1, FETCH_MANIFEST[:10], False, len(FETCH_MANIFEST))],
                                [fetch_ok(3, FETCH_MANIFEST), fetch_ok(4, FETCH_SIG)]]),
    "out-of-order": (0, [[fetch_ok(5, FETCH_MANIFEST)]]),
    "another-cts": (5, [[], [fetch_ok(1, FETCH_MANIFEST), fetch_ok(2, FETCH_SIG)]]),
    "wrong-reply": (0, [[(("ok", 1), {"data": 5, "eof": "x"}), ("notify", {"event": "x"})]]),
}

def main():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(os.path.join(top, "fuzz_relay"), exist_ok=True)
    for name, (accepted, own, net) in RELAY_SEEDS.items():
        first = b"".join(frame(t, i + 1, b) for i, (t, b) in enumerate(own))
        assert len(first) < 256, name
        with open(os.path.join(top, "fuzz_relay", name), "wb") as f:
            f.write(bytes([accepted, len(first)]) + first +
                    b"".join(frame(t, i + 1, b) for i, (t, b) in enumerate(net)))
    os.makedirs(os.path.join(top, "fuzz_fetch"), exist_ok=True)
    for name, (flags, conns) in FETCH_SEEDS.items():
        with open(os.path.join(top, "fuzz_fetch", name), "wb") as f:
            f.write(bytes([flags]) + b"HOLD".join(
                b"".join(frame(t, 0, b) for t, b in conn) for conn in conns))
    os.makedirs(os.path.join(top, "fuzz_ctl"), exist_ok=True)
    for name, (fds, t, b) in CTL_SEEDS.items():
        with open(os.path.join(top, "fuzz_ctl", name), "wb") as f:
            f.write(bytes([fds]) + frame(t, 0, b))
    for name, (table, role, mode, frames) in SEEDS.items():
        out = os.path.join(top, "fuzz_client" if ">" in table else "fuzz_server")
        os.makedirs(out, exist_ok=True)
        data = bytes([TABLES[table], ROLES[role], mode])
        data += b"".join(frame(t, i + 1, b) for i, (t, b) in enumerate(frames))
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return 0

if __name__ == "__main__":
    sys.exit(main())
