#!/bin/sh
# Guest applications as host windows, end to end on one machine: crossway
# with two VMs, one crossway-guest per VM talking to crossway's virtio-gpu
# device through our own vhost-user front end (--transport vhost-user:SOCK,
# tests/vmm), and real, unmodified clients connected to the proxies' sockets
# as they would be inside the guests. Checked: every guest window is framed
# in its VM's colour and titled "NAME: ...", its content is the client's;
# a host client beside them is untouched; typed keys reach only the focused
# guest client; the clipboard crosses between host and guest both ways.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../guest-lib.sh"

CW_EXTENT=1280x800
A_COLOR=b5420b
B_COLOR=6a1b9a
HOST_COLOR=3366cc

# expect_vm_frame IMAGE COLOR: the window at WIN_* has a frame in COLOR,
# full (focused) or darker (not focused), on the title bar and the borders.
expect_vm_frame() {
	shade=$(darker "$2")
	for point in "$((WIN_X + 2)) $((WIN_Y - 3))" \
			"$((WIN_X - 1)) $((WIN_Y + WIN_H / 2))" \
			"$((WIN_X + WIN_W / 2)) $((WIN_Y + WIN_H))"; do
		set -- "$1" "$2" $point
		if [ "$(near "$1" "$3" "$4" "$2")" -ne 1 ] && [ "$(near "$1" "$3" "$4" "$shade")" -ne 1 ]; then
			fail "frame pixel ($3,$4) of $1 is $("$CW_IMGCMP" --probe "$3,$4" "$1"), expected $2 or $shade"
		fi
	done
}

# expect_drawn IMAGE NAME: in the middle of WIN_* the client drew
# something, not the desktop and not one flat colour. Only the middle: a
# guest window's box holds all its surfaces draw, so a client-side shadow's
# transparent margin is inside it.
expect_drawn() {
	middle="$((WIN_X + WIN_W / 4)),$((WIN_Y + WIN_H / 4)),$((WIN_W / 2)),$((WIN_H / 2))"
	bg=$(count_color "$1" "$CW_BACKGROUND" "$middle")
	[ "$bg" -eq 0 ] || fail "$2: $bg background pixels inside its window"
	centre=$("$CW_IMGCMP" --probe "$((WIN_X + WIN_W / 2)),$((WIN_Y + WIN_H / 2))" "$1")
	same=$(count_color "$1" "$centre" "$middle")
	[ "$same" -lt $((WIN_W / 2 * (WIN_H / 2))) ] || fail "$2 drew a flat window"
}

# weston_client VM PROGRAM TITLE: runs it in VM and waits for "VM: TITLE".
weston_client() {
	require_program "$2" weston
	WAYLAND_DISPLAY="guest-$1" "$2" >"$CW_ARTIFACTS/$1-$2.log" 2>&1 3>&- 4>&- &
	CLIENT_PID=$!
	wait_mapped "$1: $3"
	note "$1: $2 mapped ${WIN_W}x${WIN_H} at $WIN_X,$WIN_Y"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	require_program wl-copy wl-clipboard
	log="$CW_ARTIFACTS/crossway.log"
	start_guest a
	start_guest b

	# A host client first, then guest windows of both VMs next to it.
	start_client host --title host --color "$HOST_COLOR" --size 200x150
	wait_mapped host
	shot=$(screenshot host)
	expect_pixel "$shot" $((WIN_X + WIN_W / 2)) $((WIN_Y + WIN_H / 2)) "$HOST_COLOR"
	expect_pixel "$shot" $((WIN_X + 2)) $((WIN_Y - 3)) "$CW_FRAME_ACTIVE"
	# Guest windows open below the focused host window (no raise across
	# domains): it goes to the top-left corner, out of their way, dragged by
	# its title bar; the pointer then waits in the bottom-right corner.
	start_input
	input "move $((WIN_X + 50)) $((WIN_Y - 10))" "down left" "move 60 20" "up left" \
		"move 1279 799"
	stop_input

	weston_client a weston-simple-shm simple-shm
	shm_pid=$CLIENT_PID
	shot=$(screenshot a-simple-shm)
	expect_vm_frame "$shot" "$A_COLOR"
	expect_drawn "$shot" "a: simple-shm"

	weston_client b weston-simple-damage simple-damage
	damage_pid=$CLIENT_PID
	shot=$(screenshot b-simple-damage)
	expect_vm_frame "$shot" "$B_COLOR"
	expect_drawn "$shot" "b: simple-damage"

	weston_client a weston-subsurfaces "Wayland Sub-surface Demo"
	sub_pid=$CLIENT_PID
	shot=$(screenshot a-subsurfaces)
	expect_vm_frame "$shot" "$A_COLOR"
	expect_drawn "$shot" "a: Wayland Sub-surface Demo"
	# No title without its VM's name: every guest toplevel is "a: " or "b: ".
	if grep "Mapped toplevel '" "$log" | grep -v "Mapped toplevel 'host'" |
			grep -v -E "Mapped toplevel '(a|b): " >&2; then
		fail "a guest window is not titled with its VM's name"
	fi
	# A guest's new window never takes the keyboard from another domain.
	grep -q "Not focusing 'a: simple-shm'" "$log" || fail "a's first window took the focus"

	kill "$shm_pid" "$damage_pid" "$sub_pid"
	wait "$shm_pid" "$damage_pid" "$sub_pid" 2>/dev/null || true
	wait_for_line "$log" "Unmapped toplevel 'a: simple-shm'"
	wait_for_line "$log" "Unmapped toplevel 'b: simple-damage'"
	wait_for_line "$log" "Unmapped toplevel 'a: Wayland Sub-surface Demo'"

	# Keyboard: keys typed into a guest window reach only that client.
	guest_client a kbda --title kbd-a --color 804020 --size 240x160
	wait_mapped "a: kbd-a"
	# b's window cascades over a's: click a where b does not cover it.
	ax=$((WIN_X + 10)) ay=$((WIN_Y + 10))
	guest_client b kbdb --title kbd-b --color 204080 --size 240x160
	wait_mapped "b: kbd-b"
	# ... and a, once raised, covers b's centre: b's bottom-right corner then.
	bx=$((WIN_X + WIN_W - 10)) by=$((WIN_Y + WIN_H - 10))
	# The whole desktop against a reference: the host window in crossway's
	# own frame, each guest window in its VM's colour with its VM's name.
	shot=$(screenshot guest-desktop)
	compare_reference "$shot" guest-windows
	start_input
	input "move $ax $ay" "click left"
	wait_for_line "$(client_out kbda)" '^keyboard-enter'
	# Focused: a's window is raised and framed in a's full colour.
	wait_mapped "a: kbd-a"
	shot=$(screenshot kbd-a-focused)
	expect_pixel_near "$shot" $((WIN_X + WIN_W / 2)) $((WIN_Y - 3)) "$A_COLOR" 3
	expect_pixel "$shot" $((WIN_X + WIN_W / 2)) $((WIN_Y + WIN_H / 2)) 804020
	input "type hello"
	wait_for_line "$(client_out kbda)" '^key [0-9]+ o released'
	for c in h e l o; do
		grep -q "^key [0-9]* $c pressed" "$(client_out kbda)" ||
			fail "kbd-a did not get '$c': $(cat "$(client_out kbda)")"
	done
	if grep -q '^key ' "$(client_out kbdb)" "$(client_out host)"; then
		fail "keys typed into a's window reached another client"
	fi
	input "move $bx $by" "click left" "type xyz"
	wait_for_line "$(client_out kbdb)" '^key [0-9]+ z released'
	if grep -q '^key [0-9]* [xyz] ' "$(client_out kbda)" "$(client_out host)"; then
		fail "keys typed into b's window reached another client"
	fi

	# Clipboard. Guests have no data-control: wl-clipboard there falls back
	# to a surface of its own, which gets the keyboard only while a's domain
	# has it (crossway gives no focus across domains). So a is focused first.
	input "move $ax $ay" "click left"
	# Host to guest: wl-paste in a reads what the host copied.
	printf 'from the host' | wl-copy
	got=$(in_guest a timeout 20 wl-paste -n) || fail "wl-paste in a failed: $got"
	[ "$got" = "from the host" ] || fail "a pasted '$got'"
	# Guest to host: a copies, the host pastes (the data crosses a pipe
	# streamed through the cross-domain channel).
	printf 'from guest a' | in_guest a timeout 20 wl-copy
	deadline=$(( $(date +%s) + CW_WAIT_SECONDS ))
	until [ "$(wl-paste -n 2>/dev/null)" = "from guest a" ]; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "the host pasted '$(wl-paste -n 2>&1)'"
		sleep 0.1
	done
	# Larger than one channel message (3744 bytes): several READ chunks.
	head -c 150000 /dev/urandom | base64 -w 0 >"$CW_ARTIFACTS/big.txt"
	wl-copy <"$CW_ARTIFACTS/big.txt"
	in_guest a timeout 30 wl-paste -n >"$CW_ARTIFACTS/big.out" || fail "big paste in a failed"
	cmp -s "$CW_ARTIFACTS/big.txt" "$CW_ARTIFACTS/big.out" ||
		fail "200 KB through the guest's clipboard came back changed"
	wl-copy --clear
	stop_input

	kill "$CLIENT_PID_kbda" "$CLIENT_PID_kbdb" "$CLIENT_PID_host"
	wait "$CLIENT_PID_kbda" "$CLIENT_PID_kbdb" "$CLIENT_PID_host" 2>/dev/null || true
	stop_guest a
	stop_guest b
	exit 0
fi

run_crossway_with_guests "a=$A_COLOR" "b=$B_COLOR"
