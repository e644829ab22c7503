#include "vm_policy.h"

#include <string.h>
#include <wayland-server-protocol.h>

#include "vm_client.h"
#include "vm_shm.h"

/*
 * Globals VM clients never see, and why. Everything else is offered to
 * them as to host clients; the notable choices among those:
 *  - xdg_activation_v1: offered, but a token minted by a VM client only
 *    moves the focus to a window of the same VM, and only when minted for
 *    this seat's input while that client had the focus (server.c).
 *  - zwp_idle_inhibit_manager_v1: offered; an inhibitor holds only while
 *    its window can be seen (a guest's video player keeps the screen on).
 *  - zwp_pointer_constraints_v1, zwp_relative_pointer_manager_v1: offered;
 *    a lock takes hold only with the pointer inside the focused window and
 *    Super+Escape always frees it.
 *  - zxdg_decoration_manager_v1, org_kde_kwin_server_decoration_manager:
 *    offered; a VM client is always given crossway's frame (decoration.c).
 *  - wl_data_device_manager: offered (clipboard and drag and drop work as
 *    for host clients, with the keyboard focus); an explicit, user-driven
 *    cross-domain clipboard (§2 rule 11) is not implemented yet.
 * Names are listed even where crossway has no such global yet, so adding
 * one later does not expose it to guests by accident.
 */
static const char *const host_only_interfaces[] = {
	/* Synthesise input to any window, the host's and other VMs' (rules 1, 13). */
	"zwp_virtual_keyboard_manager_v1",
	"zwlr_virtual_pointer_manager_v1",
	"zwp_input_method_manager_v2",
	"zwp_input_method_manager_v1",
	/* Read every window's pixels (rule 13). */
	"zwlr_screencopy_manager_v1",
	"zwlr_export_dmabuf_manager_v1",
	"ext_image_copy_capture_manager_v1",
	/* Read and replace the clipboard without the focus (rules 11, 13). */
	"zwlr_data_control_manager_v1",
	"ext_data_control_manager_v1",
	/*
	 * The primary selection changes with every text selection made anywhere,
	 * without any copy action: a VM would read what the user merely selected
	 * in a host window. Guests keep the explicit clipboard (wl_data_device).
	 */
	"zwp_primary_selection_device_manager_v1",
	"gtk_primary_selection_device_manager",
	/* Reconfigure or blank the host's outputs (rule 13). */
	"zwlr_output_manager_v1",
	"zwlr_output_power_manager_v1",
	"zwlr_gamma_control_manager_v1",
	/* Grab all input, cover the screen, lock it (rules 3, 8, 13). */
	"zwlr_input_inhibit_manager_v1",
	"zwlr_layer_shell_v1",
	"ext_session_lock_manager_v1",
	/* Observe when the user is active on the host (rule 13: idle). */
	"org_kde_kwin_idle",
	"ext_idle_notifier_v1",
	/* List and control every window, including the host's (rule 13). */
	"zwlr_foreign_toplevel_manager_v1",
	"ext_foreign_toplevel_list_v1",
	/*
	 * Guest buffers come only through crossway's wl_shm: the device passes
	 * guest memory to the compositor as blob placeholders, never as dmabufs,
	 * and no guest fd should reach the GPU driver's import paths.
	 */
	"zwp_linux_dmabuf_v1",
	"wl_drm",
};

bool
cw_vm_policy_interface_allowed(const char *interface_name)
{
	for (size_t i = 0; i < sizeof(host_only_interfaces) / sizeof(host_only_interfaces[0]); i++) {
		if (strcmp(interface_name, host_only_interfaces[i]) == 0) {
			return false;
		}
	}
	return true;
}

bool
cw_vm_policy_global_visible(const struct wl_client *client, const struct wl_global *global,
	void *data)
{
	const struct cw_vm_shm *vm_shm = data;
	/* The registry only reads the client; the lookup API is not const. */
	bool guest = cw_vm_from_client((struct wl_client *)client) != NULL;
	if (cw_vm_shm_is_global(vm_shm, global)) {
		return guest;
	}
	const struct wl_interface *interface = wl_global_get_interface(global);
	if (!guest) {
		return true;
	}
	/* libwayland's wl_shm maps host files; guests have crossway's instead. */
	if (interface == &wl_shm_interface) {
		return false;
	}
	return cw_vm_policy_interface_allowed(interface->name);
}

void
cw_vm_policy_init(struct wl_display *display, const struct cw_vm_shm *vm_shm)
{
	wl_display_set_global_filter(display, cw_vm_policy_global_visible, (void *)vm_shm);
}
