#ifndef CW_VM_INPUT_H
#define CW_VM_INPUT_H

#include <stdbool.h>
#include <stdint.h>

struct cw_seat;
struct cw_view;
struct wlr_event_pointer_axis;

/*
 * Host input into a VM's display window, delivered through the VM's
 * virtio-input device (vm/virtio_input.h): keys while the window has the
 * keyboard focus, the pointer while it is over the window's content (or
 * while a button the guest got is held). Nothing reaches another VM, and
 * whatever the guest holds down is released when the window loses the focus
 * or the pointer, or goes away. Views that are not VM displays are ignored
 * by every function here.
 */

/* A key for the focused view. True if it went to a VM (the seat skips it). */
bool cw_vm_input_key(struct cw_view *view, uint32_t keycode, bool pressed);
/* The view lost the keyboard focus: the guest's keys go up. */
void cw_vm_input_focus_lost(struct cw_view *view);

/*
 * The pointer moved to layout (lx, ly). `over` is the VM view whose content
 * is under it, or NULL. Returns true while a VM owns the pointer (content
 * under it, or a guest button held): the seat then leaves it alone.
 */
bool cw_vm_input_motion(struct cw_seat *seat, struct cw_view *over, double lx, double ly);
/* A button on the VM view owning the pointer; true if the guest got it. */
bool cw_vm_input_button(struct cw_seat *seat, struct cw_view *over, uint32_t button,
	bool pressed);
/* A scroll while a VM owns the pointer; true if the guest got it. */
bool cw_vm_input_axis(struct cw_seat *seat, const struct wlr_event_pointer_axis *event);
/* crossway takes the pointer (a move, a press elsewhere): the guest's buttons go up. */
void cw_vm_input_pointer_lost(struct cw_seat *seat);
/* The view is going away (unmapped or destroyed): release what its VM holds. */
void cw_vm_input_view_gone(struct cw_seat *seat, struct cw_view *view);

#endif
