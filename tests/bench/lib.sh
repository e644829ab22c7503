# Shared set-up and helpers of crossway's benchmarks (POSIX sh), sourced by
# tests/bench/*.sh once they have set BENCH (their name, the prefix of their
# messages) and HERE (this folder):
#   . "$HERE/lib.sh"        ROOT, BUILD, WAIT and the helpers below
#   (the benchmark's own settings and checks)
#   bench_setup             the private run directory, XDG_RUNTIME_DIR, PIDS
#
# Environment: CW_BENCH_BUILD (meson build dir, default <repo>/build),
# CW_WAIT_SECONDS (30, bound of every wait), CW_BENCH_KEEP=1 keeps the run
# directory (logs, raw measurements).
set -eu

ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${CW_BENCH_BUILD:-$ROOT/build}
WAIT=${CW_WAIT_SECONDS:-30}
WAIT_POLL=${WAIT_POLL:-0.02} # how often wait_for and wait_count look

die() {
	echo "$BENCH: $*" >&2
	for f in "${WORK:-/nonexistent}"/*.log "${WORK:-/nonexistent}"/*.err; do
		[ -s "$f" ] || continue
		echo "--- $f (last 15 lines)" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
}

# --- private directories, and everything we start dies with us ---------------

# bench_setup: WORK (the run directory), XDG_RUNTIME_DIR in it, PIDS (what
# bench_cleanup stops at exit) and COMMANDS (what note_cmd records).
bench_setup() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/cw-bench.XXXXXX")
	XDG_RUNTIME_DIR=$WORK/runtime
	mkdir -m 700 "$XDG_RUNTIME_DIR"
	export XDG_RUNTIME_DIR
	unset WAYLAND_DISPLAY DISPLAY WAYLAND_SOCKET
	PIDS=""
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM HUP
	trap 'exit 141' PIPE
	COMMANDS=$WORK/commands
	: >"$COMMANDS"
}

# stop_all PID...: SIGTERM to all, then up to 5 s for each before SIGKILL.
stop_all() {
	for pid in "$@"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "$@"; do
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$pid" 2>/dev/null || true
	done
}

# remove_work: the run directory goes, unless CW_BENCH_KEEP is set.
remove_work() {
	if [ -n "${CW_BENCH_KEEP:-}" ]; then
		echo "$BENCH: logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}

# At exit; a benchmark with more to undo defines its own after sourcing.
bench_cleanup() {
	# shellcheck disable=SC2086 # a list of pids
	stop_all $PIDS
	remove_work
}

forget_pid() {
	rest=""
	for p in $PIDS; do
		[ "$p" = "$1" ] || rest="$rest $p"
	done
	PIDS=$rest
}

# stop_pid PID: one of PIDS, stopped (as stop_all) and reaped.
stop_pid() {
	stop_all "$1"
	wait "$1" 2>/dev/null || true
	forget_pid "$1"
}

# wait_for FILE REGEX [SECONDS [PID]]: until a line of FILE matches; fails
# when PID (if given) exits first.
wait_for() {
	deadline=$(( $(date +%s) + ${3:-$WAIT} ))
	while ! grep -Eq -- "$2" "$1" 2>/dev/null; do
		if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
			grep -Eq -- "$2" "$1" 2>/dev/null && return 0
			die "process $4 exited before '$2' appeared in $1"
		fi
		[ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for '$2' in $1"
		sleep "$WAIT_POLL"
	done
}

# wait_crossway LOG PID: until crossway, started with a --vm, listens for
# its VMM and has its output.
wait_crossway() {
	wait_for "$1" 'waiting for its VMM' "$WAIT" "$2"
	wait_for "$1" 'Output .*: [0-9]+x[0-9]+|Running on' "$WAIT" "$2"
}

# wait_socket SOCKET PID NAME: until SOCKET exists; fails when PID exits first.
wait_socket() {
	deadline=$(( $(date +%s) + WAIT ))
	until [ -S "$1" ]; do
		kill -0 "$2" 2>/dev/null || die "$3 exited at start"
		[ "$(date +%s)" -lt "$deadline" ] || die "$3 did not listen"
		sleep 0.02
	done
}

# wait_count FILE REGEX N: until N lines of FILE match.
wait_count() {
	deadline=$(( $(date +%s) + WAIT ))
	while [ "$(grep -Ec -- "$2" "$1" 2>/dev/null || true)" -lt "$3" ]; do
		[ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $3 lines '$2' in $1"
		sleep "$WAIT_POLL"
	done
}

# note_cmd TEXT: recorded for the results file (paths under $WORK shortened).
note_cmd() {
	echo "$*" | sed -e "s|$WORK/runtime|\$XDG_RUNTIME_DIR|g" -e "s|$WORK|\$RUN|g" >>"$COMMANDS"
}

# --- measurements of a process -----------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
HAVE_PERF=0
if command -v perf >/dev/null 2>&1 && perf stat -x, -e task-clock true >/dev/null 2>&1; then
	HAVE_PERF=1
fi

# utime+stime of the whole process, in ticks (all threads, dead ones too)
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# --- the results table ---------------------------------------------------------

# median_range: of the numbers on stdin, one a line, "median (min-max)", or
# the value alone when every one shows the same; "-" when there is none or
# one is "-".
median_range() {
	sort -g | awk 'function f(x) {
			if (x == int(x) || x >= 100 || x <= -100)
				return sprintf("%.0f", x)
			return sprintf(x >= 10 || x <= -10 ? "%.1f" : "%.2f", x)
		}
		$1 == "-" { dash = 1; next }
		NF { v[n++] = $1 } END {
		if (dash || n == 0) { print "-"; exit }
		m = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
		if (f(v[0]) == f(v[n - 1])) print f(v[0])
		else printf "%s (%s-%s)\n", f(m), f(v[0]), f(v[n - 1]) }'
}

ratio() { # of the first numbers (medians)
	awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN {
		gsub(/[^0-9.-]/, "", a); gsub(/[^0-9.-]/, "", b)
		if (a == "" || b == "") print "-"
		else if (b + 0 == 0) print (a + 0 == 0 ? "1 (both 0)" : "inf")
		else printf "%.3g\n", a / b }'
}

# --- the results file ------------------------------------------------------------

# machine: the CPU model and count, whether a VM, the kernel.
machine() {
	if command -v lscpu >/dev/null 2>&1; then
		echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs" \
			"($(lscpu | sed -n 's/^Core(s) per socket: *//p') cores x $(lscpu | sed -n 's/^Thread(s) per core: *//p') threads)," \
			"$(lscpu | sed -n 's/^Hypervisor vendor: *\(.*\)/\1 guest, /p')Linux $(uname -r)"
	else
		echo "$(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs, Linux $(uname -r)"
	fi
}

# build_info: "meson buildtype B, source REV" of BUILD and ROOT.
build_info() {
	bi_type=$(grep -o '{"name": "buildtype"[^}]*}' "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null |
		sed 's/.*"value": "\([^"]*\)".*/\1/' || true)
	echo "meson buildtype ${bi_type:-unknown}, source $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
}
