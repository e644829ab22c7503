#!/bin/sh
# Clipboard and primary selection between clients, with wl-clipboard's
# wl-copy and wl-paste (through wlr-data-control), including binary data.
. "$(dirname "$0")/../lib.sh"

if [ "${CW_INSIDE:-}" = 1 ]; then
	require_program wl-copy wl-clipboard
	printf 'hello from crossway' | wl-copy
	[ "$(wl-paste -n)" = "hello from crossway" ] || fail "clipboard: got '$(wl-paste -n)'"
	printf 'primary text' | wl-copy --primary
	[ "$(wl-paste --primary -n)" = "primary text" ] || fail "primary selection lost"
	[ "$(wl-paste -n)" = "hello from crossway" ] || fail "primary selection overwrote the clipboard"
	# 1 MiB of binary data survives the round trip byte for byte.
	head -c 1048576 /dev/urandom >"$CW_ARTIFACTS/blob"
	wl-copy --type application/octet-stream <"$CW_ARTIFACTS/blob"
	wl-paste --type application/octet-stream >"$CW_ARTIFACTS/blob.out"
	cmp -s "$CW_ARTIFACTS/blob" "$CW_ARTIFACTS/blob.out" || fail "binary clipboard data changed"
	wl-copy --clear
	if wl-paste -n >/dev/null 2>&1; then
		fail "the clipboard still had data after --clear"
	fi
	exit 0
fi

run_crossway_with_self --size 320x240
