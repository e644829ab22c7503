#ifndef VU_VHOST_USER_H
#define VU_VHOST_USER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wayland-server-core.h>
#include <wlr/util/log.h>

#include "guest_memory.h"
#include "virtqueue.h"

/*
 * The vhost-user back end (docs: ../shared/reference/vhost-user.md): a
 * listening socket per device, one front end (VMM) at a time, every
 * message handled inside crossway's wl_event_loop. Kick eventfds become
 * event sources; nothing blocks on a guest or busy-polls. A front end that
 * breaks the protocol is disconnected; the device then sees `disconnected`
 * and a later connection starts a fresh device.
 */
#define VU_MAX_QUEUES 8

struct vu_server;
struct vu_dev;

/* What a device (virtio-gpu, later virtio-input) plugs into the back end. */
struct vu_device_ops {
	/* Device feature bits (0-23) offered; transport bits are added by vu. */
	uint64_t device_features;
	/* Protocol features offered (CONFIG is always added: QEMU requires it). */
	uint64_t protocol_features;
	unsigned num_queues;
	/* GET_CONFIG: fill `size` bytes of config space from `offset`; false = refuse. */
	bool (*get_config)(void *data, uint32_t offset, uint8_t *buf, uint32_t size);
	/* SET_CONFIG: the driver wrote config space (e.g. events_clear). */
	bool (*set_config)(void *data, uint32_t offset, const uint8_t *buf, uint32_t size);
	/* SET_FEATURES arrived with these (guest-acked) features. */
	void (*features_set)(void *data, uint64_t features);
	/* Queue `index` may have new chains (kick, or a ring was just started). */
	void (*queue_kicked)(void *data, struct vu_dev *dev, unsigned index);
	/*
	 * A queue is being stopped (GET_VRING_BASE) or the memory table is about
	 * to change: drop every chain of that queue still held (pointers into
	 * guest memory die with it), without pushing them.
	 */
	void (*queue_stopped)(void *data, struct vu_dev *dev, unsigned index);
	/* GPU_SET_SOCKET (vhost-user-gpu only): ownership of fd passes to the device. */
	void (*gpu_socket)(void *data, int fd);
	/* A front end connected (dev is valid until disconnected). */
	void (*connected)(void *data, struct vu_dev *dev);
	/* The front end went away or was dropped; dev is destroyed right after. */
	void (*disconnected)(void *data, struct vu_dev *dev);
};

/*
 * Listens on `path` (an existing socket file is replaced only if nobody
 * listens on it). `name` identifies the VM in logs. Returns NULL on error.
 */
struct vu_server *vu_server_create(struct wl_event_loop *loop, const char *path,
	const char *name, const struct vu_device_ops *ops, void *data);
/* Disconnects any front end, closes and unlinks the socket. Accepts NULL. */
void vu_server_destroy(struct vu_server *server);
const char *vu_server_name(const struct vu_server *server);

/* --- for the device, while connected -------------------------------------- */

/* The VM's memory; valid until the next memory-table change or disconnect. */
const struct vu_guest_memory *vu_dev_memory(struct vu_dev *dev);
/* Negotiated virtio features. */
uint64_t vu_dev_features(struct vu_dev *dev);
/* Takes the next chain of a started, enabled queue: see vu_virtq_pop. */
int vu_dev_pop(struct vu_dev *dev, unsigned index, struct vu_chain *chain);
/* Returns a chain (used ring) and interrupts the guest if it wants one. */
void vu_dev_push(struct vu_dev *dev, unsigned index, const struct vu_chain *chain,
	uint32_t written);
/*
 * Tells the front end the config space changed (back-end request
 * CONFIG_CHANGE_MSG), if it gave a back-end channel (needs the device to
 * offer SLAVE_REQ in protocol_features). False if there is no channel.
 */
bool vu_dev_notify_config_change(struct vu_dev *dev);
/* Drops the connection (protocol violation by the front end or guest). */
void vu_dev_disconnect(struct vu_dev *dev, const char *reason);
const char *vu_dev_name(const struct vu_dev *dev);

/* Logs "[vm NAME] PREFIX message": devices name the VM in every line. */
void vu_vm_logv(enum wlr_log_importance level, const char *vm_name, const char *prefix,
	const char *fmt, va_list args);

#endif
