#!/bin/sh
# vm-2d.sh: crossway's virtio-gpu back end (vm/) against QEMU's reference
# vhost-user-gpu, for the same scripted 2D guest workload, driven by our
# front end cw-vmm (QEMU 7.2 + Linux guest driver). A benchmark, not a test:
# it asserts nothing about time; it fails only when a run cannot be made.
#
# Measures, side by side:
#   1. host bytes copied per flush (full frame, 64x64, 8x16 fbcon cursor);
#   2. flushes/s and back-end CPU for N fenced (and unfenced) cycles of
#      TRANSFER_TO_HOST_2D + RESOURCE_FLUSH;
#   3. idle cost (CPU, wakeups) of a connected VM showing a scanout, also
#      with crossway nested in a headless weston;
#   4. back-end memory after a 1280x800 scanout.
# Prints a table and writes it, with the machine and the exact commands, to
# results-vm-2d.md next to this script (CW_BENCH_RESULTS overrides).
#
# Environment: CW_BENCH_BUILD (meson build dir, default <repo>/build),
# CROSSWAY, CW_VMM, VHOST_USER_GPU (binaries), N_FULL (500), N_SMALL (2000),
# REPEAT (3: each throughput run, reference and crossway interleaved; the
# table shows the median and the range), IDLE_S (10),
# CW_WAIT_SECONDS (30, bound of every wait for a process),
# CW_BENCH_KEEP=1 keeps the run directory (logs, raw measurements).
set -eu

BENCH=vm-2d
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
CROSSWAY=${CROSSWAY:-$BUILD/compositor/crossway}
CW_VMM=${CW_VMM:-$BUILD/tests/vmm/cw-vmm}
REFERENCE=${VHOST_USER_GPU:-/usr/lib/qemu/vhost-user-gpu}
RESULTS=${CW_BENCH_RESULTS:-$HERE/results-vm-2d.md}
N_FULL=${N_FULL:-500}
N_SMALL=${N_SMALL:-2000}
REPEAT=${REPEAT:-3}
IDLE_S=${IDLE_S:-10}
# The guest display: QEMU's default size, which the reference offers too.
W=1280
H=800
SMALL="608 368 64 64"   # a 64x64 damage rect in the middle
CURSOR="640 384 8 16"   # one fbcon character cell (the blinking cursor)

for prog in "$CROSSWAY" "$CW_VMM" "$REFERENCE"; do
	[ -x "$prog" ] || die "$prog is missing (build with ninja -C build; the reference is in package qemu-system-gui)"
done
command -v weston >/dev/null 2>&1 || die "weston is missing (package weston)"

bench_setup
VMM_PID=""

bench_cleanup() {
	exec 4>&- 5>&- 6<&-
	# shellcheck disable=SC2086 # lists of pids
	stop_all $VMM_PID $PIDS
	remove_work
}

# --- measurements of a process ---------------------------------------------
# voluntary + involuntary context switches of every thread
ctxt() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 }
			END { print v + 0, n + 0 }'
}

# mem PID: "VmRSS VmHWM RssAnon RssFile RssShmem" in KiB
mem() {
	awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 }
		/^RssFile:/ { f = $2 } /^RssShmem:/ { s = $2 }
		END { print r, h, a, f, s }' "/proc/$1/status"
}

# A measurement window on PID: meas_start PID TAG ... meas_stop PID TAG,
# then $WORK/TAG.meas holds "cpu_ms ctx_switches ticks_ms vol invol seconds".
# perf attaches with its counters off and is switched on and off through its
# control fifo, so the window is exactly the one between the two calls.
meas_start() {
	PERF_PID=""
	if [ $HAVE_PERF -eq 1 ]; then
		rm -f "$WORK/perf.ctl" "$WORK/perf.ack"
		mkfifo "$WORK/perf.ctl" "$WORK/perf.ack"
		note_cmd "perf stat -x, -e task-clock,context-switches -D -1 --control fifo:CTL,ACK -p PID (enable/disable around each window)"
		perf stat -x, -e task-clock,context-switches -D -1 \
			--control "fifo:$WORK/perf.ctl,$WORK/perf.ack" -p "$1" -o "$WORK/$2.perf" \
			2>"$WORK/$2.perf.err" &
		PERF_PID=$!
		PIDS="$PIDS $PERF_PID"
		# perf opens both read-write: then our opens do not block.
		deadline=$(( $(date +%s) + WAIT ))
		until has_open "$PERF_PID" "$WORK/perf.ack"; do
			kill -0 "$PERF_PID" 2>/dev/null || die "perf stat exited: $(cat "$WORK/$2.perf.err")"
			[ "$(date +%s)" -lt "$deadline" ] || die "perf stat did not start"
			sleep 0.02
		done
		exec 5>"$WORK/perf.ctl" 6<"$WORK/perf.ack"
		perf_cmd enable
	fi
	echo "$(cpu_ticks "$1") $(ctxt "$1") $(date +%s.%N)" >"$WORK/$2.before"
}

has_open() { # PID FILE: whether PID has FILE open
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "$2" ] && return 0
	done
	return 1
}

perf_cmd() {
	echo "$1" >&5
	read -r ack <&6 || die "perf stat went away ($(cat "$WORK"/*.perf.err))"
	[ "$ack" = ack ] || die "perf stat answered '$ack' to $1"
}

meas_stop() {
	echo "$(cpu_ticks "$1") $(ctxt "$1") $(date +%s.%N)" >"$WORK/$2.after"
	if [ -n "$PERF_PID" ]; then
		perf_cmd disable
		exec 5>&- 6<&-
		kill -INT "$PERF_PID" 2>/dev/null || true
		wait "$PERF_PID" 2>/dev/null || true
		forget_pid "$PERF_PID"
	fi
	perf_ms=-1
	perf_cs=-1
	if [ -n "$PERF_PID" ]; then
		perf_ms=$(awk -F, '$3 == "task-clock" { print ($1 ~ /^[0-9.]+$/) ? $1 : 0 }' "$WORK/$2.perf")
		perf_cs=$(awk -F, '$3 == "context-switches" { print ($1 ~ /^[0-9]+$/) ? $1 : 0 }' "$WORK/$2.perf")
	fi
	read -r t0 v0 n0 s0 <"$WORK/$2.before"
	read -r t1 v1 n1 s1 <"$WORK/$2.after"
	# Without perf, /proc ticks (CLK_TCK resolution) are what we have.
	awk -v pm="$perf_ms" -v pc="$perf_cs" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" \
		-v v0="$v0" -v v1="$v1" -v n0="$n0" -v n1="$n1" -v s0="$s0" -v s1="$s1" 'BEGIN {
			tick_ms = (t1 - t0) * 1000 / hz
			cs = pc >= 0 ? pc : (v1 - v0) + (n1 - n0)
			printf "%.3f %d %.0f %d %d %.3f\n", (pm >= 0 ? pm : tick_ms), cs, tick_ms,
				v1 - v0, n1 - n0, s1 - s0
		}' >"$WORK/$2.meas"
}

# meas TAG FIELD: 1 cpu_ms, 2 context switches, 3 cpu_ms from ticks,
# 4 voluntary, 5 involuntary, 6 window seconds
meas() {
	awk -v f="$2" '{ print $f }' "$WORK/$1.meas"
}

# strace_window PID TAG: syscall counts for IDLE_S seconds, after the quiet
# window (ptrace would disturb the counts above). "total poll-family"
strace_window() {
	if ! command -v strace >/dev/null 2>&1; then
		echo "- -" >"$WORK/$2.strace"
		return
	fi
	note_cmd "timeout -s INT $IDLE_S strace -c -f -p PID -o \$RUN/$2.st"
	timeout -s INT "$IDLE_S" strace -c -f -p "$1" -o "$WORK/$2.st" 2>/dev/null || true
	awk '$NF == "total" { t = $4 }
		$NF ~ /^(epoll_wait|epoll_pwait|epoll_pwait2|poll|ppoll|select|pselect6)$/ { p += $4 }
		END { print t + 0, p + 0 }' "$WORK/$2.st" >"$WORK/$2.strace"
}

# --- cw-vmm sessions ---------------------------------------------------------
SETUP="connect driver-ok display-info scanout $W $H"

# vmm_start TAG SOCKET STEPS...: cw-vmm runs SETUP (a 1280x800 scanout), then
# waits on its stdin (a fifo on fd 4) before and after STEPS.
vmm_start() {
	vs_tag=$1
	vs_sock=$2
	shift 2
	rm -f "$WORK/vmm.fifo"
	mkfifo "$WORK/vmm.fifo"
	note_cmd "cw-vmm --gpu-peer --socket \$SOCK $SETUP wait-line $* wait-line gpu-stats stats"
	# shellcheck disable=SC2086
	timeout -k 5 $((WAIT * 20)) "$CW_VMM" --gpu-peer --socket "$vs_sock" $SETUP wait-line "$@" \
		wait-line gpu-stats stats <"$WORK/vmm.fifo" >"$WORK/$vs_tag.out" 2>"$WORK/$vs_tag.err" &
	VMM_PID=$!
	exec 4>"$WORK/vmm.fifo"
	wait_for "$WORK/$vs_tag.out" '^scanout 0:' "$WAIT" "$VMM_PID"
	VMM_TAG=$vs_tag
}

vmm_go() {
	kill -0 "$VMM_PID" 2>/dev/null || die "cw-vmm ($VMM_TAG) exited early: $(cat "$WORK/$VMM_TAG.err")"
	echo go >&4
}

# vmm_finish: lets cw-vmm run from its second wait-line to its end and
# checks its status.
vmm_finish() {
	vmm_go
	wait_for "$WORK/$VMM_TAG.out" '^stats:' "$WAIT" "$VMM_PID"
	status=0
	wait "$VMM_PID" || status=$?
	VMM_PID=""
	exec 4>&-
	[ $status -eq 0 ] || die "cw-vmm ($VMM_TAG) exited with status $status: $(cat "$WORK/$VMM_TAG.err")"
}

# frames_field TAG FIELD: from the 'frames:' line; ms | rate | updates |
# bytes | fecpu (the front end's CPU ms)
frames_field() {
	sed -n 's/^frames: .*: \([0-9.]*\) ms, \([0-9.]*\)\/s; GPU socket: \([0-9]*\) updates, \([0-9]*\) bytes; front end CPU \([0-9.]*\) ms$/\1 \2 \3 \4 \5/p' \
		"$WORK/$1.out" | awk -v f="$2" '{
			if (f == "ms") print $1; else if (f == "rate") print $2
			else if (f == "updates") print $3; else if (f == "bytes") print $4
			else print $5 }'
}

# --- back ends ---------------------------------------------------------------
CW_LOG=""
start_crossway() { # MODE(headless|nested) TAG
	CW_SOCK=$XDG_RUNTIME_DIR/crossway-vm.sock
	CW_LOG=$WORK/crossway-$2.log
	rm -f "$CW_SOCK"
	if [ "$1" = headless ]; then
		note_cmd "crossway --headless --size 1600x1000 --socket bench-cw --vm bench=\$SOCK"
		"$CROSSWAY" --headless --size 1600x1000 --socket bench-cw --vm "bench=$CW_SOCK" \
			>"$CW_LOG" 2>&1 &
	else
		note_cmd "WAYLAND_DISPLAY=bench-weston crossway --socket bench-cw --vm bench=\$SOCK"
		WAYLAND_DISPLAY=bench-weston "$CROSSWAY" --socket bench-cw --vm "bench=$CW_SOCK" \
			>"$CW_LOG" 2>&1 &
	fi
	CW_PID=$!
	PIDS="$PIDS $CW_PID"
	wait_crossway "$CW_LOG" "$CW_PID"
}

# The session stats line crossway logs when the VMM goes; n-th (1-based).
# cw_session N FIELD
cw_session() {
	wait_count "$CW_LOG" 'session stats' "$1"
	grep 'session stats' "$CW_LOG" | sed -n "$1p" | sed "s/.*[ ]$2=\([0-9]*\).*/\1/"
}

start_reference() { # TAG: the reference serves one connection, then exits
	REF_SOCK=$XDG_RUNTIME_DIR/reference-vm.sock
	rm -f "$REF_SOCK"
	note_cmd "$REFERENCE -s \$SOCK"
	"$REFERENCE" -s "$REF_SOCK" >"$WORK/reference-$1.log" 2>&1 &
	REF_PID=$!
	PIDS="$PIDS $REF_PID"
	wait_socket "$REF_SOCK" "$REF_PID" "the reference back end"
	mem "$REF_PID" >"$WORK/ref-$1.mem0"
}

stop_reference() {
	deadline=$(( $(date +%s) + WAIT ))
	while kill -0 "$REF_PID" 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] || break
		sleep 0.02
	done
	stop_pid "$REF_PID"
}

# --- workloads -----------------------------------------------------------------
# run_frames BACKEND(cw|ref) TAG N RECT OPTS...: one session, measured around
# the frames step.
run_frames() {
	rf_be=$1
	rf_short=$2
	rf_tag=$1-$2
	rf_n=$3
	rf_rect=$4
	shift 4
	backend_for "$rf_be" "$rf_short"
	# shellcheck disable=SC2086
	vmm_start "$rf_tag" "$BE_SOCK" frames "$rf_n" $rf_rect --no-verify "$@"
	mem "$BE_PID" >"$WORK/$rf_tag.mem"
	meas_start "$BE_PID" "$rf_tag"
	vmm_go
	# Even paced at 10 cycles/s, a run ends within this bound.
	wait_for "$WORK/$rf_tag.out" '^frames:' $((WAIT + rf_n / 10)) "$VMM_PID"
	meas_stop "$BE_PID" "$rf_tag"
	mem "$BE_PID" >"$WORK/$rf_tag.mem2"
	vmm_finish
	backend_done "$rf_be" "$rf_tag"
}

# backend_for BE TAG: BE_PID and BE_SOCK of a back end ready for a session
backend_for() {
	if [ "$1" = ref ]; then
		start_reference "$2"
		BE_PID=$REF_PID
		BE_SOCK=$REF_SOCK
	else
		BE_PID=$CW_PID
		BE_SOCK=$CW_SOCK
	fi
}

# backend_done BE TAG: after a session; crossway's stats go to TAG.session
backend_done() {
	if [ "$1" = ref ]; then
		stop_reference
	else
		CW_SESSIONS=$((CW_SESSIONS + 1))
		echo "$(cw_session $CW_SESSIONS flushes) $(cw_session $CW_SESSIONS bytes_copied)" \
			>"$WORK/$2.session"
	fi
}

# run_idle BACKEND TAG: a scanout shown, no guest activity, IDLE_S seconds
# quiet (CPU, context switches) and IDLE_S seconds under strace.
run_idle() {
	ri_tag=$1-$2
	backend_for "$1" "$2"
	vmm_start "$ri_tag" "$BE_SOCK" ping
	sleep 1 # let the first frames go out
	mem "$BE_PID" >"$WORK/$ri_tag.mem"
	idle_window "$BE_PID" "$ri_tag"
	vmm_go
	vmm_finish
	backend_done "$1" "$ri_tag"
}

# idle_window PID TAG: no VMM activity while measured.
idle_window() {
	meas_start "$1" "$2"
	sleep "$IDLE_S"
	meas_stop "$1" "$2"
	strace_window "$1" "$2"
}

# --- the runs --------------------------------------------------------------------
echo "vm-2d: crossway $CROSSWAY, reference $REFERENCE; N_FULL=$N_FULL N_SMALL=$N_SMALL REPEAT=$REPEAT IDLE_S=$IDLE_S" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# Idle, and memory: the first session of each process. The reference back
# end serves one connection and exits: a fresh process per session.
echo "vm-2d: idle and memory..." >&2
run_idle ref idle
CW_SESSIONS=0
start_crossway headless headless
sleep 1
mem "$CW_PID" >"$WORK/cw-novm.mem"
idle_window "$CW_PID" cw-novm
run_idle cw idle

# Throughput: the same workload on both back ends, back to back, REPEAT
# times, so that whatever else the machine does hits both alike.
r=1
while [ $r -le "$REPEAT" ]; do
	echo "vm-2d: workloads, round $r of $REPEAT..." >&2
	for wl in "full|$N_FULL|0 0 $W $H|" "small|$N_SMALL|$SMALL|" "cursor|$N_SMALL|$CURSOR|" \
			"full-unf|$N_FULL|0 0 $W $H|--unfenced" "small-unf|$N_SMALL|$SMALL|--unfenced"; do
		old_ifs=$IFS
		IFS='|'
		# shellcheck disable=SC2086
		set -- $wl
		IFS=$old_ifs
		for be in ref cw; do
			# shellcheck disable=SC2086
			run_frames "$be" "$1.$r" "$2" "$3" ${4:-}
		done
	done
	r=$((r + 1))
done
stop_pid "$CW_PID"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# crossway nested in a headless weston: idle only.
echo "vm-2d: crossway nested in weston..." >&2
note_cmd "weston --backend=headless-backend.so --use-pixman --socket=bench-weston --idle-time=0"
weston --backend=headless-backend.so --use-pixman --socket=bench-weston --idle-time=0 \
	>"$WORK/weston.log" 2>&1 &
WESTON_PID=$!
PIDS="$PIDS $WESTON_PID"
wait_socket "$XDG_RUNTIME_DIR/bench-weston" "$WESTON_PID" weston
CW_SESSIONS=0
start_crossway nested nested
sleep 1
idle_window "$CW_PID" cw-nested-novm
run_idle cw nested-idle
stop_pid "$CW_PID"
stop_pid "$WESTON_PID"

# --- the table ---------------------------------------------------------------------
# Bytes per flush. crossway: its own count (TRANSFER_TO_HOST_2D copies), the
# setup (the idle session: one scanout) subtracted. Reference: the same
# transfer copy (it copies the same rect rows) plus each UPDATE message it
# builds and writes on the GPU socket (header included).
read -r base_fl base_by <"$WORK/cw-idle.session"
cw_bpf() { # BE(cw) TAG
	read -r fl by <"$WORK/cw-$2.session"
	awk -v fl="$fl" -v by="$by" -v f0="$base_fl" -v b0="$base_by" \
		'BEGIN { printf "%.0f", (by - b0) / (fl - f0) }'
}
ref_bpf() { # BE(ref) TAG W H
	awk -v u="$(frames_field "ref-$2" updates)" -v b="$(frames_field "ref-$2" bytes)" \
		-v t=$(($3 * $4 * 4)) 'BEGIN { printf "%.0f", t + b / u }'
}
ref_sock_bpf() { # BE(ref) TAG
	awk -v u="$(frames_field "ref-$2" updates)" -v b="$(frames_field "ref-$2" bytes)" \
		'BEGIN { printf "%.0f", b / u }'
}
# CPU microseconds per flush, over the frames step
cpu_per_flush() { # BE TAG N
	awk -v ms="$(meas "$1-$2" 1)" -v n="$3" 'BEGIN { printf "%.1f", ms * 1000 / n }'
}
cpu_util() { # BE TAG: CPU ms / elapsed ms of the frames step, in %
	awk -v ms="$(meas "$1-$2" 1)" -v el="$(frames_field "$1-$2" ms)" \
		'BEGIN { printf "%.0f", 100 * ms / el }'
}
fe_util() { # BE TAG: the front end's CPU ms / elapsed ms, in %
	awk -v ms="$(frames_field "$1-$2" fecpu)" -v el="$(frames_field "$1-$2" ms)" \
		'BEGIN { printf "%.0f", 100 * ms / el }'
}
rate() { # BE TAG
	frames_field "$1-$2" rate
}
# agg FUNC BE TAG [ARG]: FUNC BE TAG.r [ARG] over the rounds r, shown as
# "median (min-max)", or the value alone when every round agrees.
agg() {
	ag_f=$1 ag_be=$2 ag_tag=$3
	shift 3
	ag_r=1
	while [ $ag_r -le "$REPEAT" ]; do
		"$ag_f" "$ag_be" "$ag_tag.$ag_r" "$@"
		echo
		ag_r=$((ag_r + 1))
	done | median_range
}
per_s() { # TAG FIELD: a measurement per second of its window
	awk -v v="$(meas "$1" "$2")" -v s="$(meas "$1" 6)" 'BEGIN { printf "%.1f", v / s }'
}
diff_s() { # TAG_A TAG_B FIELD: (A - B) per second
	awk -v a="$(meas "$1" "$3")" -v sa="$(meas "$1" 6)" -v b="$(meas "$2" "$3")" \
		-v sb="$(meas "$2" 6)" 'BEGIN { printf "%.1f", a / sa - b / sb }'
}
kib() { # FILE FIELD(1 rss 2 hwm 3 anon 4 file 5 shmem)
	awk -v f="$2" '{ print $f }' "$1"
}
st_field() { # TAG FIELD(1 total, 2 poll-family): per second
	awk -v f="$2" -v s="$IDLE_S" '{ if ($f == "-") print "-"; else printf "%.1f", $f / s }' \
		"$WORK/$1.strace"
}

TABLE=$WORK/table.md
row() {
	printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "${4:-$(ratio "$2" "$3")}" >>"$TABLE"
}
{
	echo "| metric | crossway | reference | ratio crossway/reference |"
	echo "|---|---:|---:|---:|"
} >"$TABLE"
for w in "full 1280 800 full frame 1280x800" "small 64 64 64x64 damage" \
		"cursor 8 16 8x16 fbcon cursor"; do
	# shellcheck disable=SC2086 # split into words on purpose
	set -- $w
	tag=$1 rw=$2 rh=$3
	shift 3
	row "bytes copied per flush, $*" "$(agg cw_bpf cw "$tag")" \
		"$(agg ref_bpf ref "$tag" "$rw" "$rh")"
	row "  of which on the GPU socket, $*" 0 "$(agg ref_sock_bpf ref "$tag")" "-"
done
for w in "full $N_FULL fenced full frame" "small $N_SMALL fenced 64x64" \
		"cursor $N_SMALL fenced 8x16" "full-unf $N_FULL unfenced full frame" \
		"small-unf $N_SMALL unfenced 64x64"; do
	# shellcheck disable=SC2086 # split into words on purpose
	set -- $w
	tag=$1 n=$2
	shift 2
	row "flushes/s, N=$n $*" "$(agg rate cw "$tag")" "$(agg rate ref "$tag")"
	row "back-end CPU us per flush, N=$n $*" "$(agg cpu_per_flush cw "$tag" "$n")" \
		"$(agg cpu_per_flush ref "$tag" "$n")"
	row "  back-end CPU use during that run, %" "$(agg cpu_util cw "$tag")" \
		"$(agg cpu_util ref "$tag")" "-"
	row "  front-end (cw-vmm) CPU use during that run, %" "$(agg fe_util cw "$tag")" \
		"$(agg fe_util ref "$tag")" "-"
done
row "idle: CPU ms/s, headless crossway with the VM" "$(per_s cw-idle 1)" "$(per_s ref-idle 1)"
row "idle: CPU ms/s, headless crossway without a VM" "$(per_s cw-novm 1)" "-" "-"
row "idle: CPU ms/s due to the VM (with - without)" "$(diff_s cw-idle cw-novm 1)" \
	"$(per_s ref-idle 1)"
row "idle: context switches/s (wakeups), headless, with the VM" "$(per_s cw-idle 2)" \
	"$(per_s ref-idle 2)"
row "idle: context switches/s, headless, without a VM" "$(per_s cw-novm 2)" "-" "-"
row "idle: context switches/s due to the VM" "$(diff_s cw-idle cw-novm 2)" "$(per_s ref-idle 2)"
row "idle: syscalls/s (strace), headless, with the VM" "$(st_field cw-idle 1)" "$(st_field ref-idle 1)"
row "idle: poll/epoll_wait calls/s (strace), with the VM" "$(st_field cw-idle 2)" \
	"$(st_field ref-idle 2)"
row "idle: poll/epoll_wait calls/s (strace), without a VM" "$(st_field cw-novm 2)" "-" "-"
row "idle nested in weston: CPU ms/s, with the VM" "$(per_s cw-nested-idle 1)" "$(per_s ref-idle 1)"
row "idle nested in weston: CPU ms/s, without a VM" "$(per_s cw-nested-novm 1)" "-" "-"
row "idle nested in weston: context switches/s, with the VM" "$(per_s cw-nested-idle 2)" \
	"$(per_s ref-idle 2)"
row "idle nested in weston: context switches/s, without a VM" "$(per_s cw-nested-novm 2)" "-" "-"
row "idle nested in weston: syscalls/s (strace), with the VM" "$(st_field cw-nested-idle 1)" \
	"$(st_field ref-idle 1)"
row "idle nested in weston: syscalls/s (strace), without a VM" "$(st_field cw-nested-novm 1)" "-" "-"
# Memory: each process's first VM session (the idle one), 1 s after its
# scanout; "before" is the process before any VMM connected.
memdiff() { # FILE_AFTER FILE_BEFORE FIELD
	echo $(( $(kib "$1" "$3") - $(kib "$2" "$3") ))
}
CWM=$WORK/cw-idle.mem CW0=$WORK/cw-novm.mem RFM=$WORK/ref-idle.mem RF0=$WORK/ref-idle.mem0
row "VmRSS KiB after a 1280x800 scanout" "$(kib "$CWM" 1)" "$(kib "$RFM" 1)"
row "VmHWM KiB after a 1280x800 scanout" "$(kib "$CWM" 2)" "$(kib "$RFM" 2)"
row "VmRSS KiB before any VMM connected" "$(kib "$CW0" 1)" "$(kib "$RF0" 1)"
row "VmRSS KiB added by the VM (after scanout - before)" "$(memdiff "$CWM" "$CW0" 1)" \
	"$(memdiff "$RFM" "$RF0" 1)"
row "  RssAnon / RssFile / RssShmem KiB added" \
	"$(memdiff "$CWM" "$CW0" 3) / $(memdiff "$CWM" "$CW0" 4) / $(memdiff "$CWM" "$CW0" 5)" \
	"$(memdiff "$RFM" "$RF0" 3) / $(memdiff "$RFM" "$RF0" 4) / $(memdiff "$RFM" "$RF0" 5)" "-"
row "VmRSS / VmHWM KiB after the (first) fenced full-frame run" \
	"$(kib "$WORK/cw-full.1.mem2" 1) / $(kib "$WORK/cw-full.1.mem2" 2)" \
	"$(kib "$WORK/ref-full.1.mem2" 1) / $(kib "$WORK/ref-full.1.mem2" 2)" "-"

# --- output ----------------------------------------------------------------------
cat "$TABLE"
{
	echo "# vm-2d benchmark: crossway vm/ vs QEMU's vhost-user-gpu"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- machine: $(machine)"
	echo "- crossway: $CROSSWAY ($(build_info)); front end: $CW_VMM"
	echo "- reference: $REFERENCE ($(dpkg-query -W -f='${Package} ${Version}' qemu-system-gui 2>/dev/null || echo 'version unknown'))"
	echo "- CPU time: $([ $HAVE_PERF -eq 1 ] && echo 'perf stat -e task-clock,context-switches -p PID' || echo "/proc/PID/stat utime+stime (1/$CLK_TCK s ticks)"); idle windows $IDLE_S s"
	echo "- workload: guest display ${W}x${H}; small rect $SMALL, cursor cell $CURSOR (x y w h);"
	echo "  throughput runs: $REPEAT rounds, reference and crossway back to back; cells show"
	echo "  the median (min-max) over the rounds"
	echo "- load average before / after the workload rounds: $LOAD_BEFORE / $LOAD_AFTER"
	echo
	cat "$TABLE"
	echo
	echo "Accounting:"
	echo
	echo "- crossway bytes: the session stats line (bytes_copied = TRANSFER_TO_HOST_2D copies) of each"
	echo "  workload's session, minus the idle session's (the same setup: one ${W}x${H} scanout), per flush."
	echo "- reference bytes: its transfer copies the same rect rows (w*h*4) as crossway, plus the UPDATE"
	echo "  message it composes and writes on the GPU socket per flush (cw-vmm's byte count, 12-byte"
	echo "  header included)."
	echo "- CPU: the back-end process over the frames step only (cw-vmm waits on stdin before and after)."
	echo "  crossway's includes compositing the VM window at up to 60 Hz; the reference's display work"
	echo "  would be in QEMU's UI, which cw-vmm replaces (it reads but does not draw the frames)."
	echo "- idle wakeups: context switches of all threads (perf, or /proc voluntary+nonvoluntary);"
	echo "  strace -c -f counts syscalls in a second window of the same length."
	echo "- fenced flushes: crossway answers a fenced RESOURCE_FLUSH once a frame showing it was"
	echo "  presented, so a guest waiting for each fence gets one flush per output frame; the"
	echo "  reference answers at once. Unfenced rows show the unpaced cost."
	echo "- memory: each process's first VM session, 1 s after its scanout, against the same"
	echo "  process before any VMM connected."
	echo
	echo "Commands (\$RUN: the private run directory, \$SOCK: the back end's vhost-user socket):"
	echo
	echo '```'
	awk '!seen[$0]++' "$COMMANDS"
	echo '```'
} >"$RESULTS"
echo "vm-2d: results written to $RESULTS" >&2
