#!/bin/sh
# make-initrd.sh OUT_DIR [--program PATH]...
#
# Builds the guest for the QEMU harness from installed Debian packages only:
#   OUT_DIR/initrd.gz    busybox-static, the ten virtio/DRM modules of the
#                        6.1 kernel (qemu-harness.md §5) plus evdev and
#                        virtio_input, kms-pattern, evdev-read and /init
#                        (below); extra --program files go to /bin (they
#                        must be static: the guest has no libc)
#   OUT_DIR/vmlinuz      copy of /boot/vmlinuz-<version>
#   OUT_DIR/kms-pattern  the static guest KMS program (guest/kms-pattern.c)
#   OUT_DIR/evdev-read   the static guest input program (guest/evdev-read.c)
#   OUT_DIR/stamp        fingerprint of all inputs; when it is unchanged a
#                        second run does nothing
# KVER=<version> picks a kernel; default: the newest installed 6.1 kernel.
# Exit status: 0 ok, 2 usage, 77 something required is not installed.
#
# Guest plan, from the kernel command line (run-guest.sh sets it):
#   cwtest=STEP[,STEP...]   default pattern:3
#     pattern[@N][:S]  kms-pattern on every card (or cardN), all at once,
#                      holding the picture S seconds (default 3)
#     console[:S]      write text to /dev/tty0 for S seconds (fbcon draws)
#     rebind[@N]       unbind + bind the virtio-pci device of every GPU (or
#                      of cardN), wait for its card to come back
#     features         print the feature lines again
#     input[:S]        evdev-read: describe every /dev/input/event* device,
#                      print "GTEST input ready", then every event for S
#                      seconds (default 20) or until Escape is pressed three
#                      times in a row (the sentinel)
#     inputled[:S]     the same, first turning CapsLock's LED on through
#                      every device that has it (virtio-input: status queue)
#     guestproxy[:S]   XDG_RUNTIME_DIR=/tmp/xdg crossway-guest --transport drm
#                      --socket wayland-0 (added with --program), bounded by
#                      S seconds (default 10): its output lines prefixed
#                      "GTEST guestproxy: ", then "GTEST guestproxy exit=N"
#     sleep[:S]        sleep S seconds
#     dmesg            the whole kernel log, lines prefixed "GDMESG "
#   cwpalette=P[,P...]      kms-pattern palette per card (last one repeats)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$here/guest/kms-pattern.c
src_input=$here/guest/evdev-read.c

usage() {
	echo "usage: $0 OUT_DIR [--program PATH]..." >&2
	exit 2
}
missing() {
	echo "make-initrd.sh: missing: $*" >&2
	exit 77
}

[ $# -ge 1 ] || usage
case $1 in -*) usage ;; esac
out=$1
shift
programs=""
while [ $# -gt 0 ]; do
	case $1 in
	--program)
		[ $# -ge 2 ] || usage
		[ -f "$2" ] || { echo "make-initrd.sh: no such program: $2" >&2; exit 2; }
		case $2 in *"
"*) usage ;; esac
		programs="$programs$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
"
		shift 2
		;;
	*) usage ;;
	esac
done

# Inputs.
if [ -z "${KVER:-}" ]; then
	KVER=$(cd /lib/modules 2>/dev/null && ls -d 6.1.* 2>/dev/null | sort -V | tail -n 1) || true
fi
[ -n "${KVER:-}" ] && [ -d "/lib/modules/$KVER" ] ||
	missing "a 6.1 kernel's modules in /lib/modules (package linux-image-amd64)"
kernel=/boot/vmlinuz-$KVER
[ -r "$kernel" ] || missing "$kernel (package linux-image-amd64)"
[ -x /bin/busybox ] || missing "/bin/busybox (package busybox-static)"
command -v cpio >/dev/null 2>&1 || missing "cpio (package cpio)"
command -v gzip >/dev/null 2>&1 || missing "gzip (package gzip)"
command -v gcc >/dev/null 2>&1 || missing "gcc (package gcc)"
[ -f /usr/include/libdrm/drm_mode.h ] || missing "/usr/include/libdrm/drm_mode.h (package libdrm-dev)"
[ -f /usr/include/libdrm/virtgpu_drm.h ] || missing "/usr/include/libdrm/virtgpu_drm.h (package libdrm-dev)"
[ -f /usr/include/linux/input.h ] || missing "/usr/include/linux/input.h (package linux-libc-dev)"

# Load order of qemu-harness.md §5, then input: evdev (no dependencies)
# before virtio_input (depends on virtio, virtio_ring), so each virtio input
# device gets its /dev/input/eventN as soon as it registers.
MODULES="drivers/virtio/virtio_ring
drivers/virtio/virtio
drivers/virtio/virtio_pci_legacy_dev
drivers/virtio/virtio_pci_modern_dev
drivers/virtio/virtio_pci
drivers/gpu/drm/drm
drivers/gpu/drm/drm_kms_helper
drivers/gpu/drm/drm_shmem_helper
drivers/virtio/virtio_dma_buf
drivers/gpu/drm/virtio/virtio-gpu
drivers/input/evdev
drivers/virtio/virtio_input"
moddir=/lib/modules/$KVER/kernel
for m in $MODULES; do
	[ -f "$moddir/$m.ko" ] || missing "$moddir/$m.ko (uncompressed module of linux-image-$KVER)"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)

# Serialise concurrent builds into the same directory.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$out/.lock"
	flock -w 120 9 || { echo "make-initrd.sh: $out is locked" >&2; exit 1; }
fi

# Fingerprint: this script (it holds /init), the program source, and the
# size and mtime of every binary input.
fingerprint() {
	{
		echo "crossway-qemu-initrd 2 $KVER"
		cat "$0" "$src" "$src_input"
		stat -c '%n %s %Y' /bin/busybox "$kernel"
		for m in $MODULES; do stat -c '%n %s %Y' "$moddir/$m.ko"; done
		printf '%s' "$programs" | while IFS= read -r p; do stat -c '%n %s %Y' "$p"; done
		gcc -dumpfullversion 2>/dev/null || true
	} | cksum
}
stamp=$(fingerprint)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
	[ -s "$out/initrd.gz" ] && [ -s "$out/vmlinuz" ] && [ -x "$out/kms-pattern" ] &&
	[ -x "$out/evdev-read" ]; then
	exit 0
fi

staging=$(mktemp -d "$out/.staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT
trap 'exit 1' INT TERM HUP
root=$staging/root
mkdir -p "$root/bin" "$root/mods" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc"

cp /bin/busybox "$root/bin/busybox"
gcc -static -O2 -Wall -I/usr/include/libdrm -o "$staging/kms-pattern" "$src"
cp "$staging/kms-pattern" "$root/bin/kms-pattern"
gcc -static -O2 -Wall -o "$staging/evdev-read" "$src_input"
cp "$staging/evdev-read" "$root/bin/evdev-read"
: >"$root/mods/order"
for m in $MODULES; do
	cp "$moddir/$m.ko" "$root/mods/"
	basename "$m" >>"$root/mods/order"
done
printf '%s' "$programs" | while IFS= read -r p; do
	cp "$p" "$root/bin/$(basename "$p")"
	chmod 755 "$root/bin/$(basename "$p")"
done

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
# Guest /init of crossway's QEMU harness (generated by tests/qemu/make-initrd.sh).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
exec </dev/console >/dev/console 2>&1

say() { echo "GTEST $*"; }
failures=0
failed() {
	failures=$((failures + 1))
	say "step-fail $*"
}
isnum() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }

plan=pattern:3
palettes=1
for a in $(cat /proc/cmdline); do
	case $a in
	cwtest=*) plan=${a#cwtest=} ;;
	cwpalette=*) palettes=${a#cwpalette=} ;;
	esac
done
say "init kernel=$(uname -r) plan=$plan palette=$palettes"

for m in $(cat /mods/order); do
	insmod "/mods/$m.ko" || failed "insmod $m"
done

# PCI addresses of the virtio GPUs (virtio device id 0x0010).
gpu_pcis() {
	for d in /sys/bus/virtio/devices/virtio*; do
		[ -e "$d/device" ] || continue
		[ "$(cat "$d/device")" = 0x0010 ] || continue
		basename "$(dirname "$(readlink -f "$d")")"
	done
}
# The DRM card (cardN) of a PCI address, empty while there is none.
# (virtio-gpu registers its DRM device on the PCI device, not on virtioN.)
card_of_pci() {
	for c in /sys/bus/pci/devices/"$1"/drm/card* /sys/bus/pci/devices/"$1"/virtio*/drm/card*; do
		[ -e "$c" ] && basename "$c" && return 0
	done
	return 0
}
# Wait (bounded: 30 s) until the PCI device has a card; print it.
wait_card() {
	i=0
	while [ $i -lt 150 ]; do
		c=$(card_of_pci "$1")
		if [ -n "$c" ] && [ -e "/dev/dri/$c" ]; then
			echo "$c"
			return 0
		fi
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

print_features() {
	for d in /sys/bus/virtio/devices/virtio*; do
		[ -e "$d/features" ] || continue
		f=$(cat "$d/features")
		bits=
		i=0
		rest=$f
		while [ -n "$rest" ]; do
			case $rest in 1*) bits="$bits${bits:+,}$i" ;; esac
			rest=${rest#?}
			i=$((i + 1))
		done
		pci=$(basename "$(dirname "$(readlink -f "$d")")")
		say "virtio $(basename "$d") device=$(cat "$d/device") pci=$pci card=$(card_of_pci "$pci") features=$f bits=$bits"
	done
	for d in /sys/kernel/debug/dri/*; do
		case ${d##*/} in [0-9] | [1-5][0-9] | 6[0-3]) ;; *) continue ;; esac # primary nodes only
		for f in virtio-gpu-features virtio-gpu-host-visible-mm; do
			[ -r "$d/$f" ] || continue
			while IFS= read -r line; do
				say "dri$(basename "$d") $f: $line"
			done <"$d/$f"
		done
	done
}

# Wait for every GPU's card, then report what was negotiated.
cards=
for pci in $(gpu_pcis); do
	if c=$(wait_card "$pci"); then
		cards="$cards${cards:+,}$c"
	else
		failed "no-card pci=$pci"
	fi
done
say "gpus=$(gpu_pcis | wc -l) cards=$cards"

# The same for virtio input devices (device id 0x0012): each one's evdev
# node (virtioN/input/inputM/eventK), bounded by 30 s.
input_virtios() {
	for d in /sys/bus/virtio/devices/virtio*; do
		[ -e "$d/device" ] || continue
		[ "$(cat "$d/device")" = 0x0012 ] && echo "$d"
	done
	return 0
}
event_of() {
	for e in "$1"/input/input*/event*; do
		[ -e "$e" ] && [ -e "/dev/input/${e##*/}" ] && echo "${e##*/}" && return 0
	done
	return 0
}
events=
for d in $(input_virtios); do
	i=0
	e=$(event_of "$d")
	while [ -z "$e" ] && [ $i -lt 150 ]; do
		sleep 0.2
		i=$((i + 1))
		e=$(event_of "$d")
	done
	if [ -n "$e" ]; then
		events="$events${events:+,}$e"
	else
		failed "no-event ${d##*/}"
	fi
done
say "inputs=$(input_virtios | wc -l) events=$events"
print_features

palette_for() { # card number -> palette
	n=$1
	p=1
	oldifs=$IFS
	IFS=,
	for q in $palettes; do
		p=$q
		[ "$n" -eq 0 ] && break
		n=$((n - 1))
	done
	IFS=$oldifs
	echo "$p"
}

all_cards() {
	for c in /dev/dri/card*; do
		[ -e "$c" ] && echo "${c#/dev/dri/card}"
	done
}

do_pattern() { # seconds [card]
	list=$2
	[ -n "$list" ] || list=$(all_cards)
	[ -n "$list" ] || { failed "pattern no-card"; return; }
	jobs=
	for c in $list; do
		kms-pattern --card "$c" --palette "$(palette_for "$c")" --hold "$1" </dev/null &
		jobs="$jobs $c:$!"
	done
	for j in $jobs; do
		wait "${j#*:}" || failed "pattern card=${j%%:*} status=$?"
	done
}

do_console() { # seconds
	say "console-start seconds=$1"
	n=0
	while [ $n -lt $(($1 * 4)) ]; do
		echo "crossway fbcon test line $n: The quick brown fox jumps over the lazy dog" >/dev/tty0 ||
			{ failed "console write"; return; }
		n=$((n + 1))
		sleep 0.25
	done
	say "console-done lines=$n"
}

do_input() { # seconds [led]
	if [ -n "$2" ]; then
		evdev-read --timeout "$1" --quit-keys 1,1,1 --led 1 </dev/null || failed "input status=$?"
	else
		evdev-read --timeout "$1" --quit-keys 1,1,1 </dev/null || failed "input status=$?"
	fi
}

do_rebind() { # [card]
	if [ -n "$1" ]; then
		[ -e "/sys/class/drm/card$1/device" ] || { failed "rebind no card$1"; return; }
		pcis=$(readlink -f "/sys/class/drm/card$1/device")
		case ${pcis##*/} in virtio*) pcis=${pcis%/*} ;; esac
		pcis=${pcis##*/}
	else
		pcis=$(gpu_pcis)
	fi
	[ -n "$pcis" ] || { failed "rebind no-gpu"; return; }
	for pci in $pcis; do
		if echo "$pci" >/sys/bus/pci/drivers/virtio-pci/unbind; then
			say "rebind unbound pci=$pci"
		else
			failed "rebind unbind pci=$pci"
		fi
	done
	sleep 2
	for pci in $pcis; do
		echo "$pci" >/sys/bus/pci/drivers/virtio-pci/bind || failed "rebind bind pci=$pci"
	done
	for pci in $pcis; do
		if c=$(wait_card "$pci"); then
			say "rebind ok pci=$pci card=$c"
		else
			failed "rebind no-card pci=$pci"
		fi
	done
}

# crossway-guest (vm/guest/build-static.sh, added with --program) on the
# render node: what it prints, then its exit status (1: it refused the
# device; 143: it was still listening when the bound ran out).
do_guestproxy() { # seconds
	command -v crossway-guest >/dev/null 2>&1 ||
		{ failed "guestproxy no /bin/crossway-guest (make-initrd.sh --program)"; return; }
	mkdir -p /tmp/xdg
	chmod 700 /tmp/xdg
	st=0
	XDG_RUNTIME_DIR=/tmp/xdg timeout "$1" crossway-guest --transport drm --socket wayland-0 \
		</dev/null >/tmp/guestproxy.out 2>&1 || st=$?
	while IFS= read -r line || [ -n "$line" ]; do
		say "guestproxy: $line"
	done </tmp/guestproxy.out
	say "guestproxy exit=$st"
}

oldifs=$IFS
IFS=,
set -f
for step in $plan; do
	set +f
	IFS=$oldifs
	name=${step%%:*}
	arg=
	case $step in *:*) arg=${step#*:} ;; esac
	target=
	case $name in *@*)
		target=${name#*@}
		name=${name%%@*}
		isnum "$target" || { failed "bad-step $step"; continue; }
		;;
	esac
	[ -z "$arg" ] || isnum "$arg" || { failed "bad-step $step"; continue; }
	say "step $step"
	case $name in
	pattern) do_pattern "${arg:-3}" "$target" ;;
	console) do_console "${arg:-5}" ;;
	rebind) do_rebind "$target" ;;
	features) print_features ;;
	input) do_input "${arg:-20}" ;;
	inputled) do_input "${arg:-20}" led ;;
	guestproxy) do_guestproxy "${arg:-10}" ;;
	sleep) sleep "${arg:-1}" ;;
	dmesg) dmesg | sed 's/^/GDMESG /' ;;
	*) failed "unknown-step $step" ;;
	esac
done
IFS=$oldifs
set +f

say "summary failures=$failures uptime=$(cut -d' ' -f1 /proc/uptime)"
say "done"
dmesg | grep -i drm | sed 's/^/GDMESG /'
poweroff -f
sleep 5
echo o >/proc/sysrq-trigger
sleep 30
EOF
chmod 755 "$root/init"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -n -6 >"$staging/initrd.gz"
cp "$kernel" "$staging/vmlinuz"
echo "$KVER" >"$staging/kernel-version"

for f in kms-pattern evdev-read vmlinuz kernel-version initrd.gz; do
	mv -f "$staging/$f" "$out/$f"
done
echo "$stamp" >"$out/stamp"
