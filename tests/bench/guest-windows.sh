#!/bin/sh
# guest-windows.sh: a guest application's frame rate and CPU cost through
# the whole guest-window path, side by side with the same client connected
# to crossway natively. A benchmark, not a test: it asserts nothing about
# time; it fails only when a run cannot be made.
#
# The guest path, on one machine (as tests/integration/guest-windows.sh):
#   client -> crossway-guest (the proxy; its vhost-user front end stands in
#   for the guest kernel's virtio-gpu driver) -> crossway's virtio-gpu
#   device (cross-domain context) -> crossway's wl_shm over guest blobs ->
#   rendering (headless output, pixman renderer).
# The native path: the same client on crossway's own socket.
#
# Workloads, each for DURATION seconds, native and guest back to back,
# REPEAT rounds:
#   - weston-simple-shm (250x250, one frame per frame callback);
#   - cw-test-client --animate frame at 1024x768 (full damage each frame);
#   - cw-test-client --animate spin (a commit whenever one of its 3 buffers
#     is released, no frame callbacks) at 256x256 and 1024x768, with a
#     full-window damage and with a 64x64 damage.
# Measured: frames per second (frame callbacks, or commits that reached an
# output frame), commits per second, CPU time of crossway, crossway-guest
# and the client (/proc/PID/stat utime+stime; cw-test-client's own
# getrusage) per commit, and the bytes the proxy copied per commit (its
# SIGUSR1 stats line). Prints a table and writes it, with the machine and
# the exact commands, to results-guest-windows.md next to this script
# (CW_BENCH_RESULTS overrides).
#
# Environment: CW_BENCH_BUILD (meson build dir, default <repo>/build),
# CROSSWAY, CW_GUEST, CW_TEST_CLIENT, SIMPLE_SHM (binaries), DURATION (10),
# REPEAT (3; cells show the median and the range), IDLE_S (5),
# PROFILE_S (5; 0: none): with perf and strace, one more guest run of the
# 1024x768 64x64 spin under perf record and strace -c (crossway and
# crossway-guest), for where the time goes; CW_WAIT_SECONDS (30, bound of
# every wait), CW_BENCH_KEEP=1 keeps the run directory (logs, raw
# measurements).
#
# weston-simple-shm cannot count its frames: with perf (root) a uprobe on
# libwayland-client's wl_proxy_add_listener, which it calls once per frame
# (for the frame callback), counts them; without perf that cell is "-".
set -eu

BENCH=guest-windows
HERE=$(cd "$(dirname "$0")" && pwd)
# Waits poll every 5 ms: the start of a measurement window is taken when a
# line appears.
WAIT_POLL=0.005
. "$HERE/lib.sh"
CROSSWAY=${CROSSWAY:-$BUILD/compositor/crossway}
CW_GUEST=${CW_GUEST:-$BUILD/vm/guest/crossway-guest}
CW_TEST_CLIENT=${CW_TEST_CLIENT:-$BUILD/tests/clients/cw-test-client}
SIMPLE_SHM=${SIMPLE_SHM:-$(command -v weston-simple-shm || echo weston-simple-shm)}
RESULTS=${CW_BENCH_RESULTS:-$HERE/results-guest-windows.md}
DURATION=${DURATION:-10}
REPEAT=${REPEAT:-3}
IDLE_S=${IDLE_S:-5}
PROFILE_S=${PROFILE_S:-5}
OUTPUT_SIZE=1600x1000 # room for a 1024x768 window and its frame
VM=bench

for prog in "$CROSSWAY" "$CW_GUEST" "$CW_TEST_CLIENT" "$SIMPLE_SHM"; do
	[ -x "$prog" ] || die "$prog is missing (ninja -C build; weston-simple-shm is in package weston)"
done

bench_setup
PROBE=""

bench_cleanup() {
	# shellcheck disable=SC2086 # a list of pids
	stop_all $PIDS
	[ -z "$PROBE" ] || perf probe -q -d "$PROBE" 2>/dev/null || true
	remove_work
}

# --- measurements ------------------------------------------------------------
# The proxy's bytes copied so far: SIGUSR1 makes it print its stats line.
guest_bytes() {
	gb_n=$(grep -c 'stats: clients=' "$GUEST_LOG" || true)
	kill -USR1 "$GUEST_PID"
	wait_count "$GUEST_LOG" 'stats: clients=' $((gb_n + 1))
	grep 'stats: clients=' "$GUEST_LOG" | sed -n "$((gb_n + 1))p" |
		sed 's/.*shm_bytes_copied=\([0-9]*\).*/\1/'
}

# snap FILE [CLIENT_PID]: "crossway_ticks guest_ticks client_ticks bytes time"
snap() {
	cw=$(cpu_ticks "$CW_PID")
	gu=$(cpu_ticks "$GUEST_PID")
	cl=0
	[ -z "${2:-}" ] || cl=$(cpu_ticks "$2")
	t=$(date +%s.%N)
	echo "$cw $gu $cl $(guest_bytes) $t" >"$1"
}

# A wl_proxy_add_listener uprobe counts weston-simple-shm's frames.
PROBE_EVENT=""
if [ $HAVE_PERF -eq 1 ] && command -v nm >/dev/null 2>&1; then
	LIBWL=$(ldd "$SIMPLE_SHM" | awk '$1 == "libwayland-client.so.0" { print $3 }')
	LIBWL=$(readlink -f "$LIBWL")
	off=$(nm -D --defined-only "$LIBWL" 2>/dev/null | awk '$3 == "wl_proxy_add_listener" { print $1 }')
	if [ -n "$off" ]; then
		perf probe -q -d cwbench:add_listener 2>/dev/null || true
		# The address, not the name: the name also matches the PLT entry.
		if perf probe -q -x "$LIBWL" -a "cwbench:add_listener=0x$off" 2>"$WORK/probe.err"; then
			PROBE=cwbench:add_listener
			PROBE_EVENT=$PROBE
			note_cmd "perf probe -x $LIBWL -a cwbench:add_listener=0x$off  # wl_proxy_add_listener"
		fi
	fi
fi

# --- crossway and the proxy --------------------------------------------------
CW_LOG=$WORK/crossway.log
CW_SOCK=$XDG_RUNTIME_DIR/$VM-gpu.sock
note_cmd "crossway --headless --size $OUTPUT_SIZE --socket bench-cw --vm $VM=\$XDG_RUNTIME_DIR/$VM-gpu.sock"
"$CROSSWAY" --headless --size "$OUTPUT_SIZE" --socket bench-cw --vm "$VM=$CW_SOCK" \
	>"$CW_LOG" 2>&1 &
CW_PID=$!
PIDS="$PIDS $CW_PID"
wait_crossway "$CW_LOG" "$CW_PID"

GUEST_LOG=$WORK/crossway-guest.log
note_cmd "crossway-guest --transport vhost-user:\$XDG_RUNTIME_DIR/$VM-gpu.sock --socket bench-guest"
"$CW_GUEST" --transport "vhost-user:$CW_SOCK" --socket bench-guest >"$GUEST_LOG" 2>&1 &
GUEST_PID=$!
PIDS="$PIDS $GUEST_PID"
wait_socket "$XDG_RUNTIME_DIR/bench-guest" "$GUEST_PID" crossway-guest

REFRESH=$(WAYLAND_DISPLAY=bench-cw wayland-info 2>/dev/null |
	sed -n 's/.*refresh: \([0-9.]*\) Hz.*/\1/p' | head -n 1 || true)

socket_of() { # native|guest
	if [ "$1" = native ]; then echo bench-cw; else echo bench-guest; fi
}

# --- runs ----------------------------------------------------------------------
# Each run leaves $WORK/TAG.res:
# "secs frames commits shown cw_ms guest_ms client_ms bytes wall"
#   secs: the client's window; frames: frame callbacks (paced) or commits
#   shown (spin); shown: commits not discarded (sampled for an output
#   frame); *_ms: CPU over the window; bytes: the proxy's copies; wall: the
#   script's window (CPU use %).

# run_animate WHERE TAG cw-test-client OPTIONS...
run_animate() {
	ra_where=$1 ra_tag=$2
	shift 2
	ra_out=$WORK/$ra_tag.out
	note_cmd "WAYLAND_DISPLAY=$(socket_of "$ra_where") cw-test-client $* --animate-for $DURATION"
	WAYLAND_DISPLAY=$(socket_of "$ra_where") "$CW_TEST_CLIENT" "$@" --animate-for "$DURATION" \
		>"$ra_out" 2>"$WORK/$ra_tag.err" &
	ra_pid=$!
	PIDS="$PIDS $ra_pid"
	wait_for "$ra_out" '^animate-start' "$WAIT" "$ra_pid"
	snap "$WORK/$ra_tag.before"
	sleep "$DURATION" # not polling meanwhile: the script's CPU stays out of the way
	wait_for "$ra_out" '^animate:' "$WAIT" "$ra_pid"
	snap "$WORK/$ra_tag.after"
	stop_pid "$ra_pid"
	ANIMATE_LINE=$(grep '^animate:' "$ra_out")
	case $ANIMATE_LINE in
	*mode=frame*) frames=$(animate_field frame_callbacks) ;;
	*) frames=$(animate_field shown) ;;
	esac
	res "$ra_tag" "$(animate_field seconds)" "$frames" "$(animate_field commits)" \
		"$(animate_field shown)" "$(animate_field cpu_ms)"
}

animate_field() { # NAME: from cw-test-client's 'animate:' line
	echo "$ANIMATE_LINE" | sed "s/.* $1=\([0-9.]*\).*/\1/"
}

# run_simple_shm WHERE TAG
run_simple_shm() {
	rs_where=$1 rs_tag=$2
	title="simple-shm"
	[ "$rs_where" = native ] || title="$VM: simple-shm"
	n=$(grep -c "Mapped toplevel '$title'" "$CW_LOG" || true)
	note_cmd "WAYLAND_DISPLAY=$(socket_of "$rs_where") weston-simple-shm"
	WAYLAND_DISPLAY=$(socket_of "$rs_where") "$SIMPLE_SHM" >"$WORK/$rs_tag.out" \
		2>"$WORK/$rs_tag.err" &
	rs_pid=$!
	PIDS="$PIDS $rs_pid"
	wait_count "$CW_LOG" "Mapped toplevel '$title'" $((n + 1))
	sleep 1 # past its first frames
	snap "$WORK/$rs_tag.before" "$rs_pid"
	if [ -n "$PROBE_EVENT" ]; then
		note_cmd "perf stat -x, -e $PROBE_EVENT -p PID -- sleep $DURATION"
		perf stat -x, -e "$PROBE_EVENT" -p "$rs_pid" -o "$WORK/$rs_tag.perf" -- \
			sleep "$DURATION" 2>"$WORK/$rs_tag.perf.err" ||
			die "perf stat failed: $(cat "$WORK/$rs_tag.perf.err")"
		frames=$(awk -F, -v e="$PROBE_EVENT" '$3 == e { print $1 }' "$WORK/$rs_tag.perf")
	else
		sleep "$DURATION"
		frames=-
	fi
	snap "$WORK/$rs_tag.after" "$rs_pid"
	kill -0 "$rs_pid" 2>/dev/null || die "weston-simple-shm exited during the run"
	stop_pid "$rs_pid"
	read -r _ _ cl0 _ _ <"$WORK/$rs_tag.before"
	read -r _ _ cl1 _ _ <"$WORK/$rs_tag.after"
	res "$rs_tag" "$DURATION" "$frames" "$frames" "$frames" \
		"$(awk -v a="$cl0" -v b="$cl1" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) * 1000 / hz }')"
}

# res TAG SECS FRAMES COMMITS SHOWN CLIENT_MS: writes TAG.res from the snaps
res() {
	read -r cw0 gu0 cl0 b0 t0 <"$WORK/$1.before"
	read -r cw1 gu1 cl1 b1 t1 <"$WORK/$1.after"
	awk -v secs="$2" -v frames="$3" -v commits="$4" -v shown="$5" -v clms="$6" \
		-v cw0="$cw0" -v cw1="$cw1" -v gu0="$gu0" -v gu1="$gu1" -v b0="$b0" -v b1="$b1" \
		-v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN {
			printf "%s %s %s %s %.1f %.1f %s %.0f %.3f\n", secs, frames, commits, shown,
				(cw1 - cw0) * 1000 / hz, (gu1 - gu0) * 1000 / hz, clms, b1 - b0, t1 - t0
		}' >"$WORK/$1.res"
	echo "guest-windows: $1: $(cat "$WORK/$1.res")" >&2
}

# Workloads: TAG|label|command (simple-shm, or cw-test-client options)
WORKLOADS="shm|weston-simple-shm 250x250, frame callbacks|simple-shm
frame-1024|cw-test-client 1024x768 full damage, frame callbacks|--size 1024x768 --animate frame
spin-256-full|cw-test-client 256x256 full damage, spin|--size 256x256 --animate spin
spin-256-small|cw-test-client 256x256 64x64 damage, spin|--size 256x256 --animate spin --damage 64x64
spin-1024-full|cw-test-client 1024x768 full damage, spin|--size 1024x768 --animate spin
spin-1024-small|cw-test-client 1024x768 64x64 damage, spin|--size 1024x768 --animate spin --damage 64x64"

echo "guest-windows: crossway $CROSSWAY, DURATION=$DURATION REPEAT=$REPEAT" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# Idle: crossway and the proxy with no client.
sleep 1
snap "$WORK/idle.before"
sleep "$IDLE_S"
snap "$WORK/idle.after"
res idle "$IDLE_S" 0 0 0 0

# The loops read the list on fd 3 and run in this shell (no pipe).
r=1
while [ $r -le "$REPEAT" ]; do
	while IFS='|' read -r tag label cmd <&3; do
		for where in native guest; do
			if [ "$cmd" = simple-shm ]; then
				run_simple_shm "$where" "$where-$tag.$r"
			else
				# shellcheck disable=SC2086 # options split on purpose
				run_animate "$where" "$where-$tag.$r" $cmd
			fi
		done
	done 3<<EOF
$WORKLOADS
EOF
	r=$((r + 1))
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Profile: a guest 1024x768 spin with a 64x64 damage, perf record then
# strace -c on crossway and crossway-guest (ptrace slows them: its counts
# are per commit, not its time).
PROFILE=""
if [ "$PROFILE_S" != 0 ] && [ $HAVE_PERF -eq 1 ] && command -v strace >/dev/null 2>&1; then
	PROFILE=$WORK/profile.md
	pr_out=$WORK/profile.out
	WAYLAND_DISPLAY=bench-guest "$CW_TEST_CLIENT" --size 1024x768 --animate spin --damage 64x64 \
		--animate-for $((PROFILE_S * 2 + 2)) >"$pr_out" 2>"$WORK/profile.err" &
	pr_pid=$!
	PIDS="$PIDS $pr_pid"
	wait_for "$pr_out" '^animate-start' "$WAIT" "$pr_pid"
	sleep 0.5
	note_cmd "perf record -F 1999 -p CROSSWAY,CROSSWAY_GUEST -o \$RUN/perf.data -- sleep $PROFILE_S"
	perf record -q -F 1999 -p "$CW_PID,$GUEST_PID" -o "$WORK/perf.data" -- sleep "$PROFILE_S" \
		>/dev/null 2>"$WORK/perf-record.err" || true
	note_cmd "timeout -s INT $PROFILE_S strace -c -f -p PID -o \$RUN/strace-{crossway,guest}.txt (both at once)"
	timeout -s INT "$PROFILE_S" strace -c -f -p "$CW_PID" -o "$WORK/strace-crossway.txt" \
		2>/dev/null &
	st1=$!
	timeout -s INT "$PROFILE_S" strace -c -f -p "$GUEST_PID" -o "$WORK/strace-guest.txt" \
		2>/dev/null &
	st2=$!
	sleep 0.3
	b0=$(guest_bytes)
	wait "$st1" "$st2" || true
	b1=$(guest_bytes)
	wait_for "$pr_out" '^animate:' $((WAIT + PROFILE_S * 2)) "$pr_pid"
	stop_pid "$pr_pid"
	{
		echo "perf record -F 1999 of crossway and crossway-guest for $PROFILE_S s during a guest"
		echo "1024x768 spin with a 64x64 damage (top symbols, % of all samples of both):"
		echo
		echo '```'
		perf report -i "$WORK/perf.data" --stdio --no-children --sort comm,dso \
			--percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 12 |
			cut -c1-110
		echo
		perf report -i "$WORK/perf.data" --stdio --no-children --sort comm,dso,symbol \
			--percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 20 |
			cut -c1-110
		echo '```'
		echo
		echo "strace -c over $PROFILE_S s of the same run (slowed by ptrace; the guest copied"
		echo "$((b1 - b0)) bytes meanwhile, i.e. about $(( (b1 - b0) / 16384 )) commits of 64x64);"
		echo "system calls by count:"
		echo
		echo '```'
		for f in crossway guest; do
			echo "$f:"
			awk '$NF != "total" && $4 ~ /^[0-9]+$/ { print $4, $NF }' \
				"$WORK/strace-$f.txt" 2>/dev/null | sort -rn | head -n 8 |
				awk '{ printf "  %10d %s\n", $1, $2 }'
		done
		echo '```'
	} >"$PROFILE"
fi

# --- table -----------------------------------------------------------------------
# Fields of TAG.res: 1 secs 2 frames 3 commits 4 shown 5 cw_ms 6 guest_ms
# 7 client_ms 8 bytes 9 wall
val() { # EXPR TAG: an awk expression over the fields ($1..$9) of TAG.res
	awk "{ if (\$3 == \"-\") print \"-\"; else print $1 }" "$WORK/$2.res"
}
# shellcheck disable=SC2016 # awk expressions, not shell ones
fps() { val '$2 / $1' "$1"; }
# shellcheck disable=SC2016
commits_s() { val '$3 / $1' "$1"; }
us_per_commit() { val "\$$2 * 1000 / \$3" "$1"; }   # TAG FIELD(5|6|7)
# shellcheck disable=SC2016
total_us() { val '($5 + $6 + $7) * 1000 / $3' "$1"; }
util() { awk -v f="$2" '{ print $f / $9 / 10 }' "$WORK/$1.res"; } # TAG FIELD: % of a CPU
# shellcheck disable=SC2016
bytes_per_commit() { val '$8 / $3' "$1"; }

# agg FUNC TAG [ARG]: FUNC TAG.r [ARG] over the rounds, "median (min-max)",
# or the value alone when every round agrees.
agg() {
	ag_f=$1 ag_tag=$2
	shift 2
	ag_r=1
	while [ $ag_r -le "$REPEAT" ]; do
		"$ag_f" "$ag_tag.$ag_r" "$@"
		ag_r=$((ag_r + 1))
	done | median_range
}

TABLE=$WORK/table.md
row() {
	printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "${4:-$(ratio "$3" "$2")}" >>"$TABLE"
}
{
	echo "| workload / metric | native | guest | ratio guest/native |"
	echo "|---|---:|---:|---:|"
} >"$TABLE"
while IFS='|' read -r tag label cmd <&3; do
	n=native-$tag g=guest-$tag
	echo "| **$label** | | | |" >>"$TABLE"
	case $tag in
	shm|frame-*)
		row "frames/s (frame callbacks)" "$(agg fps "$n")" "$(agg fps "$g")"
		what=frame
		;;
	*)
		row "frames/s shown (commits sampled for an output frame)" "$(agg fps "$n")" \
			"$(agg fps "$g")"
		row "commits/s (redraws)" "$(agg commits_s "$n")" "$(agg commits_s "$g")"
		what=commit
		;;
	esac
	row "crossway CPU us per $what" "$(agg us_per_commit "$n" 5)" "$(agg us_per_commit "$g" 5)"
	row "crossway-guest CPU us per $what" "$(agg us_per_commit "$n" 6)" \
		"$(agg us_per_commit "$g" 6)" "-"
	row "client CPU us per $what" "$(agg us_per_commit "$n" 7)" "$(agg us_per_commit "$g" 7)"
	row "all three, CPU us per $what" "$(agg total_us "$n")" "$(agg total_us "$g")"
	row "CPU use %: crossway / crossway-guest / client" \
		"$(agg util "$n" 5) / $(agg util "$n" 6) / $(agg util "$n" 7)" \
		"$(agg util "$g" 5) / $(agg util "$g" 6) / $(agg util "$g" 7)" "-"
	row "bytes copied by crossway-guest per $what" "$(agg bytes_per_commit "$n")" \
		"$(agg bytes_per_commit "$g")" "-"
done 3<<EOF
$WORKLOADS
EOF
# Interpretation, from the medians: the frame rate against the 0.9 goal,
# and for redraw throughput where the extra CPU per commit goes.
INTERP=$WORK/interpretation.md
med() { # FUNC TAG [ARG]: the median alone
	agg "$@" | sed 's/ .*//'
}
while IFS='|' read -r tag label cmd <&3; do
	n=native-$tag g=guest-$tag
	awk -v label="$label" -v fn="$(med fps "$n")" -v fg="$(med fps "$g")" \
		-v cn="$(med commits_s "$n")" -v cg="$(med commits_s "$g")" \
		-v xn="$(med us_per_commit "$n" 5)" -v xg="$(med us_per_commit "$g" 5)" \
		-v pg="$(med us_per_commit "$g" 6)" \
		-v ln="$(med us_per_commit "$n" 7)" -v lg="$(med us_per_commit "$g" 7)" \
		-v ncpu="$(nproc)" -v paced="$(case $tag in shm|frame-*) echo 1 ;; *) echo 0 ;; esac)" 'BEGIN {
		if (fn == "-" || fg == "-" || fn + 0 == 0) {
			printf "- %s: frame rate not measured.\n", label
			exit
		}
		r = fg / fn
		printf "- %s: %.1f frames/s guest, %.1f native (%.2f of native: %s).", label, fg, fn, r,
			(r >= 0.9 ? "meets the 0.9 goal" : "below the 0.9 goal")
		if (!paced) {
			cr = cg / cn
			printf " Redraw throughput %.0f/s vs %.0f/s (%.2f)", cg, cn, cr
			if (cr < 0.9)
				printf ": per commit the guest path costs %.0f us more CPU (crossway %+.0f, crossway-guest +%.0f, client %+.0f), the three sharing %d CPUs", \
					(xg + pg + lg) - (xn + ln), xg - xn, pg, lg - ln, ncpu
			printf "."
		} else {
			printf " Per frame the guest path costs %.0f us more CPU (crossway %+.0f, crossway-guest +%.0f, client %+.0f).", \
				(xg + pg + lg) - (xn + ln), xg - xn, pg, lg - ln
		}
		printf "\n"
	}' >>"$INTERP"
done 3<<EOF
$WORKLOADS
EOF

IDLE_CW=$(awk '{ printf "%.1f", $5 / $9 }' "$WORK/idle.res")
IDLE_GU=$(awk '{ printf "%.1f", $6 / $9 }' "$WORK/idle.res")

# --- output ----------------------------------------------------------------------
cat "$TABLE"
{
	echo "# guest-windows benchmark: a guest client through crossway-guest vs the same client native"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- machine: $(machine)"
	echo "- crossway: $CROSSWAY ($(build_info))"
	echo "- crossway-guest: $CW_GUEST (vhost-user transport); clients: $CW_TEST_CLIENT," \
		"$SIMPLE_SHM ($(dpkg-query -W -f='${Package} ${Version}' weston 2>/dev/null || echo 'version unknown'))"
	echo "- output: headless ${OUTPUT_SIZE}, pixman renderer, refresh ${REFRESH:-?} Hz as advertised;"
	echo "  wlroots 0.15's headless backend re-arms a 16 ms timer after each frame handler, so the"
	echo "  real rate is 1/(16 ms + compositing time): ~62 Hz when cheap, less when not"
	echo "- each run: $DURATION s, native then guest, $REPEAT rounds; cells show the median (min-max)"
	echo "- load average before / after the rounds: $LOAD_BEFORE / $LOAD_AFTER"
	echo "- idle (no client, $IDLE_S s): crossway $IDLE_CW ms CPU/s, crossway-guest $IDLE_GU ms CPU/s"
	echo
	cat "$TABLE"
	echo
	echo "Accounting:"
	echo
	echo "- frames/s, paced clients: frame callbacks per second (cw-test-client counts them;"
	echo "  weston-simple-shm's are counted by a uprobe on wl_proxy_add_listener, which it calls"
	echo "  once per frame$([ -n "$PROBE_EVENT" ] || echo ' — not available in this run: \"-\"'))."
	echo "- frames/s shown, spinning clients: commits whose wp_presentation feedback was not"
	echo "  discarded, i.e. that were sampled for an output frame (counted after a roundtrip at the"
	echo "  end of the window). crossway's headless output never completes a feedback as"
	echo "  presented, so \"presented\" itself stays 0."
	echo "- commits/s: cw-test-client --animate spin commits a new buffer whenever one of its three"
	echo "  is released; its rate is bounded by the CPU the three processes share."
	echo "- CPU: utime+stime from /proc/PID/stat (1/$CLK_TCK s ticks) of crossway and crossway-guest"
	echo "  between the client's 'animate-start' and 'animate:' lines (weston-simple-shm: a window of"
	echo "  $DURATION s, the client's own CPU from /proc too); cw-test-client's CPU is its own"
	echo "  getrusage over its window. Per frame/commit: CPU in the window / frames or commits in it."
	echo "  crossway's includes compositing the output (~62 frames/s whenever something changed)."
	echo "- bytes copied: crossway-guest's stats line (SIGUSR1) before and after the window: what it"
	echo "  copied from the client's wl_shm pools into guest blobs at each commit (the damage"
	echo "  bounding box; each buffer's first commit copies it whole)."
	echo
	echo "Interpretation (generated from the medians above):"
	echo
	cat "$INTERP"
	echo
	if [ -n "$PROFILE" ]; then
		echo "Where the time goes:"
		echo
		cat "$PROFILE"
		echo
	fi
	echo "Commands (\$RUN: the private run directory):"
	echo
	echo '```'
	awk '!seen[$0]++' "$COMMANDS"
	echo '```'
} >"$RESULTS"
echo "guest-windows: results written to $RESULTS" >&2
