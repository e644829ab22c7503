#!/bin/sh
# crossway's vhost-user virtio-input device driven by our own front end
# (tests/vmm, cw-vmm), which behaves as QEMU 7.2's vhost-user-input-pci plus
# Linux 6.1's virtio_input driver: the config a guest probes, host keys and
# pointer routed to the right VM as exact evdev events, crossway's own
# bindings and Super-drags kept on the host, held keys released when the
# focus leaves, a guest that stops taking events, and malformed buffers and
# config accesses.
#
# One cw-vmm per VM drives both its devices, as QEMU does: the GPU device
# for the display window and the input device, whose events it prints as
# "event EV_KEY 30 1" lines into $CW_ARTIFACTS/NAME.out while it waits for
# a line on its FIFO.
. "$(dirname "$0")/../lib.sh"

CW_VMM=${CW_VMM:?}
export CW_EXTENT=1280x800

# evdev codes (linux/input-event-codes.h)
KEY_ESC=1 KEY_I=23 KEY_A=30 KEY_H=35 KEY_X=45 KEY_LEFTCTRL=29 KEY_LEFTALT=56
KEY_F2=60 KEY_LEFTMETA=125 BTN_LEFT=272 BTN_RIGHT=273 REL_WHEEL=8 REL_HWHEEL=6

# vm_start NAME FD W H [STEPS...]: a VM with a W x H display and its input
# device; STEPS run after the handshake, before events are streamed. The
# FIFO is opened on file descriptor FD (4..7).
vm_start() {
	name=$1 fd=$2 w=$3 h=$4
	shift 4
	mkfifo "$CW_ARTIFACTS/$name.fifo"
	"$CW_VMM" --socket "$XDG_RUNTIME_DIR/$name.sock" \
		--input-socket "$XDG_RUNTIME_DIR/$name-input.sock" --timeout 20000 \
		connect driver-ok scanout "$w" "$h" --pattern quadrants input-connect "$@" \
		input-skip wait-line <"$CW_ARTIFACTS/$name.fifo" >"$CW_ARTIFACTS/$name.out" 2>&1 \
		3>&- 4>&- 5>&- 6>&- 7>&- &
	eval "VMM_PID_$name=\$!"
	eval "exec $fd>\"\$CW_ARTIFACTS/\$name.fifo\""
	wait_mapped "$name" vm-display
	wait_for_line "$CW_ARTIFACTS/crossway.log" "\[vm $name\] input: driver ready"
	wait_for_line "$CW_ARTIFACTS/$name.out" '^input-skip: '
}

# vm_stop NAME FD: ends the VM's front end, which must have had no error.
vm_stop() {
	echo stop >&"$2"
	eval "exec $2>&-"
	eval "pid=\$VMM_PID_$1"
	wait "$pid" || {
		tail -n 20 "$CW_ARTIFACTS/$1.out" >&2
		fail "the front end of VM $1 failed"
	}
}

nevents() {
	grep -c '^event ' "$CW_ARTIFACTS/$1.out" || true
}

# mark NAME...: remembers how many events each VM has received so far.
mark() {
	for m in "$@"; do
		eval "MARK_$m=$(nevents "$m")"
	done
}

events_since_mark() {
	eval "from=\$MARK_$1"
	grep '^event ' "$CW_ARTIFACTS/$1.out" | tail -n +$((from + 1)) | sed 's/^event //'
}

# expect_events NAME EVENT...: exactly these events arrived since the mark
# (waits for them, then a little longer to see extra ones).
expect_events() {
	name=$1
	shift
	eval "from=\$MARK_$name"
	deadline=$(( $(date +%s) + CW_WAIT_SECONDS ))
	while [ $(( $(nevents "$name") - from )) -lt $# ]; do
		[ "$(date +%s)" -lt "$deadline" ] ||
			fail "VM $name: expected [$(printf '%s|' "$@")], got only [$(events_since_mark "$name" | tr '\n' '|')]"
		sleep 0.05
	done
	sleep 0.2
	got=$(events_since_mark "$name" | tr '\n' '|')
	want=$(printf '%s|' "$@")
	[ "$got" = "$want" ] || fail "VM $name: expected [$want], got [$got]"
	mark "$name"
}

# expect_nothing NAME...: no event since the mark.
expect_nothing() {
	sleep 0.2
	for m in "$@"; do
		got=$(events_since_mark "$m" | tr '\n' '|')
		[ -z "$got" ] || fail "VM $m received events it must not: [$got]"
	done
}

# abs LOCAL SIZE: the tablet value crossway must send (0..32767).
abs() {
	v=$(( $1 * 32768 / $2 ))
	[ "$v" -gt 32767 ] && v=32767
	[ "$v" -lt 0 ] && v=0
	echo "$v"
}

# super_drag_to NAME X Y: Super+drag the VM's window so its content starts
# at X,Y; sets NAME_X NAME_Y NAME_W NAME_H.
super_drag_to() {
	grab_x=$((WIN_X + WIN_W / 2)) grab_y=$((WIN_Y + WIN_H / 2))
	input "keydown Super_L" "move $grab_x $grab_y" "down left" \
		"move $((grab_x + $2 - WIN_X)) $((grab_y + $3 - WIN_Y))" "up left" "keyup Super_L"
	eval "${1}_X=$2 ${1}_Y=$3 ${1}_W=$WIN_W ${1}_H=$WIN_H"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	log="$CW_ARTIFACTS/crossway.log"
	start_input

	# --- alpha: what the guest driver probes, then a Super+drag to the top left.
	vm_start alpha 4 400 300 input-probe input-start input-status EV_LED 1 1
	out="$CW_ARTIFACTS/alpha.out"
	for line in 'name "crossway keyboard and tablet"' 'serial "alpha"' \
			'devids bustype 0x6 vendor 0x1af4 product 0x1052 version 0x1' \
			'props size [0-9]+: none$' 'rep yes$' \
			'ev-bits EV_KEY size [0-9]+: 1-255,272-276$' \
			'ev-bits EV_REL size [0-9]+: 6,8$' 'ev-bits EV_ABS size [0-9]+: 0-1$' \
			'ev-bits EV_LED size [0-9]+: 0-2$' \
			'abs 0 min 0 max 32767 fuzz 0 flat 0 res 0$' \
			'abs 1 min 0 max 32767 fuzz 0 flat 0 res 0$'; do
		grep -E -q "^input-probe $line" "$out" ||
			fail "probe: no '$line' in: $(grep '^input-probe' "$out" | tr '\n' '|')"
	done
	[ "$(grep -c '^input-probe ev-bits' "$out")" -eq 4 ] ||
		fail "probe: other event types offered: $(grep '^input-probe ev-bits' "$out" | tr '\n' '|')"
	[ "$(grep -c '^input-probe abs' "$out")" -eq 2 ] || fail "probe: other axes offered"
	grep -q '^input-status: EV_LED 1 1 returned' "$out" || fail "the LED status event was not returned"

	# Super+drag moves the window: the guest sees Super itself, never the button.
	mark alpha
	super_drag_to alpha 40 60
	events_since_mark alpha >"$CW_ARTIFACTS/super-drag.events"
	! grep -q "^EV_KEY $BTN_LEFT " "$CW_ARTIFACTS/super-drag.events" ||
		fail "Super+drag reached the guest: $(tr '\n' '|' <"$CW_ARTIFACTS/super-drag.events")"
	grep -q "^EV_KEY $KEY_LEFTMETA 1$" "$CW_ARTIFACTS/super-drag.events" ||
		fail "the Super press itself did not reach the focused guest"
	wait_for_line "$out" "^event EV_KEY $KEY_LEFTMETA 0$"
	shot=$(screenshot alpha-moved)
	expect_pixel "$shot" $((alpha_X + 100)) $((alpha_Y + 75)) ff0000
	expect_pixel "$shot" $((alpha_X + 300)) $((alpha_Y + 225)) ffffff

	# --- beta: a second VM, moved to the top right; it takes the focus when mapped.
	vm_start beta 5 400 300 input-start
	mark alpha beta
	super_drag_to beta 840 60
	expect_nothing alpha

	# Pointer motion to known places of alpha's content: exact tablet values.
	mark alpha beta
	input "move $((alpha_X + 100)) $((alpha_Y + 75))"
	expect_events alpha "EV_ABS 0 $(abs 100 400)" "EV_ABS 1 $(abs 75 300)" "EV_SYN 0 0"
	input "move $((alpha_X + 399)) $((alpha_Y + 299))"
	expect_events alpha "EV_ABS 0 $(abs 399 400)" "EV_ABS 1 $(abs 299 300)" "EV_SYN 0 0"
	input "move $alpha_X $alpha_Y"
	expect_events alpha "EV_ABS 0 0" "EV_ABS 1 0" "EV_SYN 0 0"
	input "move $((alpha_X + 250)) $((alpha_Y + 10))"
	expect_events alpha "EV_ABS 0 $(abs 250 400)" "EV_ABS 1 $(abs 10 300)" "EV_SYN 0 0"
	expect_nothing beta

	# Clicks on the content go to the guest (and focus alpha).
	input "click left"
	expect_events alpha "EV_KEY $BTN_LEFT 1" "EV_SYN 0 0" "EV_KEY $BTN_LEFT 0" "EV_SYN 0 0"
	input "click right"
	expect_events alpha "EV_KEY $BTN_RIGHT 1" "EV_SYN 0 0" "EV_KEY $BTN_RIGHT 0" "EV_SYN 0 0"

	# Wheel: Wayland's positive axis is down, evdev's REL_WHEEL positive is up.
	input "scroll 15"
	expect_events alpha "EV_REL $REL_WHEEL -1" "EV_SYN 0 0"
	input "scroll -30"
	expect_events alpha "EV_REL $REL_WHEEL 2" "EV_SYN 0 0"
	# Smooth scrolling adds up to whole clicks (15 units each); horizontal
	# positive is right in both.
	input "scroll 7" "scroll 9"
	expect_events alpha "EV_REL $REL_WHEEL -1" "EV_SYN 0 0"
	input "hscroll 15"
	expect_events alpha "EV_REL $REL_HWHEEL 1" "EV_SYN 0 0"
	expect_nothing beta

	# Typed text: evdev codes unchanged, to the focused VM only.
	input "type hi"
	expect_events alpha "EV_KEY $KEY_H 1" "EV_SYN 0 0" "EV_KEY $KEY_H 0" "EV_SYN 0 0" \
		"EV_KEY $KEY_I 1" "EV_SYN 0 0" "EV_KEY $KEY_I 0" "EV_SYN 0 0"
	expect_nothing beta

	# crossway's bindings stay on the host; the modifiers themselves do not.
	input "keydown Super_L" "key Escape" "keyup Super_L"
	expect_events alpha "EV_KEY $KEY_LEFTMETA 1" "EV_SYN 0 0" "EV_KEY $KEY_LEFTMETA 0" "EV_SYN 0 0"
	input "keydown Control_L" "keydown Alt_L" "key F2" "keyup Alt_L" "keyup Control_L"
	expect_events alpha "EV_KEY $KEY_LEFTCTRL 1" "EV_SYN 0 0" "EV_KEY $KEY_LEFTALT 1" "EV_SYN 0 0" \
		"EV_KEY $KEY_LEFTALT 0" "EV_SYN 0 0" "EV_KEY $KEY_LEFTCTRL 0" "EV_SYN 0 0"
	expect_nothing beta
	grep -E -q "^event EV_KEY ($KEY_ESC|$KEY_F2) " "$out" && fail "a binding's key reached the guest"

	# A key held while the focus moves to beta is released in alpha; beta
	# gets the click but neither the press nor the release of that key.
	input "keydown a"
	expect_events alpha "EV_KEY $KEY_A 1" "EV_SYN 0 0"
	mark beta
	# (Not beta's centre: that is where the Super+drag left its pointer, and
	# a position the guest already has is not sent again.)
	input "move $((beta_X + 100)) $((beta_Y + 60))" "click left"
	expect_events alpha "EV_KEY $KEY_A 0" "EV_SYN 0 0"
	input "keyup a"
	expect_events beta "EV_ABS 0 $(abs 100 400)" "EV_ABS 1 $(abs 60 300)" "EV_SYN 0 0" \
		"EV_KEY $BTN_LEFT 1" "EV_SYN 0 0" "EV_KEY $BTN_LEFT 0" "EV_SYN 0 0"
	expect_nothing alpha

	# A button held in beta keeps the motion in beta (clamped) until released,
	# even over alpha's content.
	input "down left" "move $((alpha_X + 200)) $((alpha_Y + 75))" "up left"
	expect_events beta "EV_KEY $BTN_LEFT 1" "EV_SYN 0 0" "EV_ABS 0 0" \
		"EV_ABS 1 $(abs $((alpha_Y + 75 - beta_Y)) 300)" "EV_SYN 0 0" \
		"EV_KEY $BTN_LEFT 0" "EV_SYN 0 0"
	# Released over alpha's content: alpha has the pointer again (at once or
	# with the next motion).
	sleep 0.2
	got=$(events_since_mark alpha | tr '\n' '|')
	[ -z "$got" ] || [ "$got" = "EV_ABS 0 $(abs 200 400)|EV_ABS 1 $(abs 75 300)|EV_SYN 0 0|" ] ||
		fail "alpha after a drag of beta's ended over it: [$got]"
	mark alpha
	input "move $((alpha_X + 100)) $((alpha_Y + 150))"
	expect_events alpha "EV_ABS 0 $(abs 100 400)" "EV_ABS 1 $(abs 150 300)" "EV_SYN 0 0"
	expect_nothing beta

	# --- gamma: a guest that takes 64 events and then no more.
	vm_start gamma 6 320 240 input-start input-stall
	mark alpha beta gamma
	super_drag_to gamma 40 500
	input "move $((gamma_X + 160)) $((gamma_Y + 120))" "click left"
	# Far more than 64 buffers plus crossway's queue of 256 events.
	for i in 1 2 3 4; do
		input "type abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
	done
	wait_for_line "$log" "\[vm gamma\] input: .*dropping"
	[ "$(grep -c '\[vm gamma\] input: .*dropping' "$log")" -eq 1 ] ||
		fail "the drop was not logged exactly once: $(grep '\[vm gamma\] input' "$log" | tr '\n' '|')"
	[ "$(nevents gamma)" -eq 64 ] || fail "gamma took $(nevents gamma) events with 64 buffers"
	# crossway still serves everyone: beta gets its events, alpha is drawn.
	mark beta
	input "move $((beta_X + 20)) $((beta_Y + 30))" "click left" "type x"
	expect_events beta "EV_ABS 0 $(abs 20 400)" "EV_ABS 1 $(abs 30 300)" "EV_SYN 0 0" \
		"EV_KEY $BTN_LEFT 1" "EV_SYN 0 0" "EV_KEY $BTN_LEFT 0" "EV_SYN 0 0" \
		"EV_KEY $KEY_X 1" "EV_SYN 0 0" "EV_KEY $KEY_X 0" "EV_SYN 0 0"
	shot=$(screenshot stalled)
	expect_pixel "$shot" $((alpha_X + 300)) $((alpha_Y + 75)) 00ff00
	expect_pixel "$shot" $((gamma_X + 80)) $((gamma_Y + 180)) 0000ff
	expect_nothing alpha

	# --- delta: odd config accesses, then a 4-byte and a device-readable
	# buffer ahead of the real ones. crossway answers, survives, and never
	# writes where it must not (cw-vmm fails the session if it does).
	vm_start delta 7 320 240 \
		input-config-fault get 200 input-config-fault get 137 \
		input-config-fault set 3 5 input-config-fault set 130 10 \
		input-config-fault set 1 1 input-config-fault set 0 136 \
		input-probe input-start 0 input-fault short input-fault readable input-post 16
	grep -q '^input-probe name "crossway keyboard and tablet"' "$CW_ARTIFACTS/delta.out" ||
		fail "delta's probe after the config faults: $(grep '^input-' "$CW_ARTIFACTS/delta.out" | tr '\n' '|')"
	mark delta
	super_drag_to delta 840 500
	input "move $((delta_X + 160)) $((delta_Y + 120))" "click left" "type x"
	wait_for_line "$CW_ARTIFACTS/delta.out" '^fault-buffer: 4-byte buffer returned'
	wait_for_line "$CW_ARTIFACTS/delta.out" '^fault-buffer: device-readable buffer returned'
	mark delta
	input "type hi"
	expect_events delta "EV_KEY $KEY_H 1" "EV_SYN 0 0" "EV_KEY $KEY_H 0" "EV_SYN 0 0" \
		"EV_KEY $KEY_I 1" "EV_SYN 0 0" "EV_KEY $KEY_I 0" "EV_SYN 0 0"
	expect_nothing alpha beta

	stop_input
	for vm in alpha:4 beta:5 gamma:6 delta:7; do
		vm_stop "${vm%:*}" "${vm#*:}"
	done
	kill -0 "$PPID" 2>/dev/null || fail "crossway died"
	wait_for_line "$log" '\[vm alpha\] input: VMM disconnected.* status=1'
	exit 0
fi

setup_runtime_dir
run_crossway_with_self --size 1280x800 \
	--vm "alpha=$XDG_RUNTIME_DIR/alpha.sock,input=$XDG_RUNTIME_DIR/alpha-input.sock" \
	--vm "beta=$XDG_RUNTIME_DIR/beta.sock,input=$XDG_RUNTIME_DIR/beta-input.sock" \
	--vm "gamma=$XDG_RUNTIME_DIR/gamma.sock,input=$XDG_RUNTIME_DIR/gamma-input.sock" \
	--vm "delta=$XDG_RUNTIME_DIR/delta.sock,input=$XDG_RUNTIME_DIR/delta-input.sock"
