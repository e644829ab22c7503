# Helpers for integration tests of guest windows (POSIX sh, sourced after
# lib.sh): crossway-guest, the guest proxy, run on this machine over our
# vhost-user front end, one per VM, and clients connected to it as they
# would be inside the guest.
#
# Environment (set by meson): CW_GUEST, besides lib.sh's.

# The shade crossway uses for an unfocused VM window (vm.c: 0.55 of each channel).
darker() {
	r=$(printf '%d' "0x$(echo "$1" | cut -c1-2)")
	g=$(printf '%d' "0x$(echo "$1" | cut -c3-4)")
	b=$(printf '%d' "0x$(echo "$1" | cut -c5-6)")
	printf '%02x%02x%02x' $((r * 55 / 100)) $((g * 55 / 100)) $((b * 55 / 100))
}

# near IMAGE X Y RRGGBB: 1 if the pixel is that colour (+-3), else 0
near() {
	"$CW_IMGCMP" --count "$4" --tolerance 3 --region "$2,$3,1,1" "$1"
}

# start_guest VM: crossway-guest for VM on its device socket, serving the
# Wayland socket guest-VM in XDG_RUNTIME_DIR.
start_guest() {
	"$CW_GUEST" --transport "vhost-user:$XDG_RUNTIME_DIR/$1.sock" --socket "guest-$1" \
		>"$CW_ARTIFACTS/guest-$1.log" 2>&1 3>&- 4>&- &
	eval "GUEST_PID_$1=\$!"
	deadline=$(( $(date +%s) + CW_WAIT_SECONDS ))
	until [ -S "$XDG_RUNTIME_DIR/guest-$1" ]; do
		if ! eval "kill -0 \$GUEST_PID_$1" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
			cat "$CW_ARTIFACTS/guest-$1.log" >&2
			fail "crossway-guest for $1 did not come up"
		fi
		sleep 0.05
	done
}

# stop_guest VM: SIGTERM; the proxy must exit cleanly, with a clean log.
stop_guest() {
	eval "pid=\$GUEST_PID_$1"
	kill "$pid" 2>/dev/null || fail "crossway-guest for $1 died: $(tail -n 5 "$CW_ARTIFACTS/guest-$1.log")"
	status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ] || [ "$status" -eq 143 ] ||
		fail "crossway-guest for $1 exited with $status: $(tail -n 5 "$CW_ARTIFACTS/guest-$1.log")"
	check_log_clean "$CW_ARTIFACTS/guest-$1.log"
}

# in_guest VM COMMAND...: a client of VM's proxy.
in_guest() {
	vm=$1
	shift
	WAYLAND_DISPLAY="guest-$vm" "$@"
}

# guest_client VM NAME [cw-test-client options]: like start_client, in VM.
guest_client() {
	vm=$1 name=$2
	shift 2
	WAYLAND_DISPLAY="guest-$vm" "$CW_TEST_CLIENT" "$@" >"$CW_ARTIFACTS/$name.out" \
		2>"$CW_ARTIFACTS/$name.err" 3>&- 4>&- &
	eval "CLIENT_PID_$name=\$!"
	wait_for_line "$CW_ARTIFACTS/$name.out" '^mapped$'
}

# run_crossway_with_guests VM=COLOR...: the outer half of a guest test:
# crossway with each VM's device socket VM.sock in the runtime dir, framed
# in COLOR (RRGGBB), at CW_EXTENT.
run_crossway_with_guests() {
	[ -x "${CW_GUEST:-}" ] || fail "CW_GUEST must name the crossway-guest binary (meson sets it)"
	setup_runtime_dir
	export CW_EXTENT
	for vm_color in "$@"; do
		shift
		set -- "$@" --vm "${vm_color%%=*}=$XDG_RUNTIME_DIR/${vm_color%%=*}.sock,color=#${vm_color#*=}"
	done
	run_crossway_with_self --size "$CW_EXTENT" "$@"
}
