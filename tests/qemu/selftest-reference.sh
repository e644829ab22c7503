#!/bin/sh
# selftest-reference.sh [--out DIR] [--quick]
#
# Validates the harness end to end against QEMU's own reference back end,
# /usr/lib/qemu/vhost-user-gpu (package qemu-system-gui; without GBM or
# udmabuf it runs in "mem fallback", no host GPU needed):
#   1. one GPU, cwtest=pattern:3: the guest's GTEST lines (GETPARAM values,
#      SETCRTC with a mode, DIRTYFB, the blob probe's EINVAL, done), the back
#      end's command log, and a QMP screendump of what QEMU received over the
#      display socket, checked against the pattern (pattern-shot.py);
#   2. (not with --quick) two GPUs with two back ends, palettes 1 and 2,
#      cwtest=pattern:2,console:1: both pictures checked the same way.
# No rebind: the stock back end dies on the second GPU_SET_SOCKET.
#
# Logs: DIR/one-gpu/, DIR/two-gpus/ (run-guest.sh's files plus backend*.log
# and shot*.ppm). DIR defaults to $CW_OUTPUT_DIR/qemu-selftest
# (CW_OUTPUT_DIR: ${TMPDIR:-/tmp}/crossway-test-output).
# Exit status: 0 pass, 1 fail, 2 usage, 77 something required is missing.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="${CW_OUTPUT_DIR:-${TMPDIR:-/tmp}/crossway-test-output}/qemu-selftest"
quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--out)
		[ $# -ge 2 ] || { echo "usage: $0 [--out DIR] [--quick]" >&2; exit 2; }
		out=$2
		shift 2
		;;
	--quick) quick=1; shift ;;
	*) echo "usage: $0 [--out DIR] [--quick]" >&2; exit 2 ;;
	esac
done

BACKEND=/usr/lib/qemu/vhost-user-gpu
PY=/usr/bin/python3

# Everything that is needed, named by package, all at once.
need=""
lack() { need="$need${need:+, }$1"; }
[ -x "$BACKEND" ] || lack "$BACKEND (qemu-system-gui)"
command -v qemu-system-x86_64 >/dev/null 2>&1 || lack "qemu-system-x86_64 (qemu-system-x86)"
command -v gdb >/dev/null 2>&1 || lack "gdb (gdb)"
command -v gcc >/dev/null 2>&1 || lack "gcc (gcc)"
command -v cpio >/dev/null 2>&1 || lack "cpio (cpio)"
[ -x /bin/busybox ] || lack "/bin/busybox (busybox-static)"
[ -f /usr/include/libdrm/drm_mode.h ] || lack "/usr/include/libdrm/drm_mode.h (libdrm-dev)"
ls /lib/modules/6.1.*/kernel/drivers/gpu/drm/virtio/virtio-gpu.ko >/dev/null 2>&1 ||
	lack "a 6.1 kernel with its modules (linux-image-amd64)"
[ -x "$PY" ] || lack "$PY (python3)"
if [ -n "$need" ]; then
	echo "SKIP: selftest-reference: missing: $need" >&2
	exit 77
fi

t0=$(date +%s.%N)
mkdir -p "$out"
out=$(cd "$out" && pwd)
run=$(mktemp -d "${TMPDIR:-/tmp}/cw-selftest.XXXXXX")
pids=""
cleanup() {
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null || true
	done
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

fail() {
	echo "FAIL: selftest-reference: $*" >&2
	exit 1
}

# start_backend NAME LOG: a reference back end on $run/NAME.sock, once it
# listens (bounded wait). Its pid is added to $pids.
start_backend() {
	rm -f "$run/$1.sock"
	G_MESSAGES_DEBUG=all "$BACKEND" -s "$run/$1.sock" >"$2" 2>&1 </dev/null &
	pids="$pids $!"
	i=0
	while [ ! -S "$run/$1.sock" ]; do
		[ $i -lt 100 ] || fail "$BACKEND did not listen on $run/$1.sock within 10 s (log: $2)"
		kill -0 "$!" 2>/dev/null || fail "$BACKEND exited at start (log: $2)"
		sleep 0.1
		i=$((i + 1))
	done
}

# expect DIR ERE WHAT: a line of DIR/gtest.log matches.
expect() {
	grep -Eq -- "$2" "$1/gtest.log" || {
		sed 's/^/  /' "$1/gtest.log" >&2
		fail "no GTEST line for $3 (/$2/) in $1/gtest.log"
	}
}

# The back end is done once QEMU has gone; give it a moment, then stop it.
stop_backends() {
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=""
}

shot() { # shot OUT_FILE DEVICE PALETTE -> a --then fragment
	printf "'%s' '%s' shot --qmp \"\$RUN_GUEST_QMP\" --out '%s' --device %s --palette %s" \
		"$PY" "$here/pattern-shot.py" "$1" "$2" "$3"
}

# 1. One GPU.
d=$out/one-gpu
rm -rf "$d"
mkdir -p "$d"
start_backend gpu0 "$d/backend.log"
st=0
"$here/run-guest.sh" --socket "$run/gpu0.sock" --out "$d" --test pattern:3 --palette 1 \
	--timeout 150 --wait-line '^GTEST pattern-shown .*card=0' \
	--then "$(shot "$d/shot.ppm" gpu0 1)" || st=$?
stop_backends
[ "$st" -eq 0 ] || fail "one GPU: run-guest.sh exited $st (logs in $d)"
expect "$d" '^GTEST gpus=1 cards=card0$' "one GPU with a card"
expect "$d" '^GTEST virtio virtio0 device=0x0010 .*bits=28,29,32,40$' "the negotiated features"
expect "$d" '^GTEST getparam 0,1,0,0,0,0,0 card=0$' "GETPARAM 1-7 of the stock back end"
expect "$d" '^GTEST connector .*status=connected modes=[1-9][0-9]* first=1280x800@60 card=0$' "the connector"
expect "$d" '^GTEST SETCRTC ok 1280x800 pitch=5120 card=0$' "SETCRTC with a mode"
expect "$d" '^GTEST DIRTYFB ok card=0$' "DIRTYFB"
expect "$d" '^GTEST pattern-shown 1280x800 palette=1 card=0$' "the pattern"
expect "$d" '^GTEST create_blob\(GUEST,MAPPABLE\) r=-1 errno=22 card=0$' "the blob probe (EINVAL on 7.2)"
expect "$d" '^GTEST pattern-done card=0$' "the end of the pattern"
expect "$d" '^GTEST summary failures=0 ' "no failed step"
expect "$d" '^GTEST done$' "done"
for cmd in GET_DISPLAY_INFO RESOURCE_CREATE_2D RESOURCE_ATTACH_BACKING SET_SCANOUT \
	TRANSFER_TO_HOST_2D RESOURCE_FLUSH RESOURCE_UNREF; do
	grep -q "VIRTIO_GPU_CMD_$cmd\$" "$d/backend.log" ||
		fail "one GPU: the back end never logged $cmd (log: $d/backend.log)"
done
grep -q 'pattern-shot: match 1280x800 palette 1' "$d/then.log" ||
	fail "one GPU: the host screenshot did not match (see $d/then.log)"
one=$(sed -n 's/^elapsed=//p' "$d/summary.txt")

# 2. Two GPUs, two back ends, told apart by their palettes.
two=""
if [ "$quick" -eq 0 ]; then
	d=$out/two-gpus
	rm -rf "$d"
	mkdir -p "$d"
	start_backend gpu0 "$d/backend0.log"
	start_backend gpu1 "$d/backend1.log"
	st=0
	"$here/run-guest.sh" --socket "$run/gpu0.sock" --socket "$run/gpu1.sock" --out "$d" \
		--test pattern:2,console:1 --palette 1,2 --timeout 150 \
		--wait-line '^GTEST pattern-shown .*card=[01]$' \
		--then "$(shot "$d/shot0.ppm" gpu0 1) && $(shot "$d/shot1.ppm" gpu1 2)" || st=$?
	stop_backends
	[ "$st" -eq 0 ] || fail "two GPUs: run-guest.sh exited $st (logs in $d)"
	expect "$d" '^GTEST gpus=2 cards=card0,card1$' "two GPUs with cards"
	for c in 0 1; do
		expect "$d" "^GTEST SETCRTC ok 1280x800 pitch=5120 card=$c\$" "SETCRTC on card$c"
		expect "$d" "^GTEST DIRTYFB ok card=$c\$" "DIRTYFB on card$c"
		expect "$d" "^GTEST pattern-done card=$c\$" "the end of the pattern on card$c"
	done
	expect "$d" '^GTEST console-done lines=4$' "the fbcon text"
	expect "$d" '^GTEST summary failures=0 ' "no failed step"
	expect "$d" '^GTEST done$' "done"
	for b in 0 1; do
		grep -q 'VIRTIO_GPU_CMD_SET_SCANOUT$' "$d/backend$b.log" ||
			fail "two GPUs: back end $b never logged SET_SCANOUT"
	done
	grep -q 'pattern-shot: match 1280x800 palette 1' "$d/then.log" &&
		grep -q 'pattern-shot: match 1280x800 palette 2' "$d/then.log" ||
		fail "two GPUs: the host screenshots did not match (see $d/then.log)"
	two=$(sed -n 's/^elapsed=//p' "$d/summary.txt")
fi

total=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "PASS: selftest-reference in ${total}s (one GPU ${one}s${two:+, two GPUs ${two}s}; logs in $out)"
