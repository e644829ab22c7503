#!/bin/sh
# crossway nested in another compositor: inside weston (Wayland backend),
# checked through weston's own screenshot, and inside Xvfb (X11 backend),
# checked through crossway's screenshot.
. "$(dirname "$0")/../lib.sh"

require_program weston weston
require_program weston-screenshooter weston
setup_runtime_dir
# A known wlroots 0.15 leak of the nested backends (see lsan-nested.supp).
supp="$CW_ARTIFACTS/lsan.supp"
cat "$(dirname "$0")/../lsan.supp" "$(dirname "$0")/../lsan-nested.supp" >"$supp"
LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
export LSAN_OPTIONS
pids=""
cleanup() {
	for pid in $pids; do kill "$pid" 2>/dev/null || true; done
	cleanup_runtime_dir
}
trap cleanup EXIT

# --- Wayland: crossway is a client window of weston ------------------------
# No window animations: the screenshot must show final colours.
printf '[shell]\nanimation=none\nstartup-animation=none\nclose-animation=none\nfocus-animation=none\n' \
	>"$CW_ARTIFACTS/weston.ini"
weston --config="$CW_ARTIFACTS/weston.ini" --debug --backend=headless-backend.so --use-pixman --width=1400 --height=800 \
	--socket=parent --idle-time=0 >"$CW_ARTIFACTS/weston.log" 2>&1 &
pids="$pids $!"
wait_for_line "$CW_ARTIFACTS/weston.log" "launching '.*weston-desktop-shell'"
log="$CW_ARTIFACTS/crossway.log"
WAYLAND_DISPLAY=parent "$CROSSWAY" --socket inner \
	-s "exec '$CW_TEST_CLIENT' --title nested --color 3366cc --size 200x150" >"$log" 2>&1 &
crossway=$!
pids="$pids $crossway"
wait_mapped nested
grep -q "Creating wayland backend" "$log" || fail "crossway did not pick the Wayland backend"
# crossway only draws once weston has shown its window; take weston's picture
# once crossway has presented a frame with the client in it.
mkdir -p "$CW_ARTIFACTS/weston-shot"
deadline=$(( $(date +%s) + CW_WAIT_SECONDS ))
while :; do
	rm -f "$CW_ARTIFACTS"/weston-shot/*.png
	(cd "$CW_ARTIFACTS/weston-shot" && WAYLAND_DISPLAY=parent weston-screenshooter) ||
		fail "weston-screenshooter failed"
	shot=$(ls "$CW_ARTIFACTS"/weston-shot/*.png)
	box=$(bbox "$shot" 3366cc)
	[ "$box" != none ] && break
	[ "$(date +%s)" -lt "$deadline" ] || fail "the nested window never showed in weston"
	sleep 0.1
done
set -- $box
[ "$3 $4" = "200 150" ] || fail "nested client shows as $box in weston's output"
expect_pixel "$shot" $(($1 + 100)) $(($2 - 5)) "$CW_FRAME_ACTIVE"
expect_pixel "$shot" $(($1 - 20)) $(($2 + 20)) "$CW_BACKGROUND"
kill "$crossway"
wait "$crossway" || fail "nested crossway did not exit cleanly on SIGTERM"
check_log_clean "$log"
note "wayland nested: client at $1,$2 in weston's screenshot"

# --- X11: crossway is an X window of Xvfb -----------------------------------
if ! command -v Xvfb >/dev/null 2>&1; then
	skip "Xvfb is not installed (package xvfb): the X11 half was not run"
fi
Xvfb :97 -screen 0 1400x800x24 -nolisten tcp >"$CW_ARTIFACTS/xvfb.log" 2>&1 &
pids="$pids $!"
deadline=$(( $(date +%s) + CW_WAIT_SECONDS ))
until [ -S /tmp/.X11-unix/X97 ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "Xvfb did not start"
	sleep 0.05
done
log="$CW_ARTIFACTS/crossway-x11.log"
status=0
env -u WAYLAND_DISPLAY DISPLAY=:97 timeout 120 "$CROSSWAY" --screenshot "$CW_ARTIFACTS/x11.png" \
	-s "exec '$CW_TEST_CLIENT' --title nested --color 3366cc --size 200x150" >"$log" 2>&1 || status=$?
[ "$status" -eq 0 ] || { tail -n 20 "$log" >&2; fail "crossway on X11 exited $status"; }
grep -q "Creating X11 backend" "$log" || fail "crossway did not pick the X11 backend"
check_log_clean "$log"
# The default X11 output is 1024x768: the window is centred in it.
[ "$(bbox "$CW_ARTIFACTS/x11.png" 3366cc)" = "412 309 200 150" ] ||
	fail "X11: client shows as $(bbox "$CW_ARTIFACTS/x11.png" 3366cc)"
expect_pixel "$CW_ARTIFACTS/x11.png" 512 304 "$CW_FRAME_ACTIVE"
echo "PASS: $CW_TEST_NAME"
