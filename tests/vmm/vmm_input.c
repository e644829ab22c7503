/*
 * A virtio-input driver as Linux 6.1's virtio_input.c behaves behind QEMU
 * 7.2's vhost-user-input-pci (virtio 1.2 §5.8): config probing one guest
 * access at a time, 8-byte event buffers re-posted as soon as they are
 * read, status events on the second queue, and hooks for misbehaving
 * guests (buffers of the wrong kind or size, a guest that stops taking
 * events, odd config accesses are done by the caller with vmm_dev_*).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm_internal.h"

#define EVENT_SIZE 8u
/* Status and fault buffers share one page in slots of this size; a fault
 * buffer's slot is larger than the buffer so that writes past it show. */
#define MISC_SLOT 16u
#define MISC_SLOTS (VMM_PAGE_SIZE / MISC_SLOT)
#define FAULT_PATTERN 0xa5u
#define SHORT_LEN 4u
/* How long an interrupt may lag behind the used index it announces. */
#define CALL_GRACE_MS 100

/* Config layout (virtio 1.2 §5.8.4). */
#define CFG_SELECT 0u
#define CFG_SUBSEL 1u
#define CFG_SIZE 2u
#define CFG_U 8u

/* Linux input-event-codes.h values used while probing. */
enum {
	EV_SYN = 0x00, EV_KEY = 0x01, EV_REL = 0x02, EV_ABS = 0x03, EV_MSC = 0x04,
	EV_SW = 0x05, EV_LED = 0x11, EV_SND = 0x12, EV_REP = 0x14, EV_FF = 0x15,
	EV_PWR = 0x16, EV_FF_STATUS = 0x17,
};

enum slot_kind { SLOT_FREE, SLOT_EVENT, SLOT_STATUS, SLOT_READABLE, SLOT_SHORT };

struct slot {
	enum slot_kind kind;
	uint64_t gpa;
	bool posted; /* the device holds it */
	bool held;   /* returned but not re-posted (repost off) */
	bool done;   /* status: given back by the device */
};

struct vmm_input {
	struct vmm_dev *dev;
	/* QEMU's vdev->config: what the last guest read saw; a guest byte
	 * write changes one byte of it and sends all of it. */
	uint8_t config[VMM_INPUT_CONFIG_SIZE];
	struct vmm_input_info info;
	struct vmm_input_stats stats;
	struct vmm_input_listener listener;
	uint64_t evt_page, misc_page; /* 0: not allocated yet */
	struct slot evts[VMM_INPUT_MAX_BUFFERS];
	struct slot misc[MISC_SLOTS];
	bool repost, probed;
};

/* ------------------------------------------------------------------ */
/* Construction                                                        */
/* ------------------------------------------------------------------ */

/* The device forgot every buffer: the driver will post fresh ones after
 * the next DRIVER_OK, and probes again (Linux re-probes on rebind). */
static void on_device_reset(void *data)
{
	struct vmm_input *in = data;

	for (unsigned i = 0; i < VMM_INPUT_MAX_BUFFERS; i++)
		in->evts[i].posted = in->evts[i].held = false;
	for (unsigned i = 0; i < MISC_SLOTS; i++)
		in->misc[i] = (struct slot){ .kind = SLOT_FREE, .gpa = in->misc[i].gpa };
	in->probed = false;
}

struct vmm_input *vmm_input_new(struct vmm_dev *dev)
{
	struct vmm_input *in = calloc(1, sizeof(*in));
	struct vmm_dev_listener l = { .device_reset = on_device_reset };

	if (!in)
		return NULL;
	in->dev = dev;
	in->repost = true;
	l.data = in;
	vmm_dev_set_listener(dev, &l);
	return in;
}

void vmm_input_free(struct vmm_input *in)
{
	struct vmm_mem *mem;

	if (!in)
		return;
	mem = vmm_dev_mem(in->dev);
	vmm_dev_set_listener(in->dev, NULL);
	if (in->evt_page)
		vmm_mem_release(mem, in->evt_page, VMM_PAGE_SIZE);
	if (in->misc_page)
		vmm_mem_release(mem, in->misc_page, VMM_PAGE_SIZE);
	free(in);
}

void vmm_input_set_listener(struct vmm_input *in, const struct vmm_input_listener *l)
{
	if (l)
		in->listener = *l;
	else
		memset(&in->listener, 0, sizeof(in->listener));
}

const struct vmm_input_info *vmm_input_info(const struct vmm_input *in) { return &in->info; }
const struct vmm_input_stats *vmm_input_stats(const struct vmm_input *in) { return &in->stats; }

unsigned vmm_input_posted(const struct vmm_input *in)
{
	unsigned n = 0;

	for (unsigned i = 0; i < VMM_INPUT_MAX_BUFFERS; i++)
		n += in->evts[i].posted;
	return n;
}

/* ------------------------------------------------------------------ */
/* Config space, one guest access at a time                            */
/* ------------------------------------------------------------------ */

/* A guest read of len (1, 2 or 4) bytes at off: one GET_CONFIG of the
 * whole space. Beyond the config space QEMU answers all ones itself. */
static int cfg_read(struct vmm_input *in, uint32_t off, uint32_t len, uint8_t *out)
{
	if (off + len > VMM_INPUT_CONFIG_SIZE) {
		memset(out, 0xff, len);
		return 0;
	}
	in->stats.config_reads++;
	if (vmm_dev_get_config(in->dev, 0, in->config, VMM_INPUT_CONFIG_SIZE) < 0)
		return -1;
	memcpy(out, in->config + off, len);
	return 0;
}

static int cfg_write8(struct vmm_input *in, uint32_t off, uint8_t val)
{
	in->config[off] = val;
	in->stats.config_writes++;
	return vmm_dev_set_config(in->dev, 0, in->config, VMM_INPUT_CONFIG_SIZE);
}

/* virtio_cread_bytes: byte by byte, so one GET_CONFIG per byte. */
static int cfg_read_bytes(struct vmm_input *in, uint32_t off, uint8_t *out, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (cfg_read(in, off + i, 1, out + i) < 0)
			return -1;
	}
	return 0;
}

static int cfg_read_le16(struct vmm_input *in, uint32_t off, uint16_t *v)
{
	uint8_t b[2];

	if (cfg_read(in, off, 2, b) < 0)
		return -1;
	*v = (uint16_t)(b[0] | b[1] << 8);
	return 0;
}

static int cfg_read_le32(struct vmm_input *in, uint32_t off, uint32_t *v)
{
	uint8_t b[4];

	if (cfg_read(in, off, 4, b) < 0)
		return -1;
	*v = vmm_get32(b);
	return 0;
}

int vmm_input_select(struct vmm_input *in, uint8_t select, uint8_t subsel)
{
	uint8_t size;

	if (cfg_write8(in, CFG_SELECT, select) < 0 || cfg_write8(in, CFG_SUBSEL, subsel) < 0 ||
			cfg_read(in, CFG_SIZE, 1, &size) < 0)
		return -1;
	return size;
}

/* ------------------------------------------------------------------ */
/* Probe (virtinput_probe)                                             */
/* ------------------------------------------------------------------ */

static int probe_string(struct vmm_input *in, uint8_t select, char *out, uint8_t *size)
{
	int r = vmm_input_select(in, select, 0);
	uint32_t n;

	if (r < 0)
		return -1;
	*size = (uint8_t)r;
	n = (uint32_t)r < 64 ? (uint32_t)r : 64;
	memset(out, 0, 65);
	return cfg_read_bytes(in, CFG_U, (uint8_t *)out, n);
}

static int probe_devids(struct vmm_input *in)
{
	struct vmm_input_info *i = &in->info;
	int r = vmm_input_select(in, VMM_INPUT_CFG_ID_DEVIDS, 0);

	if (r < 0)
		return -1;
	i->has_devids = r >= 8;
	if (!i->has_devids)
		return 0;
	return cfg_read_le16(in, CFG_U, &i->bustype) < 0 ||
		cfg_read_le16(in, CFG_U + 2, &i->vendor) < 0 ||
		cfg_read_le16(in, CFG_U + 4, &i->product) < 0 ||
		cfg_read_le16(in, CFG_U + 6, &i->version) < 0 ? -1 : 0;
}

/* virtinput_cfg_bits: the whole announced size is read, whatever the
 * kernel's own bit count is; bytes past the config space read as 0xff. */
static int probe_bits(struct vmm_input *in, uint8_t select, uint8_t subsel,
		uint8_t *bits, uint8_t *size)
{
	uint8_t buf[256];
	int r = vmm_input_select(in, select, subsel);

	if (r < 0)
		return -1;
	*size = (uint8_t)r;
	memset(bits, 0, 128);
	if (r == 0)
		return 0;
	if (cfg_read_bytes(in, CFG_U, buf, (uint32_t)r) < 0)
		return -1;
	memcpy(bits, buf, r < 128 ? (size_t)r : 128);
	return 0;
}

static int probe_abs(struct vmm_input *in, uint8_t axis)
{
	struct vmm_input_absinfo *a = &in->info.abs[axis];

	/* Linux ignores the size here and reads min, max, res, fuzz, flat. */
	if (vmm_input_select(in, VMM_INPUT_CFG_ABS_INFO, axis) < 0 ||
			cfg_read_le32(in, CFG_U, &a->min) < 0 ||
			cfg_read_le32(in, CFG_U + 4, &a->max) < 0 ||
			cfg_read_le32(in, CFG_U + 16, &a->res) < 0 ||
			cfg_read_le32(in, CFG_U + 8, &a->fuzz) < 0 ||
			cfg_read_le32(in, CFG_U + 12, &a->flat) < 0)
		return -1;
	in->info.abs_valid[axis] = true;
	return 0;
}

static bool bit_set(const uint8_t *bits, unsigned bit)
{
	return bits[bit / 8] & (1u << (bit % 8));
}

int vmm_input_probe(struct vmm_input *in)
{
	static const uint8_t types[] = { EV_KEY, EV_REL, EV_ABS, EV_MSC, EV_SW, EV_LED, EV_SND };
	struct vmm_input_info *i = &in->info;
	int r;

	if (!vmm_dev_connected(in->dev)) {
		vmm_dev_fail(in->dev, "input probe: not connected");
		return -1;
	}
	memset(i, 0, sizeof(*i));
	if (probe_string(in, VMM_INPUT_CFG_ID_NAME, i->name, &i->name_size) < 0 ||
			probe_string(in, VMM_INPUT_CFG_ID_SERIAL, i->serial, &i->serial_size) < 0 ||
			probe_devids(in) < 0 ||
			probe_bits(in, VMM_INPUT_CFG_PROP_BITS, 0, i->props, &i->prop_size) < 0)
		return -1;
	/* Only whether EV_REP has a size matters. */
	r = vmm_input_select(in, VMM_INPUT_CFG_EV_BITS, EV_REP);
	if (r < 0)
		return -1;
	i->rep = r != 0;
	for (size_t t = 0; t < sizeof(types); t++) {
		if (probe_bits(in, VMM_INPUT_CFG_EV_BITS, types[t], i->ev_bits[types[t]],
				&i->ev_size[types[t]]) < 0)
			return -1;
	}
	if (i->ev_size[EV_ABS]) {
		for (unsigned a = 0; a < VMM_INPUT_ABS_MAX && a / 8 < i->ev_size[EV_ABS]; a++) {
			if (bit_set(i->ev_bits[EV_ABS], a) && probe_abs(in, (uint8_t)a) < 0)
				return -1;
		}
	}
	if (vmm_dev_probe(in->dev) < 0)
		return -1;
	in->probed = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Buffers                                                             */
/* ------------------------------------------------------------------ */

static int alloc_page(struct vmm_input *in, uint64_t *gpa)
{
	if (*gpa)
		return 0;
	if (vmm_mem_alloc(vmm_dev_mem(in->dev), VMM_PAGE_SIZE, VMM_REGION_ANY, 0, gpa) < 0) {
		*gpa = 0;
		vmm_dev_fail(in->dev, "out of guest memory for input buffers");
		return -1;
	}
	return 0;
}

static int alloc_buffers(struct vmm_input *in)
{
	if (alloc_page(in, &in->evt_page) < 0 || alloc_page(in, &in->misc_page) < 0)
		return -1;
	for (unsigned i = 0; i < VMM_INPUT_MAX_BUFFERS; i++) {
		in->evts[i].kind = SLOT_EVENT;
		in->evts[i].gpa = in->evt_page + EVENT_SIZE * i;
	}
	for (unsigned i = 0; i < MISC_SLOTS; i++)
		in->misc[i].gpa = in->misc_page + MISC_SLOT * i;
	return 0;
}

static struct vmm_vring *ring(struct vmm_input *in, unsigned q)
{
	struct vmm_vring *vr = vmm_dev_vring(in->dev, q);

	if (!vr)
		vmm_dev_fail(in->dev, "input vq%u is not running (input-start first)", q);
	return vr;
}

static int add_event_buffer(struct vmm_input *in, struct slot *s)
{
	struct vmm_vring *vr = ring(in, VMM_INPUT_EVENTQ);
	struct vmm_vbuf b = { .gpa = s->gpa, .len = EVENT_SIZE, .write = true };

	if (!vr)
		return -1;
	/* A stale event must not pass for a new one. */
	if (vmm_mem_write(vmm_dev_mem(in->dev), s->gpa, "\0\0\0\0\0\0\0\0", EVENT_SIZE) < 0 ||
			vmm_vring_add(vr, &b, 1, s) < 0) {
		vmm_dev_fail(in->dev, "posting an event buffer: %s", vmm_vring_error(vr));
		return -1;
	}
	s->posted = true;
	s->held = false;
	return 0;
}

int vmm_input_post(struct vmm_input *in, unsigned nbufs)
{
	unsigned added = 0;

	if (alloc_buffers(in) < 0)
		return -1;
	for (unsigned i = 0; i < VMM_INPUT_MAX_BUFFERS && added < nbufs; i++) {
		if (in->evts[i].posted)
			continue;
		if (add_event_buffer(in, &in->evts[i]) < 0)
			return -1;
		added++;
	}
	if (added < nbufs) {
		vmm_dev_fail(in->dev, "only %u of %u event buffers were free", added, nbufs);
		return -1;
	}
	return vmm_dev_kick(in->dev, VMM_INPUT_EVENTQ);
}

int vmm_input_start(struct vmm_input *in, unsigned nbufs)
{
	struct vmm_vring *vr;
	unsigned max;

	if (!in->probed && vmm_input_probe(in) < 0)
		return -1;
	if (vmm_dev_driver_ok(in->dev) < 0)
		return -1;
	vr = ring(in, VMM_INPUT_EVENTQ);
	if (!vr)
		return -1;
	/* virtinput_fill_evt: min(queue size, 64) buffers. */
	max = vmm_vring_num(vr) < VMM_INPUT_MAX_BUFFERS ? vmm_vring_num(vr) :
		VMM_INPUT_MAX_BUFFERS;
	if (nbufs > max) {
		vmm_dev_fail(in->dev, "at most %u event buffers", max);
		return -1;
	}
	return vmm_input_post(in, nbufs);
}

int vmm_input_set_repost(struct vmm_input *in, bool on)
{
	unsigned added = 0;

	in->repost = on;
	if (!on)
		return 0;
	for (unsigned i = 0; i < VMM_INPUT_MAX_BUFFERS; i++) {
		if (!in->evts[i].held)
			continue;
		if (add_event_buffer(in, &in->evts[i]) < 0)
			return -1;
		added++;
	}
	return added ? vmm_dev_kick(in->dev, VMM_INPUT_EVENTQ) : 0;
}

int vmm_input_reset(struct vmm_input *in)
{
	return vmm_dev_reset(in->dev);
}

/* ------------------------------------------------------------------ */
/* Used buffers                                                        */
/* ------------------------------------------------------------------ */

static void take_event(struct vmm_input *in, struct slot *s, uint32_t len)
{
	uint8_t b[EVENT_SIZE];
	struct vmm_input_event ev;

	s->posted = false;
	/* Linux ignores the length; a device that says anything but 8 still
	 * gets counted, because it misreports what it wrote. */
	if (len != EVENT_SIZE)
		in->stats.bad_len++;
	if (vmm_mem_read(vmm_dev_mem(in->dev), s->gpa, b, EVENT_SIZE) < 0)
		memset(b, 0, sizeof(b));
	ev.type = (uint16_t)(b[0] | b[1] << 8);
	ev.code = (uint16_t)(b[2] | b[3] << 8);
	ev.value = vmm_get32(b + 4);
	in->stats.events++;
	if (in->listener.event)
		in->listener.event(in->listener.data, &ev);
	s->held = !in->repost;
}

/* Did the device leave a fault buffer's bytes alone where it must? */
static void check_fault(struct vmm_input *in, struct slot *s, uint32_t len)
{
	uint8_t b[MISC_SLOT];
	unsigned from = s->kind == SLOT_SHORT ? SHORT_LEN : 0;
	bool intact = vmm_mem_read(vmm_dev_mem(in->dev), s->gpa, b, MISC_SLOT) == 0;
	const char *what = s->kind == SLOT_SHORT ? "4-byte buffer" : "device-readable buffer";

	for (unsigned i = from; intact && i < MISC_SLOT; i++)
		intact = b[i] == FAULT_PATTERN;
	in->stats.fault_buffers_returned++;
	if (!intact)
		in->stats.fault_violations++;
	snprintf(in->stats.last_fault, sizeof(in->stats.last_fault),
			"%s returned, used len %u, %s", what, len,
			intact ? "nothing written where it must not be" :
			"the device wrote where it must not");
	if (in->listener.fault_returned)
		in->listener.fault_returned(in->listener.data,
				s->kind == SLOT_SHORT ? VMM_INPUT_FAULT_SHORT :
				VMM_INPUT_FAULT_READABLE, len);
	s->posted = false;
	s->kind = SLOT_FREE;
}

static void take(struct vmm_input *in, struct slot *s, uint32_t len)
{
	switch (s->kind) {
	case SLOT_EVENT:
		take_event(in, s, len);
		break;
	case SLOT_STATUS:
		s->posted = false;
		s->done = true;
		s->kind = SLOT_FREE;
		in->stats.status_done++;
		break;
	case SLOT_READABLE:
	case SLOT_SHORT:
		check_fault(in, s, len);
		break;
	case SLOT_FREE:
		break;
	}
}

/* Takes every used entry of queue q, re-posting event buffers, and kicks
 * once for all of them, as virtinput_recv_events does. 1 if any. */
static int drain(struct vmm_input *in, unsigned q)
{
	struct vmm_vring *vr = vmm_dev_vring(in->dev, q);
	unsigned taken = 0, reposted = 0;
	void *token;
	uint32_t len;
	int r;

	if (!vr)
		return 0;
	do {
		while ((r = vmm_vring_pop_used(vr, &token, &len)) == 1) {
			struct slot *s = token;

			taken++;
			take(in, s, len);
			if (s->kind == SLOT_EVENT && !s->held && !s->posted) {
				if (add_event_buffer(in, s) < 0)
					return -1;
				reposted++;
			}
		}
		if (r < 0) {
			vmm_dev_fail(in->dev, "%s", vmm_vring_error(vr));
			return -1;
		}
	} while (vmm_vring_enable_cb(vr));
	in->stats.reposted += reposted;
	if (reposted && vmm_dev_kick(in->dev, q) < 0)
		return -1;
	return taken > 0;
}

static bool used_pending(struct vmm_input *in, unsigned q)
{
	struct vmm_vring *vr = vmm_dev_vring(in->dev, q);

	return vr && vmm_vring_used_idx(vr) != vmm_vring_last_used(vr);
}

/* Entries in the used ring with no interrupt: after a grace period that
 * is a lost interrupt, which the guest behind QEMU would never see. */
static int check_lost_call(struct vmm_input *in, unsigned q)
{
	int r;

	if (!used_pending(in, q))
		return 0;
	r = vmm_dev_wait_call(in->dev, q, CALL_GRACE_MS);
	if (r != 0)
		return r;
	vmm_dev_fail(in->dev, "input vq%u: the used ring moved but the call fd was never "
			"signalled (signals on replaced call fds: %" PRIu64 ")", q,
			vmm_dev_stats(in->dev)->stale_calls[q]);
	return -1;
}

int vmm_input_wait(struct vmm_input *in, int timeout_ms)
{
	int r, got = 0;

	if (!vmm_dev_vring(in->dev, VMM_INPUT_EVENTQ))
		return ring(in, VMM_INPUT_EVENTQ) ? 0 : -1;
	/* Status completions first (never waited for here). */
	r = vmm_dev_wait_call(in->dev, VMM_INPUT_STATUSQ, 0);
	if (r < 0 || (r == 1 && drain(in, VMM_INPUT_STATUSQ) < 0))
		return -1;
	r = vmm_dev_wait_call(in->dev, VMM_INPUT_EVENTQ, timeout_ms);
	if (r == 0)
		r = check_lost_call(in, VMM_INPUT_EVENTQ);
	if (r < 0)
		return -1;
	if (r == 1) {
		got = drain(in, VMM_INPUT_EVENTQ);
		if (got < 0)
			return -1;
	}
	return got;
}

/* ------------------------------------------------------------------ */
/* Status events and fault buffers                                     */
/* ------------------------------------------------------------------ */

static struct slot *free_misc(struct vmm_input *in)
{
	for (unsigned i = 0; i < MISC_SLOTS; i++) {
		if (in->misc[i].kind == SLOT_FREE)
			return &in->misc[i];
	}
	vmm_dev_fail(in->dev, "no free status/fault slot (the device keeps them all)");
	return NULL;
}

static int wait_status(struct vmm_input *in, struct slot *s)
{
	int64_t deadline = vmm_now_ms() + vmm_dev_config(in->dev)->timeout_ms;

	while (!s->done) {
		int r = vmm_dev_wait_call(in->dev, VMM_INPUT_STATUSQ, vmm_remaining_ms(deadline));

		if (r == 0)
			r = check_lost_call(in, VMM_INPUT_STATUSQ);
		if (r < 0)
			return -1;
		if (r == 0) {
			vmm_dev_fail(in->dev, "the status event was not returned within %d ms",
					vmm_dev_config(in->dev)->timeout_ms);
			return -1;
		}
		if (drain(in, VMM_INPUT_STATUSQ) < 0)
			return -1;
	}
	return 0;
}

int vmm_input_send_status(struct vmm_input *in, const struct vmm_input_event *ev)
{
	struct vmm_vring *vr = ring(in, VMM_INPUT_STATUSQ);
	struct slot *s;
	uint8_t b[EVENT_SIZE];
	struct vmm_vbuf buf;

	if (!vr || alloc_buffers(in) < 0 || !(s = free_misc(in)))
		return -1;
	b[0] = (uint8_t)ev->type;
	b[1] = (uint8_t)(ev->type >> 8);
	b[2] = (uint8_t)ev->code;
	b[3] = (uint8_t)(ev->code >> 8);
	vmm_put32(b + 4, ev->value);
	buf = (struct vmm_vbuf){ .gpa = s->gpa, .len = EVENT_SIZE, .write = false };
	if (vmm_mem_write(vmm_dev_mem(in->dev), s->gpa, b, EVENT_SIZE) < 0 ||
			vmm_vring_add(vr, &buf, 1, s) < 0) {
		vmm_dev_fail(in->dev, "posting a status buffer: %s", vmm_vring_error(vr));
		return -1;
	}
	*s = (struct slot){ .kind = SLOT_STATUS, .gpa = s->gpa, .posted = true };
	in->stats.status_sent++;
	if (vmm_dev_kick(in->dev, VMM_INPUT_STATUSQ) < 0)
		return -1;
	return wait_status(in, s);
}

int vmm_input_inject(struct vmm_input *in, enum vmm_input_fault kind)
{
	struct vmm_vring *vr = ring(in, VMM_INPUT_EVENTQ);
	uint8_t pattern[MISC_SLOT];
	struct vmm_vbuf buf;
	struct slot *s;

	if (!vr || alloc_buffers(in) < 0 || !(s = free_misc(in)))
		return -1;
	memset(pattern, FAULT_PATTERN, sizeof(pattern));
	if (kind == VMM_INPUT_FAULT_READABLE)
		buf = (struct vmm_vbuf){ .gpa = s->gpa, .len = EVENT_SIZE, .write = false };
	else
		buf = (struct vmm_vbuf){ .gpa = s->gpa, .len = SHORT_LEN, .write = true };
	if (vmm_mem_write(vmm_dev_mem(in->dev), s->gpa, pattern, sizeof(pattern)) < 0 ||
			vmm_vring_add(vr, &buf, 1, s) < 0) {
		vmm_dev_fail(in->dev, "posting a fault buffer: %s", vmm_vring_error(vr));
		return -1;
	}
	*s = (struct slot){
		.kind = kind == VMM_INPUT_FAULT_READABLE ? SLOT_READABLE : SLOT_SHORT,
		.gpa = s->gpa, .posted = true,
	};
	return vmm_dev_kick(in->dev, VMM_INPUT_EVENTQ);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

static const struct {
	uint16_t type;
	const char *name;
} type_names[] = {
	{ EV_SYN, "EV_SYN" }, { EV_KEY, "EV_KEY" }, { EV_REL, "EV_REL" },
	{ EV_ABS, "EV_ABS" }, { EV_MSC, "EV_MSC" }, { EV_SW, "EV_SW" },
	{ EV_LED, "EV_LED" }, { EV_SND, "EV_SND" }, { EV_REP, "EV_REP" },
	{ EV_FF, "EV_FF" }, { EV_PWR, "EV_PWR" }, { EV_FF_STATUS, "EV_FF_STATUS" },
};

const char *vmm_input_type_name(uint16_t type)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (type_names[i].type == type)
			return type_names[i].name;
	}
	return NULL;
}

int vmm_input_type_parse(const char *text, uint16_t *type)
{
	char *end;
	unsigned long v;

	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (strcmp(type_names[i].name, text) == 0) {
			*type = type_names[i].type;
			return 0;
		}
	}
	errno = 0;
	v = strtoul(text, &end, 0);
	if (errno || end == text || *end || v > UINT16_MAX)
		return -1;
	*type = (uint16_t)v;
	return 0;
}
