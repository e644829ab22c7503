#!/bin/sh
# Self-test of the vmm front end (cw-vmm) against QEMU's reference back end
# /usr/lib/qemu/vhost-user-gpu (package qemu-system-gui), which runs in "mem
# fallback" mode without a GPU and logs every virtio-gpu command with
# G_MESSAGES_DEBUG=all.
#
# It proves, before crossway's own back end exists, that our handshake is
# accepted, that our virtqueues and guest pages are right (the frames the
# back end forwards on the GPU socket match what we drew), and that our side
# copes with the reference's documented quirks.
#
# usage: selftest-reference.sh PATH/TO/cw-vmm
# Exit status 77 (skip) when the reference back end is not installed.
set -eu

BACKEND=${VHOST_USER_GPU:-/usr/lib/qemu/vhost-user-gpu}

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH/TO/cw-vmm" >&2
	exit 2
fi
VMM=$1
if [ ! -x "$BACKEND" ]; then
	echo "SKIP: $BACKEND not found (install the Debian package qemu-system-gui)"
	exit 77
fi

TMP=$(mktemp -d)
SOCK=$TMP/vhost-user.sock
BE_PID=
CHECKS=0

cleanup() {
	if [ -n "$BE_PID" ]; then
		kill "$BE_PID" 2>/dev/null || true
		wait "$BE_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	for f in "$TMP"/out "$TMP"/err "$TMP"/backend.log; do
		[ -f "$f" ] || continue
		echo "--- $(basename "$f") (last 30 lines)" >&2
		tail -n 30 "$f" >&2
	done
	exit 1
}

start_backend() {
	rm -f "$SOCK"
	G_MESSAGES_DEBUG=all "$BACKEND" -s "$SOCK" >"$TMP/backend.log" 2>&1 &
	BE_PID=$!
}

# The reference serves one connection and exits when it ends.
stop_backend() {
	kill "$BE_PID" 2>/dev/null || true
	wait "$BE_PID" 2>/dev/null || true
	BE_PID=
}

# vmm STATUS ARGS...: run cw-vmm and check its exit status.
vmm() {
	want=$1
	shift
	status=0
	timeout 120 "$VMM" --socket "$SOCK" "$@" >"$TMP/out" 2>"$TMP/err" || status=$?
	[ "$status" -eq "$want" ] || fail "cw-vmm $* exited $status, expected $want"
	CHECKS=$((CHECKS + 1))
}

has_line() {
	grep -qxF -- "$1" "$TMP/out" || fail "no line '$1' in the output"
	CHECKS=$((CHECKS + 1))
}

has_match() {
	grep -qE -- "$1" "$2" || fail "nothing matches '$1' in $(basename "$2")"
	CHECKS=$((CHECKS + 1))
}

# 1. The QEMU 7.2 handshake with the reference's own protocol features
#    (ADD_MEM_REG, REPLY_ACK, slave channel), display info answered through
#    our GPU-socket peer, a 2D scanout whose UPDATE must match the pattern,
#    a fenced partial flush, the cursor queue, and a reset.
start_backend
vmm 0 --gpu-peer=1024x768 \
	connect driver-ok display-info \
	scanout 64 48 --pattern quadrants expect-scanout expect-update \
	flush 0 0 32 24 --fence 7 wait-fence 7 expect-update \
	cursor 10 20 expect-cursor cursor 30 40 expect-cursor \
	gpu-stats reset stats
stop_backend
has_line "connect: features 0x175000000 protocol 0x8f2b (accepted 0x8f2b) queues 2 mem-slots 32"
has_line "display-info 0: 1024x768 enabled"
has_match '^driver-ok: features 0x10170000000 memory ADD_MEM_REG ' "$TMP/out"
has_line "scanout 0: resource 1 64x48 format 2, 1 mem entries, pattern quadrants"
has_line "scanout 0: 64x48 as set"
has_line "update 0: 0,0 64x48 3072 pixels match"
has_line "fence 7 done (OK_NODATA)"
has_line "update 0: 0,0 32x24 768 pixels match"
has_line "cursor-update 0: 10,20 as sent"
has_line "cursor-pos 0: 30,40 as sent"
has_match '^gpu-stats: sockets 1 protocol 1/1 display-info 1 scanout 1 update 2 cursor-update 1 cursor-pos 1 .* errors 0$' "$TMP/out"
# 11 control commands: display info, 6 for the scanout, 2 for the flush,
# 3 to set up the cursor image; 2 cursor commands.
has_line "reset: vq0 base 11 vq1 base 2"
for cmd in GET_DISPLAY_INFO RESOURCE_CREATE_2D RESOURCE_ATTACH_BACKING \
		TRANSFER_TO_HOST_2D SET_SCANOUT RESOURCE_FLUSH; do
	has_match "[0-9]+ VIRTIO_GPU_CMD_$cmd" "$TMP/backend.log"
done

# 2. The smallest protocol set (CONFIG only: SET_MEM_TABLE without acks),
#    four regions with command buffers straddling region boundaries, no
#    indirect descriptors, EVENT_IDX or RING_RESET (QEMU with
#    event_idx=off,indirect_desc=off,queue_reset=off: {30,32}), a full
#    1280x800 frame (a 4,096,020-byte UPDATE) with a pattern that differs
#    at every pixel.
start_backend
vmm 0 --gpu-peer --protocol-mask 0x200 --regions 4 --span=buffers \
	--no-indirect --no-event-idx --no-queue-reset \
	connect driver-ok display-info \
	scanout 1280 800 --pattern coords --entries 300 expect-update \
	scanout 16 16 --scanout 0 --pattern solid:336699 expect-update
stop_backend
has_line "connect: features 0x175000000 protocol 0x8f2b (accepted 0x200) queues 1 mem-slots 8"
has_match '^driver-ok: features 0x140000000 memory SET_MEM_TABLE ' "$TMP/out"
has_line "display-info 0: 1280x800 enabled"
has_line "scanout 0: resource 1 1280x800 format 2, 300 mem entries, pattern coords"
has_line "update 0: 0,0 1280x800 1024000 pixels match"
has_line "update 0: 0,0 16x16 256 pixels match"

# 3. The generic profile: only what the back end offers is negotiated (no
#    RING_RESET here), and the reference has no blob support.
start_backend
vmm 0 --gpu-peer --profile generic --num-scanouts 1 \
	connect driver-ok scanout 32 32 expect-update \
	blob-scanout 32 32 --expect err uuid --expect err
stop_backend
has_match '^driver-ok: features 0x170000000 ' "$TMP/out"
has_line "blob-scanout: RESOURCE_CREATE_BLOB ERR_UNSPEC (expected)"

# 4. Kill the connection mid-frame (a fenced flush still in flight), then
#    reconnect to a fresh back end at the same path and start over.
start_backend
"$VMM" --socket "$SOCK" --gpu-peer \
	connect driver-ok scanout 320 200 flush --fence 1 kill \
	reconnect 10000 driver-ok display-info scanout 32 32 expect-update \
	>"$TMP/out" 2>"$TMP/err" &
VMM_PID=$!
# The first back end exits when the connection closes; start the second.
wait "$BE_PID" 2>/dev/null || true
start_backend
status=0
wait "$VMM_PID" || status=$?
stop_backend
[ "$status" -eq 0 ] || fail "kill/reconnect run exited $status"
has_line "kill: connection closed"
has_match '^reconnect: features 0x175000000 ' "$TMP/out"
# (UPDATEs of the first connection may still be counted: match the start.)
has_match '^update 0: 0,0 32x32 1024 pixels match' "$TMP/out"

# 5. Faults: the reference panics (exits) on a descriptor loop and on ring
#    addresses outside guest memory; we must see it hang up, not hang.
start_backend
vmm 0 --gpu-peer connect driver-ok display-info fault desc-loop --expect closed
stop_backend
has_line "fault desc-loop: no response; back end closed the connection"
has_match "Incorrect order for descriptors" "$TMP/backend.log"
start_backend
vmm 0 --gpu-peer connect driver-ok fault ring-outside 1 --expect closed
stop_backend
has_match "Invalid vring_addr message" "$TMP/backend.log"

# 6. The documented 7.2 quirk (vhost-user.md §10.2.5): a rebind sends a
#    second GPU_SET_SOCKET, which the reference refuses; it then dies
#    writing to the socket we closed at reset.
start_backend
vmm 1 --gpu-peer connect driver-ok display-info reset rebind display-info
stop_backend
has_match "rebind: .*\(new ring addresses\)" "$TMP/out"
has_match "assertion 'g->sock_fd == -1' failed" "$TMP/backend.log"
has_match "closed the vhost-user connection" "$TMP/err"

echo "selftest-reference: $CHECKS checks passed"
