#!/bin/sh
# Real clients from Debian's weston package, one after the other: each maps,
# gets crossway's focused frame, draws its own content, and goes away cleanly.
. "$(dirname "$0")/../lib.sh"

check_client() {
	program=$1 title=$2
	require_program "$program" weston
	"$program" >"$CW_ARTIFACTS/$program.log" 2>&1 &
	pid=$!
	wait_mapped "$title"
	note "$program mapped ${WIN_W}x${WIN_H} at $WIN_X,$WIN_Y"
	shot=$(screenshot "$program")
	# The focused frame's title bar, left border and bottom border.
	expect_pixel "$shot" $((WIN_X + 2)) $((WIN_Y - 3)) "$CW_FRAME_ACTIVE"
	expect_pixel "$shot" $((WIN_X - 1)) $((WIN_Y + WIN_H / 2)) "$CW_FRAME_ACTIVE"
	expect_pixel "$shot" $((WIN_X + WIN_W / 2)) $((WIN_Y + WIN_H)) "$CW_FRAME_ACTIVE"
	# Inside the frame the client drew everything: no desktop shows through.
	bg=$(count_color "$shot" "$CW_BACKGROUND" "$WIN_X,$WIN_Y,$WIN_W,$WIN_H")
	[ "$bg" -eq 0 ] || fail "$program: $bg background pixels inside its window"
	# And it drew something other than one flat colour.
	centre=$("$CW_IMGCMP" --probe "$((WIN_X + WIN_W / 2)),$((WIN_Y + WIN_H / 2))" "$shot")
	same=$(count_color "$shot" "$centre" "$WIN_X,$WIN_Y,$WIN_W,$WIN_H")
	[ "$same" -lt $((WIN_W * WIN_H)) ] || fail "$program drew a flat window"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	wait_for_line "$CW_ARTIFACTS/crossway.log" "Unmapped toplevel '$title'"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	check_client weston-simple-shm simple-shm
	check_client weston-simple-damage simple-damage
	check_client weston-subsurfaces "Wayland Sub-surface Demo"
	exit 0
fi

run_crossway_with_self --size 800x600
