#!/bin/sh
# Installs everything crossway needs to build, run its demo and run its
# tests, from Debian 12's own packages. Safe to run again.
set -eu

PACKAGES="
	meson ninja-build pkg-config gcc libc6-dev
	libwlroots-dev libwayland-dev wayland-protocols libpixman-1-dev
	libinput-dev libxkbcommon-dev libegl-dev libdrm-dev libpng-dev
	libcairo2-dev libpango1.0-dev fonts-dejavu-core libegl-mesa0 libgl1-mesa-dri edid-decode
	xcursor-themes
	weston grim wayland-utils wl-clipboard wlr-randr xvfb
	qemu-system-x86 linux-image-amd64 busybox-static cpio gdb libdrm-dev python3
"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
else
	SUDO="sudo"
fi

missing=""
for package in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $package"
done
if [ -z "$missing" ]; then
	exit 0
fi
echo "Installing:$missing"
$SUDO apt-get update -q
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
