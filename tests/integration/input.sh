#!/bin/sh
# Input through real virtual-pointer and virtual-keyboard clients (cw-input):
# keyboard focus, focus and raise on click, typing reaching only the focused
# client, Super+drag move, title-bar drag, Super+right-drag and border
# resizes, scrolling, and the close button.
. "$(dirname "$0")/../lib.sh"

CW_EXTENT=640x480
A_COLOR=3366cc
B_COLOR=33cc66

# expect_bbox IMAGE COLOR "X Y W H"
expect_bbox() {
	got=$(bbox "$1" "$2")
	[ "$got" = "$3" ] || fail "$2 covers '$got' in $1, expected '$3'"
}

# expect_out NAME REGEX / expect_no_out NAME REGEX: a client's event log
expect_out() {
	grep -E -q -- "$2" "$(client_out "$1")" || { cat "$(client_out "$1")" >&2; fail "$1 did not print '$2'"; }
}
expect_no_out() {
	if grep -E -q -- "$2" "$(client_out "$1")"; then
		cat "$(client_out "$1")" >&2
		fail "$1 printed '$2'"
	fi
}
# mark NAME: later checks with since_mark only look at what came after.
mark() {
	wc -l <"$(client_out "$1")" >"$CW_ARTIFACTS/$1.mark"
}
since_mark() {
	tail -n +$(( $(cat "$CW_ARTIFACTS/$1.mark") + 1 )) "$(client_out "$1")"
}
expect_since_mark() {
	since_mark "$1" | grep -E -q -- "$2" || { since_mark "$1" >&2; fail "$1 did not print '$2' after the mark"; }
}
expect_none_since_mark() {
	if since_mark "$1" | grep -E -q -- "$2"; then
		since_mark "$1" >&2
		fail "$1 printed '$2' after the mark"
	fi
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	start_client A --title A --color "$A_COLOR" --size 200x150
	wait_mapped A
	[ "$WIN_X $WIN_Y" = "220 165" ] || fail "A placed at $WIN_X,$WIN_Y, expected the centre 220,165"
	start_client B --title B --color "$B_COLOR" --size 200x150
	wait_mapped B
	[ "$WIN_X $WIN_Y" = "252 197" ] || fail "B placed at $WIN_X,$WIN_Y, expected a cascade to 252,197"

	# A new window is on top and focused.
	shot=$(screenshot stacked)
	expect_pixel "$shot" 300 250 "$B_COLOR"
	expect_pixel "$shot" 402 180 "$CW_FRAME_ACTIVE"   # B's title bar
	expect_pixel "$shot" 380 150 "$CW_FRAME_INACTIVE" # A's title bar

	# A keyboard appears: the focused window gets it.
	mark A
	mark B
	start_input
	wait_for_line "$(client_out B)" '^keyboard-enter$'

	# Typing goes to the focused window only.
	input "type hi"
	wait_for_line "$(client_out B)" '^key 23 i released$'
	expect_since_mark B '^key 35 h pressed$'
	expect_none_since_mark A '^key '

	# Hovering does not move the focus; a click does, and raises.
	input "move 225 170"
	mark B
	input "click left"
	wait_for_line "$(client_out A)" '^button 272 released$'
	expect_out A '^keyboard-enter$'
	expect_since_mark B '^keyboard-leave$'
	shot=$(screenshot raised)
	expect_pixel "$shot" 300 250 "$A_COLOR"
	expect_pixel "$shot" 380 150 "$CW_FRAME_ACTIVE"
	mark A
	input "type x"
	wait_for_line "$(client_out A)" '^key 45 x released$'
	expect_none_since_mark B '^key '

	# Super+drag moves B by (50, 20) and raises it; B sees no button.
	mark B
	input "keydown Super_L" "move 450 340" "down left" "move 500 360" "up left" "keyup Super_L"
	shot=$(screenshot super-move)
	expect_bbox "$shot" "$B_COLOR" "302 217 200 150"
	expect_none_since_mark B '^button '
	expect_since_mark B '^keyboard-enter$'

	# Dragging A's title bar moves it by (-100, -52).
	input "move 300 152" "down left" "move 200 100" "up left"
	shot=$(screenshot title-move)
	expect_bbox "$shot" "$A_COLOR" "120 113 200 150"

	# Super+right-drag near the bottom-right corner resizes A by (40, 30).
	mark A
	input "keydown Super_L" "move 310 250" "down right" "move 350 280" "up right" "keyup Super_L"
	wait_for_line "$(client_out A)" '^configure 240 180 activated$'
	expect_since_mark A '^configure 240 180 activated resizing$'
	shot=$(screenshot super-resize)
	expect_bbox "$shot" "$A_COLOR" "120 113 240 180"

	# Dragging the left border grows A to the left; its right edge stays.
	mark A
	input "move 119 200" "down left" "move 99 200" "up left"
	wait_for_line "$(client_out A)" '^configure 260 180 activated$'
	shot=$(screenshot border-resize)
	expect_bbox "$shot" "$A_COLOR" "100 113 260 180"

	# Scrolling reaches the window under the pointer.
	mark A
	input "move 200 200" "scroll 10"
	wait_for_line "$(client_out A)" '^axis 0 10$'

	# The close button asks A to close; A exits and its window goes.
	input "move 352 100" "click left"
	wait_for_line "$(client_out A)" '^close$'
	wait_for_line "$CW_ARTIFACTS/crossway.log" "Unmapped toplevel 'A'"
	# B is the only window left, and has the focus back.
	wait_for_line "$(client_out B)" '^keyboard-enter$'
	stop_input
	kill "$CLIENT_PID_B"
	exit 0
fi

run_crossway_with_self --size 640x480
