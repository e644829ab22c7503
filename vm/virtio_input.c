/*
 * The virtio-input device of one VM (virtio 1.2 §5.8): a keyboard and a
 * tablet the compositor types and points with. The guest only chooses which
 * config page to read and hands us buffers; every value it gives is checked.
 */
#define _DEFAULT_SOURCE
#include "virtio_input.h"

#include <endian.h>
#include <linux/input-event-codes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <wlr/util/log.h>

#include "vhost_user.h"

/* virtio 1.2 §5.8: config space selectors. */
enum {
	CFG_UNSET = 0x00,
	CFG_ID_NAME = 0x01,
	CFG_ID_SERIAL = 0x02,
	CFG_ID_DEVIDS = 0x03,
	CFG_PROP_BITS = 0x10,
	CFG_EV_BITS = 0x11,
	CFG_ABS_INFO = 0x12,
};

#define CONFIG_SIZE 136 // select, subsel, size, reserved[5], u[128]
#define CONFIG_PAYLOAD 8
#define CONFIG_PAYLOAD_SIZE 128
#define EVENT_QUEUE 0
#define STATUS_QUEUE 1
#define EVENT_SIZE 8
/* Status chains handled per kick: the rest wait for the next loop turn. */
#define STATUS_BATCH 64
/* Event buffers looked at per call; the rest go with the next kick or event. */
#define DELIVER_BATCH 1024

#define DEVICE_NAME "crossway keyboard and tablet"
#define BUS_VIRTUAL_ID 0x06
#define DEVIDS_VENDOR 0x1af4
#define DEVIDS_PRODUCT 0x1052
#define DEVIDS_VERSION 0x0001

#define FIRST_KEY KEY_ESC
#define LAST_KEY 255
#define KEY_BITMAP_BYTES ((BTN_EXTRA / 8) + 1)

/* Counters, for the disconnect log line. */
struct vinput_stats {
	uint64_t events_sent;    // written into the guest's buffers
	uint64_t events_dropped; // discarded: the guest did not take them in time
	uint64_t status_events;  // received on the status queue
	uint32_t leds;           // bit n: LED n is on, as the guest last said
};

struct input_event_le {
	uint16_t type;
	uint16_t code;
	uint32_t value;
};

struct vinput_device {
	char *name;
	struct vu_server *server;
	struct vu_dev *dev; // NULL when no front end is connected
	bool queue_running[2];

	uint8_t select, subsel;

	/* Events waiting for guest buffers: a ring of whole groups. */
	struct input_event_le pending[VINPUT_PENDING_MAX];
	unsigned pending_head, pending_count;
	bool dropping; // inside a drop episode (logged once)
	bool bad_buffer_logged;

	/* What the guest has been told is down. */
	uint8_t keys_down[KEY_BITMAP_BYTES];
	bool motion_known;
	uint32_t last_x, last_y;

	struct vinput_stats stats;
};

static void vinput_log(const struct vinput_device *device, enum wlr_log_importance level,
	const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
vinput_log(const struct vinput_device *device, enum wlr_log_importance level, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	vu_vm_logv(level, device->name, "input: ", fmt, args);
	va_end(args);
}

/* A driver runs (both queues started): events sent now reach the guest. */
static bool
driver_ready(const struct vinput_device *device)
{
	return device != NULL && device->dev != NULL && device->queue_running[EVENT_QUEUE] &&
		device->queue_running[STATUS_QUEUE];
}

/* --- what the device offers ------------------------------------------------ */

static bool
is_offered_key(uint32_t code)
{
	return (code >= FIRST_KEY && code <= LAST_KEY) || (code >= BTN_LEFT && code <= BTN_EXTRA);
}

static bool
is_button(uint32_t code)
{
	return code >= BTN_LEFT && code <= BTN_EXTRA;
}

static void
set_bit_in(uint8_t *bitmap, unsigned bit)
{
	bitmap[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

static bool
bit_is_set(const uint8_t *bitmap, unsigned bit)
{
	return bitmap[bit / 8] & (1u << (bit % 8));
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void
put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

/* The payload for EV_BITS/subsel; returns its size (0: the type is not offered). */
static uint8_t
fill_event_bits(uint8_t type, uint8_t *u)
{
	switch (type) {
	case EV_KEY:
		for (unsigned code = 0; code <= BTN_EXTRA; code++) {
			if (is_offered_key(code)) {
				set_bit_in(u, code);
			}
		}
		return KEY_BITMAP_BYTES;
	case EV_REL:
		set_bit_in(u, REL_HWHEEL);
		set_bit_in(u, REL_WHEEL);
		return REL_WHEEL / 8 + 1;
	case EV_ABS:
		set_bit_in(u, ABS_X);
		set_bit_in(u, ABS_Y);
		return 1;
	case EV_LED:
		set_bit_in(u, LED_NUML);
		set_bit_in(u, LED_CAPSL);
		set_bit_in(u, LED_SCROLLL);
		return 1;
	case EV_REP:
		return 1; // only its presence matters: the guest repeats keys itself
	default:
		return 0;
	}
}

/* Fills the 136-byte config space for the current select/subsel. */
static void
fill_config(const struct vinput_device *device, uint8_t config[static CONFIG_SIZE])
{
	memset(config, 0, CONFIG_SIZE);
	config[0] = device->select;
	config[1] = device->subsel;
	uint8_t *u = config + CONFIG_PAYLOAD;
	uint8_t size = 0;
	switch (device->select) {
	case CFG_ID_NAME:
		if (device->subsel == 0) {
			size = (uint8_t)strlen(DEVICE_NAME);
			memcpy(u, DEVICE_NAME, size);
		}
		break;
	case CFG_ID_SERIAL:
		if (device->subsel == 0) {
			size_t len = strlen(device->name);
			size = (uint8_t)(len < CONFIG_PAYLOAD_SIZE ? len : CONFIG_PAYLOAD_SIZE);
			memcpy(u, device->name, size);
		}
		break;
	case CFG_ID_DEVIDS:
		if (device->subsel == 0) {
			put_le16(u, BUS_VIRTUAL_ID);
			put_le16(u + 2, DEVIDS_VENDOR);
			put_le16(u + 4, DEVIDS_PRODUCT);
			put_le16(u + 6, DEVIDS_VERSION);
			size = 8;
		}
		break;
	case CFG_EV_BITS:
		size = fill_event_bits(device->subsel, u);
		break;
	case CFG_ABS_INFO:
		if (device->subsel == ABS_X || device->subsel == ABS_Y) {
			put_le32(u, 0);               // min
			put_le32(u + 4, VINPUT_ABS_MAX); // max
			size = 20;                    // fuzz, flat, res stay 0
		}
		break;
	default: // CFG_UNSET, CFG_PROP_BITS (none) and anything unknown
		break;
	}
	config[2] = size;
}

/* --- events to the guest ------------------------------------------------------ */

/* Hands waiting events to the guest's buffers, in order, as far as they go. */
static void
deliver_pending(struct vinput_device *device)
{
	if (device->dev == NULL) {
		return;
	}
	/* Bounded: a guest refilling bad buffers as fast as we return them cannot hold us. */
	for (unsigned n = 0; n < DELIVER_BATCH && device->pending_count > 0; n++) {
		struct vu_chain chain;
		int r = vu_dev_pop(device->dev, EVENT_QUEUE, &chain);
		if (r <= 0) {
			return; // no buffer now (a kick brings more) or a broken ring (reported)
		}
		if (chain.in_len < EVENT_SIZE) {
			/* A buffer no driver means: hand it back empty, keep the event for the next. */
			vu_dev_push(device->dev, EVENT_QUEUE, &chain, 0);
			if (!device->bad_buffer_logged) {
				vinput_log(device, WLR_ERROR, "event buffer of %zu writable bytes (need %d) "
					"returned unused", chain.in_len, EVENT_SIZE);
				device->bad_buffer_logged = true;
			}
			continue;
		}
		struct input_event_le *event = &device->pending[device->pending_head];
		size_t written = vu_chain_write(&chain, 0, event, sizeof(*event));
		vu_dev_push(device->dev, EVENT_QUEUE, &chain, (uint32_t)written);
		device->stats.events_sent++;
		device->pending_head = (device->pending_head + 1) % VINPUT_PENDING_MAX;
		device->pending_count--;
	}
	if (device->dropping && device->pending_count == 0) {
		vinput_log(device, WLR_INFO, "the guest takes input events again (%llu dropped so far)",
			(unsigned long long)device->stats.events_dropped);
		device->dropping = false;
	}
}

/* A group of events being built; send_group ends it with SYN_REPORT. */
#define GROUP_MAX_EVENTS 4
struct group {
	struct input_event_le events[GROUP_MAX_EVENTS + 1];
	unsigned count;
};

static void
group_add(struct group *group, uint16_t type, uint16_t code, int32_t value)
{
	if (group->count < GROUP_MAX_EVENTS) {
		group->events[group->count++] = (struct input_event_le){
			.type = htole16(type), .code = htole16(code), .value = htole32((uint32_t)value),
		};
	}
}

/*
 * Queues a group with its SYN_REPORT, whole or not at all. Returns false when
 * it was dropped (no driver, or the guest is not taking events).
 */
static bool
send_group(struct vinput_device *device, struct group *group)
{
	if (group->count == 0 || !driver_ready(device)) {
		return false;
	}
	group->events[group->count++] = (struct input_event_le){
		.type = htole16(EV_SYN), .code = htole16(SYN_REPORT), .value = 0,
	};
	if (device->pending_count + group->count > VINPUT_PENDING_MAX) {
		if (!device->dropping) {
			vinput_log(device, WLR_ERROR, "the guest does not take its input events; "
				"dropping them (queue of %d full)", VINPUT_PENDING_MAX);
			device->dropping = true;
		}
		device->stats.events_dropped += group->count;
		return false;
	}
	for (unsigned i = 0; i < group->count; i++) {
		unsigned slot = (device->pending_head + device->pending_count) % VINPUT_PENDING_MAX;
		device->pending[slot] = group->events[i];
		device->pending_count++;
	}
	deliver_pending(device);
	return true;
}

/* --- the API crossway uses -------------------------------------------------- */

/* Sends a key or button change if the guest's view of it changes. */
static void
send_key(struct vinput_device *device, uint32_t code, bool pressed)
{
	if (device == NULL || !is_offered_key(code) ||
			bit_is_set(device->keys_down, code) == pressed) {
		return; // not offered, or a release of a press the guest never got
	}
	struct group group = {0};
	group_add(&group, EV_KEY, (uint16_t)code, pressed ? 1 : 0);
	if (send_group(device, &group)) {
		device->keys_down[code / 8] ^= (uint8_t)(1u << (code % 8));
	}
}

void
vinput_device_key(struct vinput_device *device, uint32_t code, bool pressed)
{
	if (!is_button(code)) {
		send_key(device, code, pressed);
	}
}

void
vinput_device_button(struct vinput_device *device, uint32_t button, bool pressed)
{
	if (is_button(button)) {
		send_key(device, button, pressed);
	}
}

void
vinput_device_motion(struct vinput_device *device, uint32_t x, uint32_t y)
{
	if (device == NULL) {
		return;
	}
	x = x > VINPUT_ABS_MAX ? VINPUT_ABS_MAX : x;
	y = y > VINPUT_ABS_MAX ? VINPUT_ABS_MAX : y;
	if (device->motion_known && x == device->last_x && y == device->last_y) {
		return;
	}
	struct group group = {0};
	group_add(&group, EV_ABS, ABS_X, (int32_t)x);
	group_add(&group, EV_ABS, ABS_Y, (int32_t)y);
	if (send_group(device, &group)) {
		device->motion_known = true;
		device->last_x = x;
		device->last_y = y;
	}
}

void
vinput_device_scroll(struct vinput_device *device, int32_t vertical, int32_t horizontal)
{
	if (device == NULL) {
		return;
	}
	struct group group = {0};
	if (vertical != 0) {
		group_add(&group, EV_REL, REL_WHEEL, vertical);
	}
	if (horizontal != 0) {
		group_add(&group, EV_REL, REL_HWHEEL, horizontal);
	}
	send_group(device, &group);
}

/* Releases every code in [first, last] the guest holds, one group each, like a keyboard. */
static void
release_range(struct vinput_device *device, unsigned first, unsigned last)
{
	for (unsigned code = first; code <= last; code++) {
		if (bit_is_set(device->keys_down, code)) {
			send_key(device, code, false);
		}
	}
}

void
vinput_device_release_keys(struct vinput_device *device)
{
	if (device != NULL) {
		release_range(device, FIRST_KEY, LAST_KEY);
	}
}

void
vinput_device_release_buttons(struct vinput_device *device)
{
	if (device != NULL) {
		release_range(device, BTN_LEFT, BTN_EXTRA);
	}
}

bool
vinput_device_buttons_down(const struct vinput_device *device)
{
	if (device == NULL) {
		return false;
	}
	for (unsigned code = BTN_LEFT; code <= BTN_EXTRA; code++) {
		if (bit_is_set(device->keys_down, code)) {
			return true;
		}
	}
	return false;
}

/* --- status queue ------------------------------------------------------------- */

static void
handle_status(struct vinput_device *device, const struct input_event_le *event)
{
	uint16_t type = le16toh(event->type), code = le16toh(event->code);
	uint32_t value = le32toh(event->value);
	device->stats.status_events++;
	if (type == EV_LED && code <= LED_SCROLLL) {
		if (value != 0) {
			device->stats.leds |= 1u << code;
		} else {
			device->stats.leds &= ~(1u << code);
		}
		vinput_log(device, WLR_DEBUG, "guest LED %u %s", code, value ? "on" : "off");
	} else if (type != EV_SYN) {
		vinput_log(device, WLR_DEBUG, "status event type %u code %u ignored", type, code);
	}
}

static void
process_status_queue(struct vinput_device *device)
{
	for (int n = 0; n < STATUS_BATCH && device->dev != NULL; n++) {
		struct vu_chain chain;
		if (vu_dev_pop(device->dev, STATUS_QUEUE, &chain) <= 0) {
			return;
		}
		struct input_event_le event;
		if (vu_chain_read(&chain, 0, &event, sizeof(event)) == sizeof(event)) {
			handle_status(device, &event);
		} else {
			vinput_log(device, WLR_DEBUG, "status buffer of %zu bytes ignored", chain.out_len);
		}
		vu_dev_push(device->dev, STATUS_QUEUE, &chain, 0);
	}
	/* A guest flooding the status queue waits for its next kick; LEDs are not urgent. */
}

/* --- vhost-user device ops -------------------------------------------------- */

static bool
get_config(void *data, uint32_t offset, uint8_t *buf, uint32_t size)
{
	struct vinput_device *device = data;
	if (offset > CONFIG_SIZE || size > CONFIG_SIZE - offset) {
		vinput_log(device, WLR_DEBUG, "config read of %u bytes at %u refused", size, offset);
		return false;
	}
	uint8_t config[CONFIG_SIZE];
	fill_config(device, config);
	memcpy(buf, config + offset, size);
	return true;
}

static bool
set_config(void *data, uint32_t offset, const uint8_t *buf, uint32_t size)
{
	struct vinput_device *device = data;
	if (offset > CONFIG_SIZE || size > CONFIG_SIZE - offset) {
		vinput_log(device, WLR_DEBUG, "config write of %u bytes at %u refused", size, offset);
		return false;
	}
	/* Only select and subsel are writable; QEMU writes the whole space back. */
	if (offset == 0 && size >= 1) {
		device->select = buf[0];
	}
	if (offset <= 1 && offset + size >= 2) {
		device->subsel = buf[1 - offset];
	}
	return true;
}

static void
update_ready(struct vinput_device *device, bool was_ready)
{
	bool ready = driver_ready(device);
	if (ready && !was_ready) {
		vinput_log(device, WLR_INFO, "driver ready");
	} else if (!ready && was_ready) {
		vinput_log(device, WLR_INFO, "driver stopped");
	}
}

static void
queue_kicked(void *data, struct vu_dev *dev, unsigned index)
{
	struct vinput_device *device = data;
	(void)dev;
	bool was_ready = driver_ready(device);
	if (index < 2) {
		device->queue_running[index] = true;
	}
	update_ready(device, was_ready);
	if (index == EVENT_QUEUE) {
		deliver_pending(device);
	} else if (index == STATUS_QUEUE) {
		process_status_queue(device);
	}
}

/* What the guest was told is gone with its driver: start from nothing. */
static void
forget_guest_state(struct vinput_device *device)
{
	device->pending_head = 0;
	device->pending_count = 0;
	device->dropping = false;
	memset(device->keys_down, 0, sizeof(device->keys_down));
	device->motion_known = false;
}

static void
queue_stopped(void *data, struct vu_dev *dev, unsigned index)
{
	struct vinput_device *device = data;
	(void)dev;
	bool was_ready = driver_ready(device);
	if (index < 2) {
		device->queue_running[index] = false;
	}
	if (index == EVENT_QUEUE) {
		forget_guest_state(device);
	}
	update_ready(device, was_ready);
}

static void
connected(void *data, struct vu_dev *dev)
{
	struct vinput_device *device = data;
	device->dev = dev;
	device->select = CFG_UNSET;
	device->subsel = 0;
	vinput_log(device, WLR_INFO, "VMM connected");
}

static void
disconnected(void *data, struct vu_dev *dev)
{
	struct vinput_device *device = data;
	(void)dev;
	vinput_log(device, WLR_INFO, "VMM disconnected; events sent=%llu dropped=%llu status=%llu "
		"leds=0x%x", (unsigned long long)device->stats.events_sent,
		(unsigned long long)device->stats.events_dropped,
		(unsigned long long)device->stats.status_events, device->stats.leds);
	device->dev = NULL;
	device->queue_running[EVENT_QUEUE] = device->queue_running[STATUS_QUEUE] = false;
	forget_guest_state(device);
	device->stats = (struct vinput_stats){0};
	device->bad_buffer_logged = false;
}

static const struct vu_device_ops device_ops = {
	.device_features = 0,
	.protocol_features = 0,
	.num_queues = 2,
	.get_config = get_config,
	.set_config = set_config,
	/* No features_set: virtio-input has no device features. */
	.queue_kicked = queue_kicked,
	.queue_stopped = queue_stopped,
	.connected = connected,
	.disconnected = disconnected,
};

struct vinput_device *
vinput_device_create(struct wl_event_loop *loop, const char *socket_path, const char *name)
{
	struct vinput_device *device = calloc(1, sizeof(*device));
	if (device == NULL) {
		return NULL;
	}
	device->name = strdup(name);
	if (device->name == NULL) {
		vinput_device_destroy(device);
		return NULL;
	}
	device->server = vu_server_create(loop, socket_path, name, &device_ops, device);
	if (device->server == NULL) {
		vinput_device_destroy(device);
		return NULL;
	}
	return device;
}

void
vinput_device_destroy(struct vinput_device *device)
{
	if (device == NULL) {
		return;
	}
	vu_server_destroy(device->server);
	free(device->name);
	free(device);
}
