#!/bin/sh
# The globals a wlroots desktop compositor is expected to offer, with at
# least these versions, as wayland-info (a real client) sees them.
. "$(dirname "$0")/../lib.sh"

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program wayland-info wayland-utils
	out="$CW_ARTIFACTS/wayland-info.txt"
	wayland-info >"$out" 2>&1 || fail "wayland-info failed"
	missing=0
	while read -r name version; do
		line=$(grep -E "interface: '$name'," "$out" | head -n 1)
		if [ -z "$line" ]; then
			echo "missing global: $name" >&2
			missing=1
			continue
		fi
		got=$(echo "$line" | sed -E 's/.*version: *([0-9]+).*/\1/')
		if [ "$got" -lt "$version" ]; then
			echo "global $name has version $got, expected >= $version" >&2
			missing=1
		fi
	done <<-LIST
	wl_compositor 4
	wl_subcompositor 1
	wl_shm 1
	wl_seat 7
	wl_output 3
	wl_data_device_manager 3
	xdg_wm_base 2
	zxdg_output_manager_v1 3
	zxdg_decoration_manager_v1 1
	org_kde_kwin_server_decoration_manager 1
	wp_viewporter 1
	wp_presentation 1
	zwlr_screencopy_manager_v1 3
	zwlr_export_dmabuf_manager_v1 1
	zwlr_data_control_manager_v1 2
	zwp_primary_selection_device_manager_v1 1
	xdg_activation_v1 1
	zwlr_output_manager_v1 2
	zwp_idle_inhibit_manager_v1 1
	org_kde_kwin_idle 1
	zwp_relative_pointer_manager_v1 1
	zwp_pointer_constraints_v1 1
	zwp_virtual_keyboard_manager_v1 1
	zwlr_virtual_pointer_manager_v1 2
	LIST
	[ "$missing" -eq 0 ] || fail "globals missing or too old (full list: $out)"
	# Two outputs were asked for: both must be announced with their sizes.
	grep -q "width: 1024 px, height: 768 px" "$out" && grep -q "width: 320 px, height: 240 px" "$out" ||
		fail "the outputs are not announced with their modes"
	exit 0
fi

run_crossway_with_self --size 1024x768,320x240
