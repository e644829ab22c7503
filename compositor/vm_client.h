#ifndef CW_VM_CLIENT_H
#define CW_VM_CLIENT_H

#include <stdint.h>
#include <wayland-server-core.h>

struct cw_vm;

/*
 * Wayland clients that a VM's guest applications open through virtio-gpu
 * cross-domain contexts. Each is an ordinary wl_client of crossway's
 * display whose connection is a socketpair: one end is the client, the
 * other belongs to the VM's device, which streams the guest's bytes and fds
 * through it. This registry remembers which VM every such client belongs
 * to: that is what the window frames, the global filter and crossway's
 * wl_shm for guests look at. Host clients are not in it.
 */

/*
 * Makes a new client of `display` for `vm` (cross-domain context `ctx_id`,
 * for logs) and returns the other end of its connection: a connected,
 * non-blocking, close-on-exec SOCK_STREAM unix socket the caller owns. The
 * device serves it from crossway's own event loop, so it must never block.
 * Returns a negative errno on failure.
 */
int cw_vm_client_connect(struct cw_vm *vm, struct wl_display *display, uint32_t ctx_id);

/*
 * How many fds the newest client of `vm` for context `ctx_id` has taken
 * from its connection (carried by requests it dispatched), or UINT64_MAX
 * if there is none. Fds received and not taken by a request stay in
 * libwayland's connection until the client goes: the device bounds them.
 */
uint64_t cw_vm_client_fds_taken(struct cw_vm *vm, uint32_t ctx_id);

/* The VM `client` belongs to, or NULL for a host client. */
struct cw_vm *cw_vm_from_client(struct wl_client *client);

/*
 * Destroys every client of `vm` (the VM disconnected or goes away), so
 * nothing of crossway still points at it. vm->clients must have been
 * initialised (wl_list_init) before the first connect.
 */
void cw_vm_clients_destroy(struct cw_vm *vm);

#endif
