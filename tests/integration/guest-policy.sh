#!/bin/sh
# A hostile guest application cannot draw outside its VM's frame nor cover
# the screen (peers-and-policy.md §2 rules 2, 3, 4 and 8), end to end: crossway
# with a VM, crossway-guest as that VM's proxy over our vhost-user front end
# (as in guest-windows), a focused host window, then cw-test-client through
# the proxy drawing where a window should not:
#  - a subsurface larger than the window at a negative offset: the window's
#    box grows to hold it, framed in the VM's colour ("Mapped toplevel"
#    reports the enlarged box), and nothing of it shows outside that frame;
#  - a buffer larger than its xdg geometry: the same;
#  - a popup asked for over the title bar, wider than the window, with no
#    constraint adjustment: placed inside the window's content instead;
#  - a screen-sized popup that ignores the size it is configured with: not
#    shown at all;
#  - a 300x300 cursor: refused, crossway's own cursor shows instead.
# Every such window opens below the focused host window, which stays whole.
# A host client with the same options is trusted and behaves as before.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../guest-lib.sh"

CW_EXTENT=1024x768
SCREEN_W=1024
SCREEN_H=768
A_COLOR=b5420b
HOST_COLOR=3366cc
GUEST_COLOR=204060
EVIL_COLOR=11ee22 # what is drawn outside the window geometry
POPUP_COLOR=ff00ff # cw-test-client's popups
CURSOR_COLOR=00ffff # cw-test-client's --cursor

# under_host X Y: true if the point is under the host window or its frame.
under_host() {
	[ "$1" -ge $((HOST_X - 2)) ] && [ "$1" -lt $((HOST_X + HOST_W + 2)) ] &&
		[ "$2" -ge $((HOST_Y - CW_TITLE_HEIGHT)) ] && [ "$2" -lt $((HOST_Y + HOST_H + 2)) ]
}

# expect_frame_edge IMAGE COLOR X0 Y0 DX DY: nine points from X0,Y0 to
# X0+DX,Y0+DY are COLOR or its unfocused shade, where the host window does
# not cover them; at least one is not covered.
expect_frame_edge() {
	shade=$(darker "$2")
	seen=0
	for i in 0 1 2 3 4 5 6 7 8; do
		px=$(($3 + $5 * i / 8)) py=$(($4 + $6 * i / 8))
		if under_host "$px" "$py" || [ "$px" -lt 0 ] || [ "$py" -lt 0 ] ||
				[ "$px" -ge "$SCREEN_W" ] || [ "$py" -ge "$SCREEN_H" ]; then
			continue
		fi
		if [ "$(near "$1" "$px" "$py" "$2")" -ne 1 ] && [ "$(near "$1" "$px" "$py" "$shade")" -ne 1 ]; then
			fail "frame pixel ($px,$py) of $1 is $("$CW_IMGCMP" --probe "$px,$py" "$1"), expected $2 or $shade"
		fi
		seen=$((seen + 1))
	done
	[ "$seen" -gt 0 ] || fail "no frame pixel of $1 from $3,$4 is visible"
}

# expect_vm_frame IMAGE COLOR: the window at WIN_* is framed in COLOR (or
# its unfocused shade) all round: the title bar's last row (below its text
# and button), the left, right and bottom borders.
expect_vm_frame() {
	expect_frame_edge "$1" "$2" $((WIN_X - 2)) $((WIN_Y - 1)) $((WIN_W + 3)) 0
	expect_frame_edge "$1" "$2" $((WIN_X - 1)) "$WIN_Y" 0 $((WIN_H - 1))
	expect_frame_edge "$1" "$2" $((WIN_X + WIN_W)) "$WIN_Y" 0 $((WIN_H - 1))
	expect_frame_edge "$1" "$2" $((WIN_X - 2)) $((WIN_Y + WIN_H + 1)) $((WIN_W + 3)) 0
}

# frame_region: the window at WIN_* with its frame (2 px borders, 26 px
# title bar), clipped to the screen, as X,Y,W,H.
frame_region() {
	x1=$((WIN_X - 2)) y1=$((WIN_Y - CW_TITLE_HEIGHT))
	x2=$((WIN_X + WIN_W + 2)) y2=$((WIN_Y + WIN_H + 2))
	[ "$x1" -ge 0 ] || x1=0
	[ "$y1" -ge 0 ] || y1=0
	[ "$x2" -le "$SCREEN_W" ] || x2=$SCREEN_W
	[ "$y2" -le "$SCREEN_H" ] || y2=$SCREEN_H
	echo "$x1,$y1,$((x2 - x1)),$((y2 - y1))"
}

# outside_frame IMAGE RRGGBB: how many pixels of that colour lie outside
# the frame of the window at WIN_*.
outside_frame() {
	all=$(count_color "$1" "$2" "0,0,$SCREEN_W,$SCREEN_H")
	inside=$(count_color "$1" "$2" "$(frame_region)")
	echo $((all - inside))
}

# expect_inside_frame IMAGE RRGGBB: that colour is drawn, and only inside
# the frame of the window at WIN_*.
expect_inside_frame() {
	[ "$(count_color "$1" "$2" "0,0,$SCREEN_W,$SCREEN_H")" -gt 0 ] || fail "$2 is not drawn in $1"
	out=$(outside_frame "$1" "$2")
	[ "$out" -eq 0 ] || fail "$out pixels of $2 outside the frame ($(frame_region)) in $1"
}

# expect_host_on_top IMAGE: the focused host window is whole and active.
expect_host_on_top() {
	n=$(count_color "$1" "$HOST_COLOR" "$HOST_X,$HOST_Y,$HOST_W,$HOST_H")
	[ "$n" -eq $((HOST_W * HOST_H)) ] ||
		fail "the host window shows $n of its $((HOST_W * HOST_H)) pixels in $1"
	expect_pixel "$1" $((HOST_X + 2)) $((HOST_Y - 3)) "$CW_FRAME_ACTIVE"
}

# expect_size W H: the latest wait_mapped reported that size.
expect_size() {
	[ "$WIN_W" -eq "$1" ] && [ "$WIN_H" -eq "$2" ] ||
		fail "window mapped as ${WIN_W}x${WIN_H}, expected ${1}x${2}"
}

# stop_client NAME TITLE: the client must still be alive (crossway posted
# no protocol error to it); its window goes.
stop_client() {
	eval "pid=\$CLIENT_PID_$1"
	kill -0 "$pid" 2>/dev/null || fail "$1 died: $(cat "$CW_ARTIFACTS/$1.err")"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	wait_for_line "$CW_ARTIFACTS/crossway.log" "Unmapped toplevel '$2'"
}

# expect_popup_configure NAME "X Y W H"
expect_popup_configure() {
	wait_for_line "$(client_out "$1")" '^popup-configure '
	got=$(grep '^popup-configure ' "$(client_out "$1")" | tail -n 1)
	[ "$got" = "popup-configure $2" ] || fail "$1: '$got', expected 'popup-configure $2'"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	log="$CW_ARTIFACTS/crossway.log"
	start_guest a

	# The user works in a host window in the middle of the screen.
	start_client host --title host --color "$HOST_COLOR" --size 160x100
	wait_mapped host
	HOST_X=$WIN_X HOST_Y=$WIN_Y HOST_W=$WIN_W HOST_H=$WIN_H

	# (b) A 250x180 subsurface at -150,-100 of a 200x150 window: a 350x250
	# window box, framed in a's colour all round, under the host window.
	guest_client a sub --title sub --color "$GUEST_COLOR" --size 200x150 \
		--subsurface "$EVIL_COLOR" --subsurface-at -150,-100,250,180
	wait_mapped "a: sub"
	expect_size 350 250
	grep -q "Not focusing 'a: sub'" "$log" || fail "a: sub took the keyboard"
	shot=$(screenshot guest-subsurface)
	expect_host_on_top "$shot"
	expect_vm_frame "$shot" "$A_COLOR"
	expect_inside_frame "$shot" "$EVIL_COLOR"
	expect_inside_frame "$shot" "$GUEST_COLOR"
	# The subsurface at the box's top-left, the main surface at its bottom-right.
	expect_pixel "$shot" $((WIN_X + 1)) $((WIN_Y + 1)) "$EVIL_COLOR"
	expect_pixel "$shot" $((WIN_X + WIN_W - 2)) $((WIN_Y + WIN_H - 2)) "$GUEST_COLOR"
	stop_client sub "a: sub"

	# (b) A buffer 120 px larger than its 200x150 geometry on every side.
	guest_client a margin --title margin --color "$EVIL_COLOR" --size 200x150 \
		--buffer-margin 120
	wait_mapped "a: margin"
	expect_size 440 390
	shot=$(screenshot guest-buffer-margin)
	expect_host_on_top "$shot"
	expect_vm_frame "$shot" "$A_COLOR"
	expect_inside_frame "$shot" "$EVIL_COLOR"
	stop_client margin "a: margin"

	# The host window moves to the top-left corner, so that the next windows
	# (cascading from the centre) are not under it: their popups are seen.
	# Dragged by its title bar, 100 px right of its left edge: to 10,30.
	start_input
	input "move $((HOST_X + 100)) $((HOST_Y - 10))" "down left" \
		"move 110 20" "up left" "move $((SCREEN_W - 4)) $((SCREEN_H - 4))"
	# (screenshots show the pointer: it waits in the bottom-right corner)
	stop_input
	HOST_X=10 HOST_Y=30

	# (a) A popup asked for over the title bar and the borders (at -4,-36,
	# 208x40 of a 200x150 window), without constraint adjustments: inside
	# the content instead, at 0,0 and 200 wide; the frame stays whole.
	guest_client a pop --title pop --color "$GUEST_COLOR" --size 200x150 \
		--popup --popup-at -4,-36,208,40
	wait_mapped "a: pop"
	expect_popup_configure pop "0 0 200 40"
	shot=$(screenshot guest-popup)
	[ "$(bbox "$shot" "$POPUP_COLOR")" = "$WIN_X $WIN_Y 200 40" ] ||
		fail "a's popup drawn at $(bbox "$shot" "$POPUP_COLOR"), expected $WIN_X $WIN_Y 200 40"
	expect_vm_frame "$shot" "$A_COLOR"
	expect_host_on_top "$shot"
	stop_client pop "a: pop"

	# (a) A 1600x1200 popup at -800,-600 that draws 1600x1200 whatever it is
	# configured with: never shown. The window itself is.
	guest_client a bigpop --title bigpop --color "$GUEST_COLOR" --size 200x150 \
		--popup --popup-at -800,-600,1600,1200 --popup-ignore-configure
	wait_mapped "a: bigpop"
	expect_popup_configure bigpop "0 0 200 150"
	shot=$(screenshot guest-big-popup)
	n=$(count_color "$shot" "$POPUP_COLOR" "0,0,$SCREEN_W,$SCREEN_H")
	[ "$n" -eq 0 ] || fail "a's oversized popup shows $n pixels"
	expect_inside_frame "$shot" "$GUEST_COLOR"
	expect_vm_frame "$shot" "$A_COLOR"
	expect_host_on_top "$shot"
	stop_client bigpop "a: bigpop"

	# A host client is trusted: the same options do what they did before.
	# Its window takes the keyboard and the top, its box is its geometry and
	# its subsurface and buffer draw outside its frame.
	start_client hsub --title hsub --color "$GUEST_COLOR" --size 200x150 \
		--subsurface "$EVIL_COLOR" --subsurface-at -150,-100,250,180
	wait_mapped hsub
	expect_size 200 150
	shot=$(screenshot host-subsurface)
	expect_pixel "$shot" $((WIN_X + 2)) $((WIN_Y - 3)) "$CW_FRAME_ACTIVE"
	[ "$(outside_frame "$shot" "$EVIL_COLOR")" -gt 0 ] ||
		fail "a host window's subsurface no longer draws outside its frame"
	stop_client hsub hsub
	start_client hmargin --title hmargin --color "$EVIL_COLOR" --size 200x150 \
		--buffer-margin 120
	wait_mapped hmargin
	expect_size 200 150
	shot=$(screenshot host-buffer-margin)
	[ "$(outside_frame "$shot" "$EVIL_COLOR")" -gt 0 ] ||
		fail "a host window's buffer no longer draws outside its frame"
	stop_client hmargin hmargin
	# Its popup goes where it asked (inside the output), over its title bar.
	start_client hpop --title hpop --color "$GUEST_COLOR" --size 200x150 \
		--popup --popup-at -4,-36,208,40
	wait_mapped hpop
	expect_popup_configure hpop "-4 -36 208 40"
	shot=$(screenshot host-popup)
	[ "$(bbox "$shot" "$POPUP_COLOR")" = "$((WIN_X - 4)) $((WIN_Y - 36)) 208 40" ] ||
		fail "the host popup drawn at $(bbox "$shot" "$POPUP_COLOR")"
	stop_client hpop hpop

	# (d) Cursors are drawn above everything: a guest's may be at most
	# 256x256. A 300x300 one is refused (crossway's own cursor shows), a
	# 32x32 one is shown whole; a host client's 300x300 one is shown.
	start_input
	guest_client a bigcur --title bigcur --color "$GUEST_COLOR" --size 200x150 \
		--cursor 300x300
	wait_mapped "a: bigcur"
	input "move $((WIN_X + 20)) $((WIN_Y + 20))"
	wait_for_line "$(client_out bigcur)" '^cursor-set 300 300$'
	shot=$(screenshot guest-big-cursor)
	n=$(count_color "$shot" "$CURSOR_COLOR" "0,0,$SCREEN_W,$SCREEN_H")
	[ "$n" -eq 0 ] || fail "a's 300x300 cursor shows $n pixels"
	input "move $((SCREEN_W - 4)) $((SCREEN_H - 4))"
	stop_client bigcur "a: bigcur"
	guest_client a smallcur --title smallcur --color "$GUEST_COLOR" --size 200x150 \
		--cursor 32x32
	wait_mapped "a: smallcur"
	input "move $((WIN_X + 20)) $((WIN_Y + 20))"
	wait_for_line "$(client_out smallcur)" '^cursor-set 32 32$'
	shot=$(screenshot guest-small-cursor)
	n=$(count_color "$shot" "$CURSOR_COLOR" "$((WIN_X + 20)),$((WIN_Y + 20)),32,32")
	[ "$n" -eq 1024 ] || fail "a's 32x32 cursor shows $n of its 1024 pixels"
	input "move $((SCREEN_W - 4)) $((SCREEN_H - 4))"
	stop_client smallcur "a: smallcur"
	start_client hcur --title hcur --color "$GUEST_COLOR" --size 200x150 --cursor 300x300
	wait_mapped hcur
	input "move $((WIN_X + 20)) $((WIN_Y + 20))"
	wait_for_line "$(client_out hcur)" '^cursor-set 300 300$'
	shot=$(screenshot host-big-cursor)
	n=$(count_color "$shot" "$CURSOR_COLOR" "0,0,$SCREEN_W,$SCREEN_H")
	[ "$n" -gt 0 ] || fail "a host client's 300x300 cursor is not shown"
	stop_input
	stop_client hcur hcur

	kill "$CLIENT_PID_host"
	wait "$CLIENT_PID_host" 2>/dev/null || true
	stop_guest a
	exit 0
fi

run_crossway_with_guests "a=$A_COLOR"
