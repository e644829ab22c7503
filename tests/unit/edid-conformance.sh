#!/bin/sh
# crossway's EDIDs, for several window sizes, pass edid-decode's conformity check.
set -eu
tool=$1
command -v edid-decode >/dev/null 2>&1 || { echo "SKIP: edid-decode is not installed (package edid-decode)"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for size in 640x480 1024x768 1280x800 1920x1080 3840x2160 333x777; do
	w=${size%x*} h=${size#*x}
	"$tool" "$dir/edid.bin" "$w" "$h"
	if ! edid-decode --check "$dir/edid.bin" >"$dir/out.txt" 2>&1; then
		cat "$dir/out.txt"
		echo "FAIL: EDID for $size does not conform"
		exit 1
	fi
	grep -q "DTD 1: *${w}x${h} " "$dir/out.txt" || { cat "$dir/out.txt"; echo "FAIL: $size not the preferred mode"; exit 1; }
done
echo "PASS: 6 EDIDs conform"
