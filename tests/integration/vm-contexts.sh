#!/bin/sh
# Cross-domain contexts (capset 5) at the device level: our front end
# (tests/vmm) sends crossway's virtio-gpu device what QEMU/crosvm and the
# Linux driver send for a guest proxy, and every answer is checked exactly
# (test-xdomain-transport --device: capsets, context commands and their
# errors, INIT variants, image requirements, POLLs held until a message,
# per-timeline order, rings > 1, SUBMIT_3D limits, destroy/unref with a POLL
# held, a guest that never polls, reset and reconnection with live contexts
# leaving no fd behind, two VMs). Then the guest proxy's own transport
# (vm/guest/transport_vhost_user.c) over the same socket: the whole path,
# its fault modes, and a VM that offers no context types.
. "$(dirname "$0")/../lib.sh"

CW_VMM=${CW_VMM:?}
# Built next to cw-vmm (tests/vmm/meson.build).
XDOM_TEST=${CW_XDOMAIN_TEST:-$(dirname "$CW_VMM")/test-xdomain-transport}

crossway_alive() {
	kill -0 "$PPID" 2>/dev/null || fail "crossway died"
}

# xdom NAME ARGS...: one run of the test program that must succeed.
xdom() {
	name=$1
	shift
	"$XDOM_TEST" "$@" >"$CW_ARTIFACTS/$name.out" 2>&1 || {
		tail -n 40 "$CW_ARTIFACTS/$name.out" >&2
		fail "test-xdomain-transport $name failed"
	}
}

# xdom_fault KIND@N STATUS: the transport's malformed submission gets an
# error response with that status; the run itself fails (its path broke).
xdom_fault() {
	if CWG_VHOST_USER_OPTS="fault=$1" "$XDOM_TEST" "$XDG_RUNTIME_DIR/alpha.sock" \
			>"$CW_ARTIFACTS/fault-$1.out" 2>&1; then
		fail "fault $1: the whole path succeeded with a malformed submission"
	fi
	grep -q "fault: submission ${1#*@} is malformed on purpose" "$CW_ARTIFACTS/fault-$1.out" ||
		fail "fault $1 was not injected: $(tail -n 3 "$CW_ARTIFACTS/fault-$1.out")"
	grep -q "\*ERROR\* response $2 " "$CW_ARTIFACTS/fault-$1.out" ||
		fail "fault $1: no error response $2: $(grep -i error "$CW_ARTIFACTS/fault-$1.out")"
	crossway_alive
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	log="$CW_ARTIFACTS/crossway.log"
	[ -x "$XDOM_TEST" ] || fail "$XDOM_TEST is not built"
	[ "$(cat "/proc/$PPID/comm")" = crossway ] || fail "the parent process is not crossway"

	# A sanitizer build keeps freed memory in quarantine: RSS there follows
	# allocation churn, not what crossway holds, so its bound is looser.
	rss_bound=4096
	if ldd "$CROSSWAY" 2>/dev/null | grep -q libasan; then
		rss_bound=40960
	fi
	xdom device "$XDG_RUNTIME_DIR/alpha.sock" --device --pid "$PPID" \
		--other "$XDG_RUNTIME_DIR/beta.sock" --rss-bound "$rss_bound"
	grep -q '^ok: every device-level check passed$' "$CW_ARTIFACTS/device.out" ||
		fail "the device-level checks did not all run"
	crossway_alive

	# The device's own account of what it refused.
	grep -q '\[vm alpha\] SUBMIT_3D to context 50: fence on ring 2 ' "$log" ||
		fail "the fence on ring 2 was not refused with a log line"
	grep -q '\[vm alpha\] cross-domain context 61: channel ring [0-9]*: a [0-9]*-byte message cannot be written (not attached): dropped' "$log" ||
		fail "the message for a freed channel ring was not logged as dropped"
	grep -q '\[vm beta\] cross-domain context 110: SEND: resource 500 is not attached to this context' "$log" ||
		fail "beta's SEND of a blob attached only in alpha was not refused as such"
	# Every guest client made was ended (reset, destroy, VMM gone, dropped).
	connected=$(grep -c 'guest client connected' "$log")
	gone=$(grep -c 'guest client gone' "$log")
	[ "$connected" -gt 20 ] && [ "$connected" -eq "$gone" ] ||
		fail "$connected guest clients connected, $gone gone"

	# crossway-guest's vhost-user transport: the whole path, twice, then its
	# fault modes (each an error response; crossway serves the next one).
	xdom whole "$XDG_RUNTIME_DIR/alpha.sock"
	grep -q '^ok: [0-9]* globals through the cross-domain channel' "$CW_ARTIFACTS/whole.out" ||
		fail "whole path: $(tail -n 3 "$CW_ARTIFACTS/whole.out")"
	xdom legacy "$XDG_RUNTIME_DIR/alpha.sock" --legacy-init
	xdom_fault ring@2 0x1205
	xdom_fault ctx@3 0x1204
	xdom_fault size@4 0x1205
	xdom after-faults "$XDG_RUNTIME_DIR/alpha.sock"

	# A VM without context types: no capset, every context command refused.
	xdom no-contexts "$XDG_RUNTIME_DIR/gamma.sock" --no-contexts
	grep -q '^ok: the device offers no context types' "$CW_ARTIFACTS/no-contexts.out" ||
		fail "no-contexts: $(tail -n 3 "$CW_ARTIFACTS/no-contexts.out")"
	crossway_alive
	exit 0
fi

setup_runtime_dir
run_crossway_with_self --size 1280x800 \
	--vm "alpha=$XDG_RUNTIME_DIR/alpha.sock" \
	--vm "beta=$XDG_RUNTIME_DIR/beta.sock" \
	--vm "gamma=$XDG_RUNTIME_DIR/gamma.sock,contexts=off"
