#!/bin/sh
# Static crossway-guest for a test initrd (DRM transport only; libc and the
# Linux uapi headers, no libwayland):
#   sh vm/guest/build-static.sh [OUTPUT]   (default ./crossway-guest)
# The same as:
#   gcc -static -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Ivm -Ivm/guest \
#       vm/guest/{main,server,client,wire,shm,xdom,util,transport,transport_drm}.c \
#       -o crossway-guest
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
out=${1:-crossway-guest}
${CC:-gcc} -static -std=c11 -O2 -Wall -Wextra -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L \
	-I"$dir/.." -I"$dir" \
	"$dir/main.c" "$dir/server.c" "$dir/client.c" "$dir/wire.c" "$dir/shm.c" \
	"$dir/xdom.c" "$dir/util.c" "$dir/transport.c" "$dir/transport_drm.c" \
	-o "$out"
