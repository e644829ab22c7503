#!/bin/sh
# Maximize and fullscreen requests, and xdg-decoration negotiation: the
# client is configured as asked, and what is on screen agrees.
. "$(dirname "$0")/../lib.sh"

COLOR=cc6633

stop_client() {
	kill "$1"
	wait "$1" 2>/dev/null || true
	wait_for_line "$CW_ARTIFACTS/crossway.log" "Unmapped toplevel '$2'"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim

	# Maximized: the frame stays visible, the content fills the rest.
	start_client max --title max --color "$COLOR" --maximize
	wait_for_line "$(client_out max)" '^configure 636 452 maximized activated$'
	shot=$(screenshot maximized)
	[ "$(bbox "$shot" "$COLOR")" = "2 26 636 452" ] || fail "maximized window covers $(bbox "$shot" "$COLOR")"
	expect_pixel "$shot" 600 10 "$CW_FRAME_ACTIVE"
	stop_client "$CLIENT_PID_max" max

	# Fullscreen: no frame, the whole output.
	start_client full --title full --color "$COLOR" --fullscreen
	wait_for_line "$(client_out full)" '^configure 640 480 fullscreen activated$'
	shot=$(screenshot fullscreen)
	[ "$(bbox "$shot" "$COLOR")" = "0 0 640 480" ] || fail "fullscreen window covers $(bbox "$shot" "$COLOR")"
	stop_client "$CLIENT_PID_full" full

	# A client that draws its own decorations gets no frame.
	start_client csd --title csd --color "$COLOR" --decoration client
	wait_mapped csd
	expect_out_line() { grep -q -- "$2" "$(client_out "$1")" || fail "$1 did not print '$2'"; }
	expect_out_line csd '^decoration-mode client$'
	shot=$(screenshot client-side)
	expect_pixel "$shot" $((WIN_X + 50)) $((WIN_Y - 5)) "$CW_BACKGROUND"
	expect_pixel "$shot" $((WIN_X - 1)) $((WIN_Y + 50)) "$CW_BACKGROUND"
	stop_client "$CLIENT_PID_csd" csd

	# One that asks for server-side decorations gets crossway's frame.
	start_client ssd --title ssd --color "$COLOR" --decoration server
	wait_mapped ssd
	expect_out_line ssd '^decoration-mode server$'
	shot=$(screenshot server-side)
	expect_pixel "$shot" $((WIN_X + 100)) $((WIN_Y - 5)) "$CW_FRAME_ACTIVE"
	expect_pixel "$shot" $((WIN_X - 1)) $((WIN_Y + 50)) "$CW_FRAME_ACTIVE"
	stop_client "$CLIENT_PID_ssd" ssd
	exit 0
fi

run_crossway_with_self --size 640x480
