#!/bin/sh
# Real QEMU 7.2 with a real Linux 6.1 guest against crossway's vhost-user
# virtio-gpu (tests/qemu/ has the harness; TCG + the documented KVM-check
# workaround). The guest draws a known pattern through KMS dumb buffers and
# crossway shows it in the VM's framed window; a driver unbind/rebind takes
# the window away and brings it back; two VMs run at once, each in its own
# window and colour.
. "$(dirname "$0")/../lib.sh"

QEMU_DIR=$(cd "$(dirname "$0")/../qemu" && pwd)
ALPHA_COLOR=b5420b
BETA_COLOR=2e7d32

require_qemu() {
	for tool in qemu-system-x86_64:qemu-system-x86 gdb:gdb cpio:cpio; do
		require_program "${tool%%:*}" "${tool#*:}"
	done
	[ -x /bin/busybox ] || skip "/bin/busybox is missing (package busybox-static)"
	ls /boot/vmlinuz-6.1* >/dev/null 2>&1 || skip "no 6.1 guest kernel (package linux-image-amd64)"
}

# check_quadrants IMAGE PALETTE: the guest's quadrants in the window at WIN_*
check_quadrants() {
	case $2 in
	1) colors="ff0000 00ff00 0000ff ffffff" ;;
	2) colors="ffff00 00ffff ff00ff 808080" ;;
	esac
	# shellcheck disable=SC2086
	set -- "$1" "$2" $colors
	qx=$((WIN_W / 4)) qy=$((WIN_H / 4))
	expect_pixel "$1" $((WIN_X + qx)) $((WIN_Y + qy)) "$3"
	expect_pixel "$1" $((WIN_X + 3 * qx)) $((WIN_Y + qy)) "$4"
	expect_pixel "$1" $((WIN_X + qx)) $((WIN_Y + 3 * qy)) "$5"
	expect_pixel "$1" $((WIN_X + 3 * qx)) $((WIN_Y + 3 * qy)) "$6"
}

# guest VM RUN [run-guest options]: boots a guest on VM's socket; its logs go
# to $CW_ARTIFACTS/RUN (a fresh directory per run: no stale serial lines).
guest() {
	name=$1 run=$2
	shift 2
	"$QEMU_DIR/run-guest.sh" --socket "$XDG_RUNTIME_DIR/$name.sock" --out "$CW_ARTIFACTS/$run" \
		--guest-dir "$CW_OUTPUT_DIR/qemu-guest" --timeout 240 "$@"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	log="$CW_ARTIFACTS/crossway.log"

	# One VM: the pattern in a window framed in the VM's colour.
	guest alpha alpha-pattern --test pattern:6 --palette 1 --wait-line 'GTEST pattern-shown' \
		--then "grim '$CW_ARTIFACTS/alpha.png'" || fail "the alpha guest run failed"
	wait_mapped alpha vm-display
	check_quadrants "$CW_ARTIFACTS/alpha.png" 1
	note "alpha's display: ${WIN_W}x${WIN_H} at $WIN_X,$WIN_Y"
	expect_pixel_near "$CW_ARTIFACTS/alpha.png" $((WIN_X + WIN_W - 60)) $((WIN_Y - 5)) "$ALPHA_COLOR" 2
	# The guest powered off: its window went with it.
	wait_for_line "$log" "Unmapped vm-display 'alpha'"

	# The framebuffer console draws into the same window: text on black.
	guest alpha alpha-console --test console:8 >"$CW_ARTIFACTS/console-run.log" 2>&1 &
	console=$!
	wait_for_line "$CW_ARTIFACTS/alpha-console/serial.log" 'GTEST console-start'
	wait_mapped alpha vm-display
	total=$((WIN_W * WIN_H))
	deadline=$(( $(date +%s) + CW_WAIT_SECONDS ))
	while :; do
		grim "$CW_ARTIFACTS/console.png" || fail "grim failed"
		black=$(count_color "$CW_ARTIFACTS/console.png" 000000 "$WIN_X,$WIN_Y,$WIN_W,$WIN_H")
		# Mostly black, but not only: text is on screen.
		[ "$black" -gt $((total / 2)) ] && [ "$black" -lt "$total" ] && break
		[ "$(date +%s)" -lt "$deadline" ] ||
			fail "no console text in the window ($black of $total pixels black)"
		sleep 0.25
	done
	wait "$console" || fail "the console run failed: $(tail -n 5 "$CW_ARTIFACTS/console-run.log")"
	wait_for_line "$log" "Unmapped vm-display 'alpha'"

	# Unbind and rebind the driver: the window goes and comes back.
	before=$(grep -c "Mapped vm-display 'alpha'" "$log")
	guest alpha alpha-rebind --test pattern:3,rebind,pattern:6 --palette 1 || fail "the rebind run failed"
	after=$(grep -c "Mapped vm-display 'alpha'" "$log")
	[ $((after - before)) -ge 2 ] || fail "the window did not come back after the rebind"
	grep -q "\[vm alpha\] guest driver restarted" "$log" || fail "the rebind was not seen as a driver restart"

	# Two VMs at once, each in its own window and colour.
	guest alpha alpha-two --test pattern:40 --palette 1 >"$CW_ARTIFACTS/alpha-run.log" 2>&1 &
	alpha=$!
	guest beta beta-two --test pattern:40 --palette 2 >"$CW_ARTIFACTS/beta-run.log" 2>&1 &
	beta=$!
	wait_for_line "$CW_ARTIFACTS/alpha-two/serial.log" 'GTEST pattern-shown'
	wait_for_line "$CW_ARTIFACTS/beta-two/serial.log" 'GTEST pattern-shown'
	# They open centred and overlap: drag them apart by their title bars.
	wait_mapped alpha vm-display
	ax=$WIN_X ay=$WIN_Y
	wait_mapped beta vm-display
	bx=$WIN_X by=$WIN_Y
	start_input
	# beta is on top: move it right first, then alpha left (which focuses alpha).
	input "move $((bx + 200)) $((by - 12))" "down left" "move $((1300 + 200)) $((by - 12))" "up left"
	input "move $((ax + 200)) $((ay - 12))" "down left" "move $((20 + 200)) $((ay - 12))" "up left"
	stop_input
	shot=$(screenshot two-vms)
	WIN_W=1024 WIN_H=768
	WIN_X=20 WIN_Y=$ay
	check_quadrants "$shot" 1
	expect_pixel_near "$shot" $((WIN_X + WIN_W - 60)) $((WIN_Y - 5)) "$ALPHA_COLOR" 2
	WIN_X=1300 WIN_Y=$by
	check_quadrants "$shot" 2
	# beta lost the focus to alpha: a darker shade of its colour.
	expect_pixel_near "$shot" $((WIN_X + WIN_W - 60)) $((WIN_Y - 5)) 19451c 3
	wait "$alpha" || fail "alpha's run failed: $(tail -n 5 "$CW_ARTIFACTS/alpha-run.log")"
	wait "$beta" || fail "beta's run failed: $(tail -n 5 "$CW_ARTIFACTS/beta-run.log")"
	exit 0
fi

require_qemu
# Build the guest once, outside crossway's time.
"$QEMU_DIR/make-initrd.sh" "$CW_OUTPUT_DIR/qemu-guest" >/dev/null || fail "cannot build the guest"
setup_runtime_dir
export CW_EXTENT=2400x900
run_crossway_with_self --size 2400x900 \
	--vm "alpha=$XDG_RUNTIME_DIR/alpha.sock,color=#$ALPHA_COLOR" \
	--vm "beta=$XDG_RUNTIME_DIR/beta.sock,color=#$BETA_COLOR"
