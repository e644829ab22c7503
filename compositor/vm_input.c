#include "vm_input.h"

#include <math.h>
#include <wlr/types/wlr_pointer.h>

#include "seat.h"
#include "view.h"
#include "virtio_input.h"
#include "vm.h"

/* libinput's convention: 15 units of smooth scrolling make one wheel click. */
#define SCROLL_UNITS_PER_CLICK 15.0

static struct vinput_device *
input_of(struct cw_view *view)
{
	struct cw_vm_view *vview = view != NULL ? cw_vm_view_from_view(view) : NULL;
	return vview != NULL ? vview->vm->input : NULL;
}

/* A window offset to the tablet's range: the pixel under the pointer, scaled. */
static uint32_t
to_abs(double offset, int size)
{
	if (size <= 0 || offset <= 0) {
		return 0;
	}
	double value = floor(offset * (VINPUT_ABS_MAX + 1.0) / size);
	return value >= VINPUT_ABS_MAX ? VINPUT_ABS_MAX : (uint32_t)value;
}

static void
send_motion(struct cw_view *view, double lx, double ly)
{
	vinput_device_motion(input_of(view), to_abs(lx - view->x, view->width),
		to_abs(ly - view->y, view->height));
}

bool
cw_vm_input_key(struct cw_view *view, uint32_t keycode, bool pressed)
{
	if (view == NULL || !cw_view_is_vm(view)) {
		return false;
	}
	/* libinput keycodes are evdev codes already: the guest gets them as they are. */
	vinput_device_key(input_of(view), keycode, pressed);
	return true;
}

void
cw_vm_input_focus_lost(struct cw_view *view)
{
	vinput_device_release_keys(input_of(view));
}

/* The pointer now belongs to `view` (a VM display or NULL). */
static void
set_owner(struct cw_seat *seat, struct cw_view *view)
{
	if (seat->vm_pointer_view == view) {
		return;
	}
	vinput_device_release_buttons(input_of(seat->vm_pointer_view));
	seat->vm_pointer_view = view;
	seat->vm_scroll[0] = seat->vm_scroll[1] = 0.0;
}

bool
cw_vm_input_motion(struct cw_seat *seat, struct cw_view *over, double lx, double ly)
{
	struct cw_view *owner = seat->vm_pointer_view;
	if (owner != NULL && vinput_device_buttons_down(input_of(owner))) {
		/* Like a drag in a VM viewer: the guest follows until the buttons go up. */
		send_motion(owner, lx, ly);
		return true;
	}
	set_owner(seat, over);
	if (over != NULL) {
		send_motion(over, lx, ly);
	}
	return false;
}

bool
cw_vm_input_button(struct cw_seat *seat, struct cw_view *over, uint32_t button, bool pressed)
{
	if (pressed) {
		if (over == NULL || !cw_view_is_vm(over)) {
			return false;
		}
		set_owner(seat, over);
		send_motion(over, seat->cursor->x, seat->cursor->y);
		vinput_device_button(input_of(over), button, true);
		return true;
	}
	struct cw_view *owner = seat->vm_pointer_view;
	if (owner == NULL) {
		return false;
	}
	vinput_device_button(input_of(owner), button, false);
	return true;
}

/* Whole wheel clicks in `axis`, from discrete steps or accumulated smooth motion. */
static int32_t
scroll_clicks(struct cw_seat *seat, int axis, double delta, int32_t discrete)
{
	if (discrete != 0) {
		seat->vm_scroll[axis] = 0.0;
		return discrete;
	}
	seat->vm_scroll[axis] += delta;
	double clicks = trunc(seat->vm_scroll[axis] / SCROLL_UNITS_PER_CLICK);
	seat->vm_scroll[axis] -= clicks * SCROLL_UNITS_PER_CLICK;
	return (int32_t)clicks;
}

bool
cw_vm_input_axis(struct cw_seat *seat, const struct wlr_event_pointer_axis *event)
{
	struct cw_view *owner = seat->vm_pointer_view;
	if (owner == NULL) {
		return false;
	}
	bool vertical = event->orientation == WLR_AXIS_ORIENTATION_VERTICAL;
	int32_t clicks = scroll_clicks(seat, vertical ? 0 : 1, event->delta, event->delta_discrete);
	if (clicks != 0) {
		/* Wayland's positive vertical axis scrolls down; evdev's REL_WHEEL up. */
		vinput_device_scroll(input_of(owner), vertical ? -clicks : 0, vertical ? 0 : clicks);
	}
	return true;
}

void
cw_vm_input_pointer_lost(struct cw_seat *seat)
{
	set_owner(seat, NULL);
}

void
cw_vm_input_view_gone(struct cw_seat *seat, struct cw_view *view)
{
	if (!cw_view_is_vm(view)) {
		return;
	}
	if (seat->focused_view == view) {
		cw_vm_input_focus_lost(view);
	}
	if (seat->vm_pointer_view == view) {
		set_owner(seat, NULL);
	}
}
