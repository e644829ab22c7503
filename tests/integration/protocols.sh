#!/bin/sh
# Client-driven protocols: an interactive move asked by the client
# (xdg_toplevel.move on a button press), a pointer lock with relative
# motion, and the Super+Escape escape hatch out of a lock.
. "$(dirname "$0")/../lib.sh"

CW_EXTENT=640x480

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	start_input

	# The client asks to be moved on a press; crossway drags it until release.
	start_client mover --title mover --color 3366cc --size 200x150 --move-on-press
	wait_mapped mover
	input "move $((WIN_X + 50)) $((WIN_Y + 50))" "down left"
	wait_for_line "$(client_out mover)" '^move-requested$'
	input "move $((WIN_X + 100)) $((WIN_Y + 80))" "up left"
	shot=$(screenshot moved)
	[ "$(bbox "$shot" 3366cc)" = "$((WIN_X + 50)) $((WIN_Y + 30)) 200 150" ] ||
		fail "the client's move request moved it to $(bbox "$shot" 3366cc)"
	kill "$CLIENT_PID_mover"
	# Park the pointer away from where the next window opens.
	input "move 5 5"

	# A lock: the pointer stays, the client gets relative motion only.
	start_client locker --title locker --color cc6633 --size 300x200 --lock-pointer \
		--relative-pointer --print-motion
	wait_mapped locker
	if grep -q '^pointer-locked$' "$(client_out locker)"; then
		fail "the lock took hold with the pointer outside the window"
	fi
	input "move $((WIN_X + 150)) $((WIN_Y + 100))"
	wait_for_line "$(client_out locker)" '^pointer-locked$'
	lines=$(wc -l <"$(client_out locker)")
	input "rel 20 10" "rel -5 7"
	wait_for_line "$(client_out locker)" '^relative -5 7$'
	if tail -n +$((lines + 1)) "$(client_out locker)" | grep -q '^motion '; then
		fail "a locked pointer still moved: $(tail -n 5 "$(client_out locker)")"
	fi
	# Super+Escape frees it; the pointer moves again.
	input "keydown Super_L" "key Escape" "keyup Super_L"
	wait_for_line "$(client_out locker)" '^pointer-unlocked$'
	input "rel 3 4"
	wait_for_line "$(client_out locker)" '^motion 153 104$'
	stop_input
	exit 0
fi

run_crossway_with_self --size 640x480
