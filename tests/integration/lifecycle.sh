#!/bin/sh
# Start-up and shutdown: command-line errors, socket naming, the startup
# command and its exit status, SIGTERM and SIGINT, and the exit key binding.
. "$(dirname "$0")/../lib.sh"

setup_runtime_dir
trap cleanup_runtime_dir EXIT

# expect_exit CODE LOGNAME command...: runs it (bounded) and checks its status
expect_exit() {
	want=$1 log="$CW_ARTIFACTS/$2.log"
	shift 2
	status=0
	timeout --kill-after=5 120 "$@" >"$log" 2>&1 || status=$?
	[ "$status" -eq "$want" ] || { tail -n 20 "$log" >&2; fail "'$*' exited $status, expected $want"; }
	check_log_clean "$log"
}

expect_exit 0 help "$CROSSWAY" --help
grep -q -- "--headless" "$CW_ARTIFACTS/help.log" || fail "--help does not list the options"
expect_exit 2 bad-option "$CROSSWAY" --bogus
grep -q "unknown option '--bogus'" "$CW_ARTIFACTS/bad-option.log" || fail "no clear message for a bad option"
expect_exit 2 bad-size "$CROSSWAY" --headless --size 0x100
grep -q -- "--size" "$CW_ARTIFACTS/bad-size.log" || fail "no clear message for a bad size"
env -u XDG_RUNTIME_DIR "$CROSSWAY" --headless >"$CW_ARTIFACTS/no-runtime.log" 2>&1 && fail "ran without XDG_RUNTIME_DIR"
grep -q "XDG_RUNTIME_DIR is not set" "$CW_ARTIFACTS/no-runtime.log" || fail "no clear message without XDG_RUNTIME_DIR"

# The startup command runs with WAYLAND_DISPLAY naming the chosen socket,
# and its exit status becomes crossway's with --exit-with-child.
expect_exit 0 named "$CROSSWAY" --headless --socket cw-named --exit-with-child \
	-s 'test "$WAYLAND_DISPLAY" = cw-named && test -S "$XDG_RUNTIME_DIR/cw-named"'
expect_exit 3 child-status "$CROSSWAY" --headless --exit-with-child -s 'exit 3'

# A second crossway beside a running one takes the next free socket.
"$CROSSWAY" --headless --socket wayland-0 >"$CW_ARTIFACTS/first.log" 2>&1 &
first=$!
wait_for_line "$CW_ARTIFACTS/first.log" "Running on WAYLAND_DISPLAY=wayland-0"
expect_exit 0 second "$CROSSWAY" --headless --exit-with-child -s 'test "$WAYLAND_DISPLAY" = wayland-1'

# SIGTERM and SIGINT end crossway cleanly, with status 0.
for sig in TERM INT; do
	log="$CW_ARTIFACTS/signal-$sig.log"
	"$CROSSWAY" --headless >"$log" 2>&1 &
	pid=$!
	wait_for_line "$log" "Running on WAYLAND_DISPLAY="
	kill -s "$sig" "$pid"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || { tail -n 20 "$log" >&2; fail "SIG$sig: exit status $status"; }
	grep -q "Caught signal" "$log" || fail "SIG$sig was not handled by crossway"
	check_log_clean "$log"
done
kill "$first"
wait "$first" || fail "the first crossway did not exit cleanly"

# Super+Shift+E exits; no --exit-with-child, so only the binding can end it.
expect_exit 0 exit-binding "$CROSSWAY" --headless \
	-s "exec '$CW_INPUT' 'keydown Super_L' 'keydown Shift_L' 'key e'"
grep -q "Exit requested from the keyboard" "$CW_ARTIFACTS/exit-binding.log" || fail "the exit binding did not fire"
echo "PASS: $CW_TEST_NAME"
