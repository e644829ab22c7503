#ifndef CW_VM_SHM_H
#define CW_VM_SHM_H

#include <stdbool.h>
#include <wayland-server-core.h>
#include <wlr/render/wlr_renderer.h>

/*
 * crossway's own wl_shm, offered to VM clients only (the global filter,
 * vm_policy.c, hides libwayland's from them and this one from host
 * clients). A guest's shm pool lives in guest memory: the fd in
 * wl_shm.create_pool is the placeholder the VM's device sent for a guest
 * blob (vgpu_blob_export_fd), turned back into that blob here
 * (vgpu_blob_import_fd). Buffers are images inside the blob
 * (vgpu_blob_image_create): the renderer samples the guest's pages, no
 * byte is copied on the way (a GLES2 renderer still uploads them to a
 * texture unless the blob has a udmabuf).
 *
 * Everything the guest sends is checked; a bad value is a wl_shm protocol
 * error that ends that client, never a crash. wl_buffer.release is sent
 * when wlroots lets go of a buffer.
 */
struct cw_vm_shm;

/*
 * Pools one client may have (a protocol error beyond). A pool keeps no fd,
 * only a lock on its blob, whose mappings stay charged to the VM.
 */
#define CW_VM_SHM_MAX_POOLS 1024

/*
 * Creates the global; it goes with the display (wl_display_destroy, after
 * the clients). Formats: ARGB8888 and XRGB8888, plus the other 32-bit
 * formats of virtio-gpu that `renderer` can texture (NULL: only those two).
 * Registers the wl_buffer kind with wlroots (once per process).
 */
struct cw_vm_shm *cw_vm_shm_create(struct wl_display *display, struct wlr_renderer *renderer);
/* Whether `global` is this wl_shm (for the global filter). */
bool cw_vm_shm_is_global(const struct cw_vm_shm *shm, const struct wl_global *global);

#endif
