#!/bin/sh
# crossway's vhost-user virtio-gpu device driven by our own front end
# (tests/vmm, cw-vmm), which behaves as QEMU 7.2 plus the guest driver:
# scanouts as framed windows, fences, cursor, several VMs, per-VM limits,
# hostile input (broken rings, descriptor loops, garbage messages), a front
# end killed mid-frame, and reconnection. crossway must survive all of it.
. "$(dirname "$0")/../lib.sh"

CW_VMM=${CW_VMM:?}
ALPHA_COLOR=b5420b

vmm() {
	sock=$1
	shift
	"$CW_VMM" --socket "$XDG_RUNTIME_DIR/$sock.sock" --timeout 20000 "$@"
}

# vmm_ok NAME SOCK STEPS...: one front-end session that must succeed.
vmm_ok() {
	name=$1
	shift
	vmm "$@" >"$CW_ARTIFACTS/$name.out" 2>&1 || {
		cat "$CW_ARTIFACTS/$name.out" >&2
		fail "cw-vmm session '$name' failed"
	}
}

crossway_alive() {
	kill -0 "$PPID" 2>/dev/null || fail "crossway died"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program grim grim
	log="$CW_ARTIFACTS/crossway.log"

	# A guest display: the quadrants in a window framed in the VM's colour.
	fifo="$CW_ARTIFACTS/vmm.fifo"
	mkfifo "$fifo"
	vmm alpha connect driver-ok display-info edid scanout 640 480 --pattern quadrants \
		flush 0 0 32 24 --fence 9 wait-fence 9 cursor 10 10 --pattern solid:ff00ff wait-line \
		<"$fifo" >"$CW_ARTIFACTS/alpha.out" 2>&1 &
	vmm_pid=$!
	exec 4>"$fifo"
	wait_mapped alpha vm-display
	[ "$WIN_W $WIN_H" = "640 480" ] || fail "the window is ${WIN_W}x$WIN_H, not the guest's 640x480"
	wait_for_line "$CW_ARTIFACTS/alpha.out" '^fence 9 done'
	shot=$(screenshot alpha)
	expect_pixel "$shot" $((WIN_X + 160)) $((WIN_Y + 120)) ff0000
	expect_pixel "$shot" $((WIN_X + 480)) $((WIN_Y + 120)) 00ff00
	expect_pixel "$shot" $((WIN_X + 160)) $((WIN_Y + 360)) 0000ff
	expect_pixel "$shot" $((WIN_X + 480)) $((WIN_Y + 360)) ffffff
	expect_pixel_near "$shot" $((WIN_X + 400)) $((WIN_Y - 5)) "$ALPHA_COLOR" 2
	grep -q '^display-info 0: 1024x768 enabled' "$CW_ARTIFACTS/alpha.out" ||
		fail "display info: $(grep display-info "$CW_ARTIFACTS/alpha.out")"
	# Over the VM's window the host cursor is the guest's (a magenta square here).
	wait_for_line "$CW_ARTIFACTS/alpha.out" '^cursor '
	start_input
	input "move $((WIN_X + 100)) $((WIN_Y + 100))"
	shot=$(screenshot guest-cursor)
	expect_pixel "$shot" $((WIN_X + 120)) $((WIN_Y + 120)) ff00ff
	expect_pixel "$shot" $((WIN_X + 160)) $((WIN_Y + 160)) ff00ff
	input "move 20 780"
	shot=$(screenshot host-cursor)
	expect_pixel "$shot" $((WIN_X + 120)) $((WIN_Y + 120)) ff0000
	[ "$(count_color "$shot" ff00ff 0,700,200,100)" -eq 0 ] || fail "the guest cursor left its window"
	stop_input
	echo >&4
	exec 4>&-
	wait "$vmm_pid" || { cat "$CW_ARTIFACTS/alpha.out" >&2; fail "the first session failed"; }
	# The front end is gone: so is its window.
	wait_for_line "$log" "Unmapped vm-display 'alpha'"

	# A blob in guest memory (generic front end): shown with no copy at all.
	mkfifo "$CW_ARTIFACTS/blob.fifo"
	vmm alpha --profile generic --num-scanouts 1 --regions 4 connect driver-ok \
		blob-scanout 640 480 --pattern quadrants --entries 7 flush uuid wait-line \
		<"$CW_ARTIFACTS/blob.fifo" >"$CW_ARTIFACTS/blob.out" 2>&1 &
	vmm_pid=$!
	exec 4>"$CW_ARTIFACTS/blob.fifo"
	wait_for_line "$CW_ARTIFACTS/blob.out" '^uuid '
	wait_mapped alpha vm-display
	shot=$(screenshot blob)
	expect_pixel "$shot" $((WIN_X + 160)) $((WIN_Y + 120)) ff0000
	expect_pixel "$shot" $((WIN_X + 480)) $((WIN_Y + 360)) ffffff
	echo >&4
	exec 4>&-
	wait "$vmm_pid" || { cat "$CW_ARTIFACTS/blob.out" >&2; fail "the blob session failed"; }
	wait_for_line "$log" 'session stats: .*flushes=[1-9]'
	grep 'session stats' "$log" | tail -n 1 | grep -q 'bytes_copied=0$' ||
		fail "a blob scanout was copied: $(grep 'session stats' "$log" | tail -n 1)"

	# Resizing a VM's window offers the guest the new size; with config-events
	# on (front ends that forward it, not QEMU 7.2) it is also told at once.
	mkfifo "$CW_ARTIFACTS/gamma.fifo"
	vmm gamma --profile generic --num-scanouts 1 connect driver-ok scanout 320 200 wait-line \
		display-info edid <"$CW_ARTIFACTS/gamma.fifo" >"$CW_ARTIFACTS/gamma.out" 2>&1 &
	vmm_pid=$!
	exec 4>"$CW_ARTIFACTS/gamma.fifo"
	wait_mapped gamma vm-display
	start_input
	input "move $((WIN_X + WIN_W)) $((WIN_Y + WIN_H))" "down left" \
		"move $((WIN_X + WIN_W + 40)) $((WIN_Y + WIN_H + 30))" "up left"
	stop_input
	wait_for_line "$CW_ARTIFACTS/gamma.out" 'back-end channel request 2 '
	echo >&4
	exec 4>&-
	wait "$vmm_pid" || { cat "$CW_ARTIFACTS/gamma.out" >&2; fail "the resize session failed"; }
	grep -q '^display-info 0: 360x230 enabled' "$CW_ARTIFACTS/gamma.out" ||
		fail "after the resize: $(grep display-info "$CW_ARTIFACTS/gamma.out")"

	# Reset, rebind and a fresh device on reconnection, ten times in a row
	# (also catches interrupts sent to replaced call fds).
	for i in 1 2 3 4 5 6 7 8 9 10; do
		vmm_ok "cycle-$i" alpha connect driver-ok display-info scanout 64 48 reset rebind \
			scanout 64 48 stats
		# No interrupt went to a stale (replaced) call fd, none was missing.
		grep -q ' stale 0/0 ' "$CW_ARTIFACTS/cycle-$i.out" ||
			fail "cycle $i: $(grep '^stats' "$CW_ARTIFACTS/cycle-$i.out")"
	done

	# Hostile input: every fault leaves crossway serving the next front end.
	for fault in ring-outside desc-loop indirect-loop desc-outside next-range len-huge \
			indirect-badlen oversized; do
		vmm alpha connect driver-ok fault $fault >"$CW_ARTIFACTS/fault-$fault.out" 2>&1 ||
			vmm alpha connect driver-ok fault $fault --expect closed \
				>"$CW_ARTIFACTS/fault-$fault.out" 2>&1 ||
			fail "fault $fault: $(tail -n 3 "$CW_ARTIFACTS/fault-$fault.out")"
		crossway_alive
		vmm_ok "after-$fault" alpha connect driver-ok display-info
	done
	# Garbage on the vhost-user socket: an unknown request that wants a reply.
	vmm alpha connect raw 9999 0x9 --expect closed >"$CW_ARTIFACTS/garbage.out" 2>&1 ||
		fail "garbage request: $(tail -n 3 "$CW_ARTIFACTS/garbage.out")"
	grep -q '\[vm alpha\]\|VM alpha' "$log" || fail "no log line names the VM"
	vmm_ok after-garbage alpha connect driver-ok display-info

	# Killed in the middle of a fenced frame: the window goes, the next VM works.
	vmm_ok killed alpha connect driver-ok scanout 320 200 flush --fence 5 kill
	vmm_ok reborn alpha connect driver-ok scanout 320 200 flush

	# Per-VM limits: beta may hold two resources, the third is refused.
	vmm_ok limits beta connect driver-ok create 64 64 create 64 64 \
		create 64 64 --expect 0x1201
	grep -q "\[vm beta\] RESOURCE_CREATE_2D: over the VM's limits" "$log" ||
		fail "the limit was not logged for beta"
	# delta may hold 1 MiB of host copies: full, a blob on top cannot open the limit again.
	vmm_ok budget delta --profile generic --num-scanouts 1 connect driver-ok create 512 512 \
		blob-scanout 64 64 create 1 1 --expect 0x1201 create 16 16 --expect 0x1201
	crossway_alive
	exit 0
fi

setup_runtime_dir
export CW_EXTENT=1280x800
run_crossway_with_self --size 1280x800 \
	--vm "alpha=$XDG_RUNTIME_DIR/alpha.sock,color=#$ALPHA_COLOR" \
	--vm "beta=$XDG_RUNTIME_DIR/beta.sock,max-resources=2" \
	--vm "gamma=$XDG_RUNTIME_DIR/gamma.sock,config-events=on" \
	--vm "delta=$XDG_RUNTIME_DIR/delta.sock,max-memory=1"
