#ifndef VINPUT_VIRTIO_INPUT_H
#define VINPUT_VIRTIO_INPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <wayland-server-core.h>

/*
 * A virtio-input device (virtio 1.2 §5.8, device id 18) served over
 * vhost-user, for QEMU's `vhost-user-input-pci` or any front end: one per
 * VM, a combined keyboard and absolute pointer (tablet), fed by crossway.
 *
 * What the guest sees (config space, select/subsel):
 *   ID_NAME    "crossway keyboard and tablet"
 *   ID_SERIAL  the VM's name
 *   ID_DEVIDS  bustype BUS_VIRTUAL (6), vendor 0x1af4, product 0x1052, version 1
 *   PROP_BITS  none
 *   EV_BITS    EV_KEY: keys 1-255 and BTN_LEFT, RIGHT, MIDDLE, SIDE, EXTRA
 *              EV_REL: REL_HWHEEL, REL_WHEEL
 *              EV_ABS: ABS_X, ABS_Y
 *              EV_LED: NUML, CAPSL, SCROLLL (the guest reports them on the status queue)
 *              EV_REP: present (size 1): the guest repeats keys itself
 *   ABS_INFO   ABS_X and ABS_Y: 0..VINPUT_ABS_MAX, no fuzz, flat or resolution
 * Anything else selects nothing (size 0).
 *
 * Queue 0 carries events to the guest (8 bytes each: le16 type, le16 code,
 * le32 value), every group ending with EV_SYN/SYN_REPORT; queue 1 carries the
 * guest's status events (LEDs), which are accepted and remembered.
 *
 * Events are only queued while a driver runs (both queues started). Up to
 * VINPUT_PENDING_MAX events wait for the guest's buffers; a group that does
 * not fit is dropped whole, logged once per episode, and never splits.
 * Keys and buttons are tracked as the guest will see them, so a release is
 * only sent for a press it got, and vinput_device_release_all can always
 * lift everything still down.
 */

#define VINPUT_ABS_MAX 32767
#define VINPUT_PENDING_MAX 256

struct vinput_device;

/* Listens on `socket_path` for the VM named `name`. NULL on error (logged). */
struct vinput_device *vinput_device_create(struct wl_event_loop *loop, const char *socket_path,
	const char *name);
void vinput_device_destroy(struct vinput_device *device);

/* A key (evdev code) went down or up. Codes the device does not offer are ignored. */
void vinput_device_key(struct vinput_device *device, uint32_t code, bool pressed);
/* A pointer button (BTN_LEFT...BTN_EXTRA) went down or up. */
void vinput_device_button(struct vinput_device *device, uint32_t button, bool pressed);
/* The pointer is at (x, y), both in 0..VINPUT_ABS_MAX. Repeats are skipped. */
void vinput_device_motion(struct vinput_device *device, uint32_t x, uint32_t y);
/* Wheel clicks: positive `vertical` scrolls up, positive `horizontal` right (evdev). */
void vinput_device_scroll(struct vinput_device *device, int32_t vertical, int32_t horizontal);
/* Releases every key the guest holds down (focus left its window). */
void vinput_device_release_keys(struct vinput_device *device);
/* Releases every button the guest holds down (the pointer left its window). */
void vinput_device_release_buttons(struct vinput_device *device);
/* Whether the guest holds a pointer button down (an implicit grab). */
bool vinput_device_buttons_down(const struct vinput_device *device);

#endif
