#!/bin/sh
# Self-test for cw-imgcmp: builds small PNGs with --make-solid and checks the
# exit status and output of every mode.
# usage: imgcmp-selftest.sh PATH/TO/cw-imgcmp
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH/TO/cw-imgcmp" >&2
	exit 2
fi
IMGCMP=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CHECKS=0

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect STATUS OUTPUT ARGS...: run cw-imgcmp with ARGS and check its exit
# status and stdout. OUTPUT '*' means "any output".
expect() {
	want_status=$1
	want_out=$2
	shift 2
	# set -e must not abort on the statuses we expect to be non-zero.
	status=0
	out=$("$IMGCMP" "$@" 2>"$TMP/stderr") || status=$?
	if [ "$status" -ne "$want_status" ]; then
		fail "cw-imgcmp $* exited $status, expected $want_status" \
			"(stdout: '$out', stderr: '$(cat "$TMP/stderr")')"
	fi
	if [ "$want_out" != '*' ] && [ "$out" != "$want_out" ]; then
		fail "cw-imgcmp $* printed '$out', expected '$want_out'"
	fi
	CHECKS=$((CHECKS + 1))
}

A=$TMP/a.png
B=$TMP/b.png
FAR=$TMP/far.png
NEAR=$TMP/near.png
SMALL=$TMP/small.png
DIFF=$TMP/diff.png

expect 0 '' --make-solid 16x8 3366cc "$A"
expect 0 '' --make-solid 16x8 3366CC "$B"
expect 0 '' --make-solid 16x8 3366cc --pixel 5,3,3366ff "$FAR"
expect 0 '' --make-solid 16x8 3366cc --pixel 5,3,3366ce "$NEAR"
expect 0 '' --make-solid 8x8 3366cc "$SMALL"

# Identical images match.
expect 0 match "$A" "$B"

# One pixel beyond tolerance: mismatch, reported precisely, with a diff.
expect 1 'mismatch: 1 pixels differ, max channel delta 51, first at (5,3)' \
	--diff "$DIFF" "$FAR" "$A"
[ -s "$DIFF" ] || fail "no diff image written to $DIFF"
expect 0 ff0000 --probe 5,3 "$DIFF"
# Matching pixels are the reference darkened: luma(3366cc)=98, /4 = 0x18.
expect 0 181818 --probe 0,0 "$DIFF"
expect 0 1 --count ff0000 --tolerance 0 "$DIFF"

# A change within the tolerance matches; a tighter tolerance catches it.
expect 0 match "$NEAR" "$A"
expect 1 '*' --tolerance 1 "$NEAR" "$A"
expect 0 match --tolerance 51 "$FAR" "$A"

# --region limits the comparison.
expect 0 match --region 0,0,4,8 "$FAR" "$A"
expect 1 '*' --region 4,2,4,4 "$FAR" "$A"

# Different sizes are a mismatch, not an error.
expect 1 '*' "$SMALL" "$A"

# Probing and colour counting.
expect 0 3366cc --probe 0,0 "$A"
expect 0 3366ff --probe 5,3 "$FAR"
expect 0 128 --count 3366cc "$A"
expect 0 127 --count 3366cc "$FAR"
expect 0 1 --count 3366ff "$FAR"
expect 0 128 --count 3366ff --tolerance 51 "$FAR"
expect 0 15 --count 3366cc --region 4,2,4,4 "$FAR"
expect 0 '5 3 1 1' --bbox 3366ff "$FAR"
expect 0 '0 0 16 8' --bbox 3366cc "$FAR"
expect 0 none --bbox 000000 "$A"

# Errors exit 2.
expect 2 '*' "$A" "$TMP/missing.png"
expect 2 '*' --probe 16,0 "$A"
expect 2 '*' --region 10,0,8,8 "$A" "$B"
expect 2 '*' --tolerance 300 "$A" "$B"
expect 2 '*' "$A"
expect 2 '*' --diff "$DIFF" --probe 0,0 "$A"
echo "not a png" >"$TMP/junk.png"
expect 2 '*' --probe 0,0 "$TMP/junk.png"

echo "imgcmp-selftest: $CHECKS checks passed"
