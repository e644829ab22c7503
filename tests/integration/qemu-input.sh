#!/bin/sh
# Real QEMU 7.2 with a real Linux 6.1 guest against crossway's vhost-user
# virtio-input device (--vm NAME=GPU_SOCKET,input=INPUT_SOCKET; tests/qemu/
# has the harness). The guest shows a KMS pattern, so the VM's window exists,
# then reads its evdev devices (tests/qemu/guest/evdev-read.c). When it is
# ready, a --then hook (this script again, with CW_QEMU_INPUT_HOOK=1) clicks
# into the window with cw-input, types, moves the pointer to known spots,
# scrolls, clicks, and ends the guest's reader with Escape x3. The serial log
# must then show crossway's device as the guest sees it (name, ids, keys,
# ABS_X/ABS_Y 0..32767, wheel, LEDs, autorepeat), the CapsLock LED the guest
# set through the status queue, every key pressed and released with its evdev
# code, ABS values matching the host positions
# (floor(local_x * 32768 / content_width), clamped to 32767) and BTN_LEFT.
. "$(dirname "$0")/../lib.sh"

QEMU_DIR=$(cd "$(dirname "$0")/../qemu" && pwd)
VM=a
SIZE_W=1600 SIZE_H=1000
DEVICE_NAME="crossway keyboard and tablet"
EXPECTED="$CW_ARTIFACTS/expected.txt"

require_qemu() {
	for tool in qemu-system-x86_64:qemu-system-x86 gdb:gdb cpio:cpio; do
		require_program "${tool%%:*}" "${tool#*:}"
	done
	[ -x /bin/busybox ] || skip "/bin/busybox is missing (package busybox-static)"
	ls /boot/vmlinuz-6.1* >/dev/null 2>&1 || skip "no 6.1 guest kernel (package linux-image-amd64)"
}

# abs_of OFFSET SIZE: what crossway sends for a pointer OFFSET pixels into
# content SIZE pixels wide, and "1" when the exact quotient is a whole number
# (the pointer's layout position goes through floating point: one unit less
# is then as right as the exact value).
abs_of() {
	v=$(($1 * 32768 / $2))
	edge=0
	[ $(($1 * 32768 % $2)) -ne 0 ] || edge=1
	[ "$v" -le 32767 ] || { v=32767 edge=0; }
	echo "$v $edge"
}

# at X Y: move there (layout coordinates) and expect the guest's tablet there.
at() {
	input "move $1 $2"
	# shellcheck disable=SC2046
	set -- $(abs_of $(($1 - WIN_X)) "$WIN_W") $(abs_of $(($2 - WIN_Y)) "$WIN_H")
	echo "abs $1 $3 $2 $4" >>"$EXPECTED"
}

expect() {
	for line in "$@"; do echo "$line" >>"$EXPECTED"; done
}

# wait_shown: until the VM's window is mapped now (its latest Mapped/Unmapped
# line is a Mapped one): the guest's switch from the KMS pattern back to
# fbcon unmaps and maps it again, just before the reader starts.
wait_shown() {
	deadline=$(($(date +%s) + CW_WAIT_SECONDS))
	while :; do
		last=$(grep -E "(Mapped|Unmapped) vm-display '$VM'" "$CW_ARTIFACTS/crossway.log" | tail -n 1)
		case $last in *" Mapped vm-display"*) break ;; esac
		[ "$(date +%s)" -lt "$deadline" ] || fail "the VM's window is not shown (last: '$last')"
		sleep 0.05
	done
	wait_mapped "$VM" vm-display
}

# --- the --then hook: runs while the guest's evdev-read is waiting ----------
if [ "${CW_QEMU_INPUT_HOOK:-}" = 1 ]; then
	wait_shown
	note "the VM's window: ${WIN_W}x${WIN_H} at $WIN_X,$WIN_Y"
	echo "$WIN_W $WIN_H $WIN_X $WIN_Y" >"$CW_ARTIFACTS/window.txt"
	: >"$EXPECTED"
	start_input
	# Into the window and click: it gets the focus, the guest the button.
	at $((WIN_X + WIN_W / 2)) $((WIN_Y + WIN_H / 2))
	input "click left"
	expect "key 272 1" "key 272 0"
	# Keys, with their evdev codes: Shift+a, b, 1, Return.
	input "type Ab1" "key Return"
	expect "key 42 1" "key 30 1" "key 30 0" "key 48 1" "key 48 0" "key 2 1" "key 2 0" \
		"key 28 1" "key 28 0"
	# Known spots: near the top-left corner, the bottom-right pixel, odd ones.
	at $((WIN_X + 10)) $((WIN_Y + 20))
	at $((WIN_X + WIN_W - 1)) $((WIN_Y + WIN_H - 1))
	at $((WIN_X + 123)) $((WIN_Y + 457))
	# One wheel click down (15 units; evdev's REL_WHEEL is positive upwards).
	input "scroll 15"
	expect "rel 8 -1"
	at $((WIN_X + WIN_W / 3)) $((WIN_Y + WIN_H * 3 / 4))
	input "click left"
	expect "key 272 1" "key 272 0"
	# The guest reader's sentinel.
	input "key Escape" "key Escape" "key Escape"
	expect "key 1 1" "key 1 0" "key 1 1" "key 1 0" "key 1 1" "key 1 0"
	stop_input
	exit 0
fi

# --- inside crossway -----------------------------------------------------------
if [ "${CW_INSIDE:-}" = 1 ]; then
	out="$CW_ARTIFACTS/guest"
	"$QEMU_DIR/run-guest.sh" --socket "$XDG_RUNTIME_DIR/$VM.sock" \
		--input-socket "$XDG_RUNTIME_DIR/$VM-input.sock" --out "$out" \
		--guest-dir "$CW_OUTPUT_DIR/qemu-guest" --timeout 100 --test pattern:2,inputled:40 \
		--wait-line '^GTEST input ready' --then "CW_QEMU_INPUT_HOOK=1 sh '$0'" --then-timeout 60 ||
		fail "the guest run failed (logs in $out; the hook's output: $out/then.log)"
	gtest="$out/gtest.log"

	# The device as the guest sees it.
	dev=$(grep "^GTEST input-dev name=\"$DEVICE_NAME\" " "$gtest" | tail -n 1)
	[ -n "$dev" ] || fail "the guest has no evdev device named '$DEVICE_NAME': $(grep '^GTEST input' "$gtest" | tr '\n' '|')"
	node=${dev##* dev=}
	note "guest device: $dev"
	for want in bus=0x0006 vendor=0x1af4 product=0x1052 version=0x0001 key_a=1 btn_left=1 \
		btn_right=1 abs_x=0..32767,fuzz=0,flat=0,res=0 abs_y=0..32767,fuzz=0,flat=0,res=0 \
		rel_wheel=1 rel_hwheel=1 led=0x7 rep=1 props=0x0; do
		case " $dev " in *" $want "*) ;; *) fail "the guest's device lacks $want: $dev" ;; esac
	done
	case $dev in *" abs=0x"*) fail "the device has more absolute axes than ABS_X/ABS_Y: $dev" ;; esac
	keys=$(echo "$dev" | sed -n 's/.* keys=\([0-9]*\) .*/\1/p')
	# Keys 1-255 and BTN_LEFT, RIGHT, MIDDLE, SIDE, EXTRA (vm/virtio_input.h).
	[ "${keys:-0}" -eq 260 ] || fail "the device offers $keys keys and buttons, expected 255 + 5"
	# The LED the guest turned on went through the status queue and stuck.
	grep -q "^GTEST input-led code=1 value=1 r=0 errno=0 leds=0x2 dev=$node\$" "$gtest" ||
		fail "setting CapsLock's LED failed: $(grep "^GTEST input-led .*dev=$node\$" "$gtest")"
	grep -q '^GTEST input done reason=quit-keys' "$gtest" ||
		fail "the guest's reader did not see the Escape sentinel: $(grep '^GTEST input done' "$gtest")"

	# The device's events, folded: "abs X Y" per SYN_REPORT group that moved
	# the tablet (the state after it), "key CODE VALUE", "rel CODE VALUE".
	events="$CW_ARTIFACTS/events.txt"
	awk -v node="dev=$node" '
		$1 == "GTEST" && $2 == "ev" && $6 == node {
			t = $3; c = $4; v = $5
			if (t == 3) { if (c == 0) x = v; else if (c == 1) y = v; moved = 1 }
			else if (t == 1) { print "key " c " " v; down[c] = v }
			else if (t == 2) print "rel " c " " v
			else if (t == 0 && c == 0 && moved) { print "abs " x + 0 " " y + 0; moved = 0 }
		}
		END { for (c in down) if (down[c] != 0) print "still-down " c }' "$gtest" >"$events"
	[ -s "$events" ] || fail "the guest got no events from crossway's device ($node)"
	! grep -q '^still-down' "$events" || fail "keys or buttons left down in the guest: $(grep '^still-down' "$events" | tr '\n' ' ')"

	# What the hook did must be there, in this order (other events may come between).
	awk -v expfile="$EXPECTED" '
		BEGIN {
			while ((getline l < expfile) > 0) want[n++] = l
			i = 0
		}
		function match_abs(w, g,   a, b) {
			split(w, a, " "); split(g, b, " ")
			if (b[1] != "abs") return 0
			return (b[2] == a[2] || (a[4] == 1 && b[2] == a[2] - 1)) &&
				(b[3] == a[3] || (a[5] == 1 && b[3] == a[3] - 1))
		}
		i < n {
			if (want[i] ~ /^abs / ? match_abs(want[i], $0) : $0 == want[i]) i++
		}
		END {
			if (n == 0) { print "the hook wrote no expectations"; exit 1 }
			if (i < n) { print "missing (in order): " want[i] " (matched " i " of " n ")"; exit 1 }
		}' "$events" >"$CW_ARTIFACTS/match.txt" ||
		fail "$(cat "$CW_ARTIFACTS/match.txt"); the guest got: $(tr '\n' '|' <"$events")"
	note "the guest got all $(wc -l <"$EXPECTED") expected events"
	# The guest powered off: its window went with it, and crossway's input
	# device counted what it did: nothing dropped, the LED on the status queue.
	log="$CW_ARTIFACTS/crossway.log"
	wait_for_line "$log" "Unmapped vm-display '$VM'"
	wait_for_line "$log" "\[vm $VM\] input: .*dropped=[0-9]+ status=[0-9]+"
	stats=$(grep -E "\[vm $VM\] input: .*dropped=[0-9]+ status=[0-9]+" "$log" | tail -n 1)
	dropped=$(echo "$stats" | sed -E 's/.*dropped=([0-9]+).*/\1/')
	status_events=$(echo "$stats" | sed -E 's/.*status=([0-9]+).*/\1/')
	[ "$dropped" -eq 0 ] || fail "crossway dropped $dropped input events: $stats"
	[ "$status_events" -ge 1 ] || fail "crossway got no status event (the LED): $stats"
	exit 0
fi

require_qemu
# Build the guest once, outside crossway's time.
"$QEMU_DIR/make-initrd.sh" "$CW_OUTPUT_DIR/qemu-guest" >/dev/null || fail "cannot build the guest"
setup_runtime_dir
export CW_EXTENT=${SIZE_W}x$SIZE_H
run_crossway_with_self --size "${SIZE_W}x$SIZE_H" \
	--vm "$VM=$XDG_RUNTIME_DIR/$VM.sock,input=$XDG_RUNTIME_DIR/$VM-input.sock"
