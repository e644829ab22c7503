#!/bin/sh
# A framed window with a subsurface, captured two ways: by grim through
# wlr-screencopy, and by crossway's own --screenshot. Both must match the
# reference image (per-channel tolerance 3).
. "$(dirname "$0")/../lib.sh"

CLIENT_ARGS="--title crossway-test --color 3366cc --size 200x150 --subsurface ff0000"

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	# shellcheck disable=SC2086
	start_client win $CLIENT_ARGS
	shot=$(screenshot grim)
	compare_reference "$shot" frame-basic
	exit 0
fi

run_crossway_with_self --size 640x480

# Again with crossway's own screenshot, which ends crossway by itself.
setup_runtime_dir
trap cleanup_runtime_dir EXIT
status=0
# shellcheck disable=SC2086
timeout 120 "$CROSSWAY" --headless --size 640x480 --screenshot "$CW_ARTIFACTS/internal.png" \
	-s "exec '$CW_TEST_CLIENT' $CLIENT_ARGS" >"$CW_ARTIFACTS/internal.log" 2>&1 || status=$?
[ "$status" -eq 0 ] || { tail -n 30 "$CW_ARTIFACTS/internal.log" >&2; fail "--screenshot run exited $status"; }
check_log_clean "$CW_ARTIFACTS/internal.log"
compare_reference "$CW_ARTIFACTS/internal.png" frame-basic
echo "PASS: internal screenshot"
