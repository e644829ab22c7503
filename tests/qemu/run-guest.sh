#!/bin/sh
# run-guest.sh --socket PATH [--socket PATH2 ...] [--input-socket PATH ...] --out DIR [options]
#
# Boots the harness guest (make-initrd.sh) in QEMU 7.2 under TCG with one
# vhost-user-gpu-pci device per --socket and one vhost-user-input-pci device
# per --input-socket. The back end(s) must already be listening. QEMU runs
# under gdb with the command file of qemu-harness.md §3.1 (written to
# DIR/gdb.cmd): its breakpoints flip the KVM flags around every vhost-user
# device's init (GPUs and input devices alike), so any number of them
# initialise without KVM.
#
# Options:
#   --socket PATH        vhost-user socket of one GPU back end (repeatable;
#                        devices get ids gpu0, gpu1, ... in this order)
#   --input-socket PATH  vhost-user socket of one virtio-input back end
#                        (repeatable; ids input0, input1, ..., after the GPUs)
#   --qemu-arg ARG       one extra QEMU argument, appended after the devices
#                        (repeatable), e.g. --qemu-arg -device --qemu-arg
#                        virtio-keyboard-pci for QEMU's built-in input devices
#   --out DIR            logs: serial.log, qemu.log (QEMU stderr and gdb's
#                        messages), gtest.log, dmesg-drm.log, gdb.cmd,
#                        qemu-cmdline.txt, then.log, summary.txt
#   --test PLAN          guest plan (cwtest=), default pattern:3; see
#                        make-initrd.sh for the steps (input[:S] runs the
#                        guest's evdev reader)
#   --palette P[,P...]   kms-pattern palette (1-4) per card, default 1
#   --timeout S          overall bound in seconds, default 150
#   --wait-line REGEX    when a line of serial.log matches REGEX (ERE, CRs
#   --then CMD             stripped), run CMD once with sh -c, bounded by
#   --then-timeout S       S seconds (default 60), output in DIR/then.log.
#                        CMD sees RUN_GUEST_OUT, RUN_GUEST_QMP (QMP socket),
#                        RUN_GUEST_SERIAL and RUN_GUEST_LINE (the line).
#                        The run fails if REGEX never matched or CMD failed.
#   --edid               leave EDID at QEMU's default (on) instead of edid=off
#   --device-opts OPTS   appended to every vhost-user-gpu-pci -device, e.g.
#                        event_idx=off,indirect_desc=off,queue_reset=off
#   --input-opts OPTS    the same for every vhost-user-input-pci -device
#   --append ARGS        extra kernel command line
#   --mem MB             guest RAM (shared memfd), default 512
#   --guest-dir DIR      where make-initrd.sh builds the guest, default
#                        $CW_OUTPUT_DIR/qemu-guest (CW_OUTPUT_DIR defaults
#                        to ${TMPDIR:-/tmp}/crossway-test-output)
#   --program PATH       extra static program for the guest's /bin (repeatable)
#   --strict             also fail when the guest reports failed steps
#   --allow-qemu-errors  do not fail on QEMU error messages (see below)
#   -v                   print a one-line summary on success
#
# Exit status: 0 when the guest printed "GTEST done" and powered off, QEMU
# printed no error (any "qemu-system-x86_64:" line but the harmless "EDID
# requested ..." one; a back end that dies or misbehaves shows up only there,
# since the guest's ioctls keep succeeding), and the --wait-line/--then and
# --strict conditions hold; 1 otherwise (the reason,
# the tail of serial.log and of qemu.log go to stderr), 2 bad usage, 77 a
# required program is not installed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
me="run-guest"

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "$me: $*" >&2
	exit 2
}
missing() {
	echo "$me: missing: $*" >&2
	exit 77
}
isnum() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }

NL='
'
sockets=""
input_sockets=""
qemu_args=""
out=""
plan="pattern:3"
palette="1"
tmo=150
wait_re=""
then_cmd=""
then_tmo=60
edid=0
devopts=""
inputopts=""
append=""
mem=512
guest_dir="${CW_OUTPUT_DIR:-${TMPDIR:-/tmp}/crossway-test-output}/qemu-guest"
strict=0
allow_qemu_errors=0
verbose=0
set -- "$@" --end-of-options
initrd_args=""
while :; do
	opt=$1
	shift
	case $opt in
	--end-of-options) break ;;
	--socket | --input-socket | --qemu-arg | --out | --test | --palette | --timeout | --wait-line | \
		--then | --then-timeout | --device-opts | --input-opts | --append | --mem | --guest-dir | \
		--program)
		[ "${1:---end-of-options}" != --end-of-options ] || die "$opt needs a value"
		val=$1
		shift
		case $opt in
		--socket)
			case $val in *"$NL"*) die "bad socket path" ;; esac
			sockets="$sockets$val$NL" ;;
		--input-socket)
			case $val in *"$NL"*) die "bad input socket path" ;; esac
			input_sockets="$input_sockets$val$NL" ;;
		--qemu-arg)
			case $val in *"$NL"*) die "bad --qemu-arg" ;; esac
			qemu_args="$qemu_args$val$NL" ;;
		--out) out=$val ;;
		--test) plan=$val ;;
		--palette) palette=$val ;;
		--timeout) tmo=$val ;;
		--wait-line) wait_re=$val ;;
		--then) then_cmd=$val ;;
		--then-timeout) then_tmo=$val ;;
		--device-opts) devopts=$val ;;
		--input-opts) inputopts=$val ;;
		--append) append=$val ;;
		--mem) mem=$val ;;
		--guest-dir) guest_dir=$val ;;
		--program)
			case $val in *"$NL"*) die "bad program path" ;; esac
			initrd_args="$initrd_args$val$NL" ;;
		esac
		;;
	--edid) edid=1 ;;
	--strict) strict=1 ;;
	--allow-qemu-errors) allow_qemu_errors=1 ;;
	-v) verbose=1 ;;
	-h | --help) usage ;;
	*) die "unknown option $opt (see --help)" ;;
	esac
done

[ -n "$sockets$input_sockets$qemu_args" ] || die "at least one --socket or --input-socket is required"
[ -n "$out" ] || die "--out is required"
isnum "$tmo" && [ "$tmo" -gt 0 ] || die "bad --timeout $tmo"
isnum "$then_tmo" && [ "$then_tmo" -gt 0 ] || die "bad --then-timeout $then_tmo"
isnum "$mem" && [ "$mem" -ge 128 ] || die "bad --mem $mem"
case $palette in *[!1-4,]* | ,* | *, | *,,*) die "bad --palette $palette (1-4, comma-separated)" ;; esac
case $plan in '' | *[!a-z0-9@:,]*) die "bad --test $plan" ;; esac
case $devopts in '' | ,*) ;; *) devopts=,$devopts ;; esac
case $inputopts in '' | ,*) ;; *) inputopts=,$inputopts ;; esac
if [ -n "$wait_re" ] || [ -n "$then_cmd" ]; then
	[ -n "$wait_re" ] && [ -n "$then_cmd" ] || die "--wait-line and --then go together"
fi

qemu="qemu-system-x86_64"
command -v "$qemu" >/dev/null 2>&1 || missing "$qemu (package qemu-system-x86)"
command -v gdb >/dev/null 2>&1 || missing "gdb (package gdb)"
command -v timeout >/dev/null 2>&1 || missing "timeout (package coreutils)"

# The back ends must already listen: QEMU does the vhost-user handshake while
# it starts and gives up if a socket is not there.
oldifs=$IFS
IFS=$NL
set -f
for s in $sockets $input_sockets; do
	[ -S "$s" ] || { echo "$me: FAIL: no back end listening on $s (start it first)" >&2; exit 1; }
done
set +f
IFS=$oldifs

# The guest: built from installed packages, cached by make-initrd.sh.
set --
IFS=$NL
set -f
for p in $initrd_args; do set -- "$@" --program "$p"; done
set +f
IFS=$oldifs
st=0
"$here/make-initrd.sh" "$guest_dir" "$@" || st=$?
[ "$st" -eq 0 ] || { [ "$st" -eq 77 ] && exit 77; echo "$me: FAIL: make-initrd.sh exited $st" >&2; exit 1; }
guest_dir=$(cd "$guest_dir" && pwd)

mkdir -p "$out"
out=$(cd "$out" && pwd)
for f in serial.log qemu.log gtest.log dmesg-drm.log gdb.cmd qemu-cmdline.txt then.log summary.txt; do
	rm -f "$out/$f"
done
# Sockets and pid files live in a private, short path (sun_path is 108 bytes).
run=$(mktemp -d "${TMPDIR:-/tmp}/cw-qemu.XXXXXX")

cleanup() {
	trap - EXIT INT TERM HUP PIPE
	if [ -s "$run/timeout.pid" ] && [ ! -e "$run/status" ]; then
		kill -TERM "$(cat "$run/timeout.pid")" 2>/dev/null || true
		i=0
		while [ ! -e "$run/status" ] && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
	fi
	# gdb may be gone while QEMU lives on (a tracee survives its tracer).
	if [ -s "$run/qemu.pid" ]; then
		qpid=$(cat "$run/qemu.pid")
		if tr '\0' ' ' 2>/dev/null <"/proc/$qpid/cmdline" | grep -qF -- "$run/qemu.pid"; then
			kill -KILL "$qpid" 2>/dev/null || true
		fi
	fi
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# qemu-harness.md §3.1: flip the KVM flags around every vhost-user device's
# init, so QEMU 7.2 accepts vhost-user-gpu and vhost-user-input under TCG.
# Both devices go through vhost_user_backend_dev_init (backends/vhost-user.c,
# which holds the "requires kvm" check) and then vhost_dev_init; the
# breakpoints stay armed, so each device's init is covered, in any number and
# order. The exit status of gdb
# is QEMU's; 125: QEMU was killed by a signal; 126: QEMU stopped on a fatal
# signal such as SIGSEGV (backtrace in qemu.log).
cat >"$out/gdb.cmd" <<'EOF'
set pagination off
set confirm off
set disable-randomization off
set print thread-events off
set print inferior-events off
handle SIGUSR1 SIGUSR2 SIGPIPE nostop noprint pass
break vhost_user_backend_dev_init
commands
silent
set var *(char*)&kvm_allowed=1
set var *(char*)&kvm_eventfds_allowed=1
continue
end
break vhost_dev_init
commands
silent
set var *(char*)&kvm_allowed=0
set var *(char*)&kvm_eventfds_allowed=0
continue
end
run
if !$_isvoid($_exitcode)
quit $_exitcode
end
if !$_isvoid($_exitsignal)
echo \nCWGDB: QEMU was killed by a signal\n
quit 125
end
echo \nCWGDB: QEMU stopped on a signal; backtrace:\n
bt 25
kill
quit 126
EOF

# QEMU's option parser takes ',,' for a literal ','.
esc() { printf '%s' "$1" | sed 's/,/,,/g'; }

kcmd="console=ttyS0 loglevel=4 panic=-1 cwtest=$plan cwpalette=$palette${append:+ $append}"
set -- -nodefaults -machine q35,accel=tcg -m "$mem" \
	-object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -machine memory-backend=mem
i=0
IFS=$NL
set -f
for s in $sockets; do
	IFS=$oldifs
	opts="vhost-user-gpu-pci,id=gpu$i,chardev=vgpu$i"
	[ "$edid" -eq 1 ] || opts="$opts,edid=off"
	set -- "$@" -chardev "socket,id=vgpu$i,path=$(esc "$s")" -device "$opts$devopts"
	i=$((i + 1))
done
i=0
IFS=$NL
for s in $input_sockets; do
	IFS=$oldifs
	set -- "$@" -chardev "socket,id=vinput$i,path=$(esc "$s")" \
		-device "vhost-user-input-pci,id=input$i,chardev=vinput$i$inputopts"
	i=$((i + 1))
done
IFS=$NL
for a in $qemu_args; do
	IFS=$oldifs
	set -- "$@" "$a"
done
set +f
IFS=$oldifs
set -- "$@" -kernel "$guest_dir/vmlinuz" -initrd "$guest_dir/initrd.gz" -append "$kcmd" \
	-display none -chardev "file,id=ser0,path=$(esc "$out/serial.log")" -serial chardev:ser0 \
	-qmp "unix:$(esc "$run/qmp.sock"),server=on,wait=off" -pidfile "$run/qemu.pid" -no-reboot

{
	printf '%s' "$qemu"
	for a in "$@"; do
		case $a in *[!A-Za-z0-9_./:=,@+-]*) printf " '%s'" "$a" ;; *) printf ' %s' "$a" ;; esac
	done
	echo
} >"$out/qemu-cmdline.txt"

now() { date +%s.%N; }
t0=$(now)
(
	timeout -k 5 "$tmo" gdb -q -batch -x "$out/gdb.cmd" --args "$qemu" "$@" \
		>"$out/qemu.log" 2>&1 </dev/null &
	echo $! >"$run/timeout.pid"
	st=0
	wait $! || st=$?
	echo "$st" >"$run/status"
) &

# Poll (bounded) until the run ends; fire --then once on --wait-line.
fired=0
then_status=""
then_after=""
n=0
max=$(((tmo + 30) * 5))
while [ ! -e "$run/status" ] && [ $n -lt $max ]; do
	if [ -n "$wait_re" ] && [ $fired -eq 0 ] && [ -s "$out/serial.log" ]; then
		line=$(tr -d '\r' <"$out/serial.log" | grep -E -m 1 -- "$wait_re" || true)
		if [ -n "$line" ]; then
			fired=1
			then_after=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
			then_status=0
			RUN_GUEST_OUT=$out RUN_GUEST_QMP=$run/qmp.sock RUN_GUEST_SERIAL=$out/serial.log \
				RUN_GUEST_LINE=$line timeout -k 2 "$then_tmo" sh -c "$then_cmd" \
				>"$out/then.log" 2>&1 </dev/null || then_status=$?
			continue
		fi
	fi
	sleep 0.2
	n=$((n + 1))
done
wait || true
status=$(cat "$run/status" 2>/dev/null || echo none)
elapsed=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')

# Verdict.
serial=$run/serial.txt
if [ -f "$out/serial.log" ]; then tr -d '\r' <"$out/serial.log" >"$serial"; else : >"$serial"; fi
awk '{ i = index($0, "GTEST "); if (i) print substr($0, i) }' "$serial" >"$out/gtest.log"
awk '{ i = index($0, "GDMESG "); if (i) print substr($0, i + 7) }' "$serial" >"$out/dmesg-drm.log"
failures=$(sed -n 's/^GTEST summary failures=\([0-9]*\).*/\1/p' "$out/gtest.log" | tail -n 1)
uptime=$(sed -n 's/^GTEST summary .*uptime=\([0-9.]*\).*/\1/p' "$out/gtest.log" | tail -n 1)

why=""
reason() { why="$why${why:+; }$*"; }
case $status in
0) ;;
124 | 137) reason "timed out after ${tmo}s" ;;
125) reason "QEMU was killed by a signal" ;;
126) reason "QEMU stopped on a signal (backtrace in qemu.log)" ;;
none) reason "the run did not end within its bound" ;;
*) reason "QEMU (under gdb) exited with status $status" ;;
esac
if [ ! -s "$serial" ]; then
	reason "serial.log is empty: the guest never ran (QEMU failed to start, or the vhost-user handshake with the back end did not complete)"
elif ! grep -q '^GTEST done' "$out/gtest.log"; then
	reason "the guest did not print 'GTEST done' (last: $(tail -n 1 "$out/gtest.log"))"
fi
grep -q 'reboot: Power down' "$serial" || reason "the guest did not power off"
! grep -q 'Kernel panic' "$serial" || reason "kernel panic"
qemu_errors=$(grep "^$qemu: " "$out/qemu.log" 2>/dev/null | grep -v "EDID requested but the backend doesn't support it" || true)
if [ -n "$qemu_errors" ] && [ "$allow_qemu_errors" -eq 0 ]; then
	reason "QEMU reported $(echo "$qemu_errors" | wc -l) error(s), first: '$(echo "$qemu_errors" | head -n 1)' (use --allow-qemu-errors to accept)"
fi
if [ -n "$wait_re" ]; then
	if [ $fired -eq 0 ]; then
		reason "no serial line matched --wait-line '$wait_re'"
	elif [ "$then_status" != 0 ]; then
		reason "--then command exited $then_status (output in then.log)"
	fi
fi
if [ "$strict" -eq 1 ] && [ "${failures:-0}" != 0 ]; then
	reason "the guest reported $failures failed step(s): $(grep '^GTEST step-fail' "$out/gtest.log" | tr '\n' ' ')"
fi

{
	echo "result=$([ -z "$why" ] && echo pass || echo fail)"
	echo "elapsed=$elapsed"
	echo "guest_uptime=${uptime:-}"
	echo "guest_failures=${failures:-}"
	echo "qemu_status=$status"
	[ -z "$then_after" ] || echo "then_after=$then_after then_status=$then_status"
	[ -z "$why" ] || echo "why=$why"
} >"$out/summary.txt"

if [ -n "$why" ]; then
	{
		echo "$me: FAIL: $why"
		echo "--- serial.log (last 25 lines, without the GDMESG dump) ---"
		grep -v '^GDMESG ' "$serial" | tail -n 25
		echo "--- qemu.log: QEMU's stderr and gdb (last 15 lines) ---"
		tail -n 15 "$out/qemu.log" 2>/dev/null || true
		if [ -s "$out/then.log" ]; then
			echo "--- then.log (last 10 lines) ---"
			tail -n 10 "$out/then.log"
		fi
		echo "$me: logs in $out"
	} >&2
	exit 1
fi
if [ "${failures:-0}" != 0 ]; then
	echo "$me: note: the guest reported $failures failed step(s), see $out/gtest.log" >&2
fi
[ "$verbose" -eq 0 ] || echo "$me: pass in ${elapsed}s (guest uptime ${uptime}s), logs in $out"
exit 0
