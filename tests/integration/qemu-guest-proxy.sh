#!/bin/sh
# Real QEMU 7.2 with a real Linux 6.1 guest: crossway-guest (static, DRM
# transport only: vm/guest/build-static.sh) on the guest's render node,
# against crossway's device. crossway offers VIRGL, RESOURCE_BLOB,
# CONTEXT_INIT and capset 5, but QEMU 7.2's vhost-user-gpu-pci passes only
# VIRGL of these on to the guest, so the guest sees 3D_FEATURES=1,
# CAPSET_QUERY_FIX=1, RESOURCE_BLOB=0, HOST_VISIBLE=0, CROSS_DEVICE=0,
# CONTEXT_INIT=0 and SUPPORTED_CAPSET_IDs=1<<5 (kms-pattern's GETPARAM
# line), and crossway-guest must refuse it: exit status 1 and one line
# naming RESOURCE_BLOB and CONTEXT_INIT, and nothing about capset 5, which
# the kernel did read from crossway (GET_CAPS works without CONTEXT_INIT).
. "$(dirname "$0")/../lib.sh"

QEMU_DIR=$(cd "$(dirname "$0")/../qemu" && pwd)
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
VM=proxy
GUEST_DIR="$CW_OUTPUT_DIR/qemu-guest-with-proxy" # not $CW_ARTIFACTS: setup_runtime_dir empties that
PROXY="$GUEST_DIR/bin/crossway-guest"

require_qemu() {
	for tool in qemu-system-x86_64:qemu-system-x86 gdb:gdb cpio:cpio gcc:gcc; do
		require_program "${tool%%:*}" "${tool#*:}"
	done
	[ -x /bin/busybox ] || skip "/bin/busybox is missing (package busybox-static)"
	ls /boot/vmlinuz-6.1* >/dev/null 2>&1 || skip "no 6.1 guest kernel (package linux-image-amd64)"
	[ -f "$(gcc -print-file-name=libc.a)" ] ||
		skip "no static libc for the guest's crossway-guest (package libc6-dev)"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	out="$CW_ARTIFACTS/guest"
	"$QEMU_DIR/run-guest.sh" --socket "$XDG_RUNTIME_DIR/$VM.sock" --out "$out" \
		--guest-dir "$GUEST_DIR" --program "$PROXY" --timeout 100 --test pattern:0,guestproxy:5 \
		--strict || fail "the guest run failed (logs in $out)"
	gtest="$out/gtest.log"
	grep '^GTEST \(getparam\|guestproxy\)' "$gtest" | sed 's/^/# /' >&2

	# What the guest's driver made of the device (GETPARAM 1-7 on card0).
	got=$(sed -n 's/^GTEST getparam \([0-9e,]*\) card=0$/\1/p' "$gtest")
	[ "$got" = "1,1,0,0,0,0,32" ] ||
		fail "GETPARAM 1-7 are '$got', expected 1,1,0,0,0,0,32 (3D_FEATURES, CAPSET_QUERY_FIX," \
			"RESOURCE_BLOB, HOST_VISIBLE, CROSS_DEVICE, CONTEXT_INIT, SUPPORTED_CAPSET_IDs)"

	# The refusal: status 1, one line, naming exactly what is missing.
	status=$(sed -n 's/^GTEST guestproxy exit=\([0-9]*\)$/\1/p' "$gtest")
	lines=$(grep -c '^GTEST guestproxy: ' "$gtest" || true)
	msg=$(sed -n 's/^GTEST guestproxy: //p' "$gtest")
	[ "$status" = 1 ] || fail "crossway-guest exited with status '$status', expected 1: $msg"
	[ "$lines" -eq 1 ] || fail "crossway-guest printed $lines lines, expected one: $(echo "$msg" | tr '\n' '|')"
	case $msg in
	"crossway-guest: /dev/dri/renderD128: "*" it lacks RESOURCE_BLOB, CONTEXT_INIT") ;;
	*) fail "the refusal does not name exactly RESOURCE_BLOB and CONTEXT_INIT: $msg" ;;
	esac
	exit 0
fi

require_qemu
# Build the proxy and the guest once, outside crossway's time.
mkdir -p "$GUEST_DIR/bin"
sh "$SRC_DIR/vm/guest/build-static.sh" "$PROXY.new" >"$GUEST_DIR/build.log" 2>&1 ||
	fail "cannot build the static crossway-guest: $(tail -n 5 "$GUEST_DIR/build.log")"
# Keep the old file (and so the cached initrd) when nothing changed.
if cmp -s "$PROXY.new" "$PROXY"; then rm -f "$PROXY.new"; else mv -f "$PROXY.new" "$PROXY"; fi
st=0
"$QEMU_DIR/make-initrd.sh" "$GUEST_DIR" --program "$PROXY" >/dev/null || st=$?
[ "$st" -ne 77 ] || skip "the guest cannot be built (make-initrd.sh names what is missing above)"
[ "$st" -eq 0 ] || fail "cannot build the guest"
setup_runtime_dir
run_crossway_with_self --vm "$VM=$XDG_RUNTIME_DIR/$VM.sock"
