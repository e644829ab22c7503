# Shared helpers for crossway's integration tests (POSIX sh, sourced).
#
# A test script runs crossway headless with itself as the startup command:
#   run_crossway_with_self [crossway options...]
# Inside, with CW_INSIDE=1, the script drives clients against crossway's
# WAYLAND_DISPLAY and exits with the verdict; crossway exits with that same
# status (--exit-with-child), and the outer half checks crossway's own
# status too, so a crash, a sanitizer report or a leak fails the test.
#
# Environment (set by meson): CROSSWAY, CW_TEST_CLIENT, CW_INPUT, CW_IMGCMP,
# CW_REFERENCE_DIR, CW_OUTPUT_DIR.

set -eu

: "${CW_OUTPUT_DIR:=${TMPDIR:-/tmp}/crossway-test-output}"
CW_TEST_NAME=$(basename "$0" .sh)
CW_ARTIFACTS="$CW_OUTPUT_DIR/$CW_TEST_NAME"
# Bounded waits: generous, because sanitizer builds are several times slower.
: "${CW_WAIT_SECONDS:=30}"

fail() {
	echo "FAIL: $CW_TEST_NAME: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $CW_TEST_NAME: $*" >&2
	exit 77
}

note() {
	echo "# $*" >&2
}

require_program() {
	command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed (package $2)"
}

# A private runtime directory per test, so sockets never collide.
setup_runtime_dir() {
	mkdir -p "$CW_ARTIFACTS"
	rm -rf "${CW_ARTIFACTS:?}"/*
	XDG_RUNTIME_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cw-runtime.XXXXXX")
	chmod 700 "$XDG_RUNTIME_DIR"
	export XDG_RUNTIME_DIR
	CW_RUNTIME_READY=1
	unset WAYLAND_DISPLAY DISPLAY WAYLAND_SOCKET
}

cleanup_runtime_dir() {
	[ -n "${XDG_RUNTIME_DIR:-}" ] && rm -rf "$XDG_RUNTIME_DIR"
}

# run_crossway_with_self [options]: the outer half of a test.
run_crossway_with_self() {
	# A test may have made the runtime dir already (to name sockets in it).
	[ -n "${CW_RUNTIME_READY:-}" ] || setup_runtime_dir
	trap cleanup_runtime_dir EXIT
	log="$CW_ARTIFACTS/crossway.log"
	status=0
	CW_INSIDE=1 timeout --kill-after=5 300 "$CROSSWAY" --headless \
		-s "exec sh '$0'" --exit-with-child "$@" >"$log" 2>&1 || status=$?
	if [ "$status" -ne 0 ]; then
		echo "--- crossway log ($log) ---" >&2
		tail -n 60 "$log" >&2
		fail "crossway or the test inside it exited with status $status"
	fi
	check_log_clean "$log"
	echo "PASS: $CW_TEST_NAME"
}

# Sanitizer reports that did not change the exit status still fail a test.
check_log_clean() {
	if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$1" >/dev/null; then
		grep -E -A20 "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$1" >&2
		fail "sanitizer report in $1"
	fi
}

# wait_for_line FILE REGEX: waits until a line of FILE matches (bounded).
wait_for_line() {
	deadline=$(( $(date +%s) + CW_WAIT_SECONDS ))
	while ! grep -E -q -- "$2" "$1" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "--- $1 ---" >&2
			cat "$1" >&2 2>/dev/null || true
			fail "timed out waiting for '$2' in $1"
		fi
		sleep 0.05
	done
}

# start_client NAME [cw-test-client options]: output goes to $CW_ARTIFACTS/NAME.out
start_client() {
	name=$1
	shift
	# 3 and 4 may hold input FIFOs open: a client must not keep them alive.
	"$CW_TEST_CLIENT" "$@" >"$CW_ARTIFACTS/$name.out" 2>"$CW_ARTIFACTS/$name.err" 3>&- 4>&- &
	eval "CLIENT_PID_$name=\$!"
	wait_for_line "$CW_ARTIFACTS/$name.out" '^mapped$'
}

client_out() {
	echo "$CW_ARTIFACTS/$1.out"
}

# start_input: one long-lived virtual pointer and keyboard (cw-input --stdin),
# like real devices that stay plugged in. Commands go through input().
start_input() {
	fifo="$CW_ARTIFACTS/input.fifo"
	rm -f "$fifo"
	mkfifo "$fifo"
	"$CW_INPUT" --extent "$CW_EXTENT" --stdin <"$fifo" >"$CW_ARTIFACTS/input.out" \
		2>"$CW_ARTIFACTS/input.err" &
	INPUT_PID=$!
	exec 3>"$fifo"
	INPUT_SENT=0
}

# input COMMANDS...: sends each command and waits until crossway has
# processed all of them (cw-input answers "ok" after a roundtrip).
input() {
	for command in "$@"; do
		echo "$command" >&3
		INPUT_SENT=$((INPUT_SENT + 1))
	done
	deadline=$(( $(date +%s) + CW_WAIT_SECONDS ))
	while [ "$(grep -c '^ok$' "$CW_ARTIFACTS/input.out")" -lt "$INPUT_SENT" ]; do
		if ! kill -0 "$INPUT_PID" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
			cat "$CW_ARTIFACTS/input.err" >&2
			fail "cw-input did not process: $*"
		fi
		sleep 0.02
	done
}

stop_input() {
	exec 3>&-
	wait "$INPUT_PID" || fail "cw-input exited with an error: $(cat "$CW_ARTIFACTS/input.err")"
}

# screenshot NAME: a grim capture of the whole layout, without cursor.
screenshot() {
	grim "$CW_ARTIFACTS/$1.png" || fail "grim failed"
	echo "$CW_ARTIFACTS/$1.png"
}

# expect_pixel IMAGE X Y RRGGBB
expect_pixel() {
	got=$("$CW_IMGCMP" --probe "$2,$3" "$1")
	[ "$got" = "$4" ] || fail "pixel ($2,$3) of $1 is $got, expected $4"
}

# bbox IMAGE RRGGBB: prints "X Y W H" of that colour
bbox() {
	"$CW_IMGCMP" --bbox "$2" "$1"
}

# compare_reference IMAGE NAME [region]: against tests/reference/NAME.png
compare_reference() {
	ref="$CW_REFERENCE_DIR/$2.png"
	[ -f "$ref" ] || fail "no reference image $ref (to create one: cp $1 $ref, after checking it by eye)"
	set -- "$1" "$2" "${3:-}"
	if [ -n "$3" ]; then
		"$CW_IMGCMP" --tolerance 3 --region "$3" --diff "$CW_ARTIFACTS/$2-diff.png" "$1" "$ref" ||
			fail "$1 differs from $ref (diff: $CW_ARTIFACTS/$2-diff.png)"
	else
		"$CW_IMGCMP" --tolerance 3 --diff "$CW_ARTIFACTS/$2-diff.png" "$1" "$ref" ||
			fail "$1 differs from $ref (diff: $CW_ARTIFACTS/$2-diff.png)"
	fi
}

CW_BACKGROUND=1d2b36
CW_FRAME_ACTIVE=285577
CW_FRAME_INACTIVE=3a3a3a
CW_TITLE_HEIGHT=26 # title bar including the top border

# wait_mapped TITLE [KIND]: waits for crossway's "Mapped KIND" line for TITLE
# (KIND: toplevel, the default, or vm-display) and sets WIN_W WIN_H WIN_X
# WIN_Y (content geometry in layout coordinates) from the latest one.
wait_mapped() {
	log="$CW_ARTIFACTS/crossway.log"
	wait_for_line "$log" "Mapped ${2:-toplevel} '$1'"
	line=$(grep "Mapped ${2:-toplevel} '$1'" "$log" | tail -n 1)
	set -- $(echo "$line" | sed -E 's/.* ([0-9]+)x([0-9]+) at (-?[0-9]+),(-?[0-9]+)$/\1 \2 \3 \4/')
	WIN_W=$1 WIN_H=$2 WIN_X=$3 WIN_Y=$4
}

# expect_pixel_near IMAGE X Y RRGGBB TOLERANCE
expect_pixel_near() {
	n=$("$CW_IMGCMP" --count "$4" --tolerance "$5" --region "$2,$3,1,1" "$1")
	[ "$n" -eq 1 ] || fail "pixel ($2,$3) of $1 is $("$CW_IMGCMP" --probe "$2,$3" "$1"), expected $4 (+-$5)"
}

# count_color IMAGE RRGGBB X,Y,W,H
count_color() {
	"$CW_IMGCMP" --count "$2" --tolerance 0 --region "$3" "$1"
}
