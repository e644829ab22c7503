#!/bin/sh
# An xdg popup that would leave the output is flipped back inside it, as its
# positioner allows, and is drawn above the window and its frame.
. "$(dirname "$0")/../lib.sh"

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	# 600x400 on a 640x480 output: the window starts at (20, 40). The popup is
	# anchored at the window's bottom-right corner and would end at x = 680.
	start_client menu --title menu --color 3366cc --size 600x400 --popup
	wait_mapped menu
	[ "$WIN_X $WIN_Y" = "20 40" ] || fail "window at $WIN_X,$WIN_Y, expected 20,40"
	wait_for_line "$(client_out menu)" '^popup-configure '
	got=$(grep '^popup-configure ' "$(client_out menu)" | tail -n 1)
	[ "$got" = "popup-configure 539 400 60 40" ] || fail "popup placed as '$got', expected flipped to 539 400 60 40"
	# The popup's first buffer is committed before the line above is printed.
	shot=$(screenshot popup)
	[ "$(bbox "$shot" ff00ff)" = "559 440 60 40" ] || fail "popup drawn at $(bbox "$shot" ff00ff)"
	exit 0
fi

run_crossway_with_self --size 640x480
