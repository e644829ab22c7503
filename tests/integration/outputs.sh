#!/bin/sh
# Several headless outputs, laid out in order, reconfigured by wlr-randr
# through wlr-output-management; xdg-output reports the result.
. "$(dirname "$0")/../lib.sh"

# field OUTPUT KEY: the value of "KEY: value" in wlr-randr's block for OUTPUT
field() {
	awk -v out="$1" -v key="$2" '
		/^[^ ]/ { cur = $1 }
		cur == out && $1 == key":" { sub(/^ *[^:]*: */, ""); print; exit }
	' "$CW_ARTIFACTS/randr.txt"
}

randr() {
	wlr-randr >"$CW_ARTIFACTS/randr.txt" || fail "wlr-randr failed"
}

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program wlr-randr wlr-randr
	require_program wayland-info wayland-utils
	randr
	[ "$(field HEADLESS-1 Position)" = "0,0" ] || fail "HEADLESS-1 at $(field HEADLESS-1 Position)"
	[ "$(field HEADLESS-2 Position)" = "640,0" ] || fail "HEADLESS-2 at $(field HEADLESS-2 Position)"

	wlr-randr --output HEADLESS-2 --pos 1000,50 --scale 2 --transform 90 ||
		fail "the new configuration was refused"
	randr
	[ "$(field HEADLESS-2 Position)" = "1000,50" ] || fail "HEADLESS-2 moved to $(field HEADLESS-2 Position)"
	[ "$(field HEADLESS-2 Transform)" = "90" ] || fail "HEADLESS-2 transform $(field HEADLESS-2 Transform)"
	case "$(field HEADLESS-2 Scale)" in 2.0*) ;; *) fail "HEADLESS-2 scale $(field HEADLESS-2 Scale)" ;; esac
	# xdg-output: a 320x240 output turned by 90 degrees at scale 2 is 120x160.
	wayland-info >"$CW_ARTIFACTS/wayland-info.txt" 2>&1 || fail "wayland-info failed"
	grep -q "logical_x: 1000, logical_y: 50" "$CW_ARTIFACTS/wayland-info.txt" ||
		fail "xdg-output does not report the new position"
	grep -q "logical_width: 120, logical_height: 160" "$CW_ARTIFACTS/wayland-info.txt" ||
		fail "xdg-output does not report the new logical size"

	# wlroots 0.15's headless backend cannot disable an output: the request
	# must fail as a whole and leave everything as it was.
	if wlr-randr --output HEADLESS-1 --off 2>"$CW_ARTIFACTS/off.err"; then
		fail "disabling a headless output claimed success"
	fi
	randr
	[ "$(field HEADLESS-1 Enabled)" = "yes" ] || fail "HEADLESS-1 was half-disabled"
	[ "$(field HEADLESS-2 Position)" = "1000,50" ] || fail "a failed configuration moved HEADLESS-2"
	exit 0
fi

run_crossway_with_self --size 640x480,320x240
