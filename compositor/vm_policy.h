#ifndef CW_VM_POLICY_H
#define CW_VM_POLICY_H

#include <stdbool.h>
#include <wayland-server-core.h>

struct cw_vm_shm;

/*
 * What a VM's guest applications may see of crossway
 * (shared/reference/peers-and-policy.md §2): a wl_display global filter
 * hides host-only globals from VM clients, gives them crossway's wl_shm
 * for guest memory (vm_shm.c) instead of libwayland's, and hides that one
 * from host clients. Hidden globals cannot be bound either (libwayland
 * checks the filter on bind). A display has one filter: anything else
 * crossway wants to hide must be added here.
 */
void cw_vm_policy_init(struct wl_display *display, const struct cw_vm_shm *vm_shm);

/* The filter itself: whether `client` may see `global`. */
bool cw_vm_policy_global_visible(const struct wl_client *client, const struct wl_global *global,
	void *vm_shm);

/* Whether a VM client may see a global of this interface (by name). */
bool cw_vm_policy_interface_allowed(const char *interface_name);

#endif
