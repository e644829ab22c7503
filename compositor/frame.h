#ifndef CW_FRAME_H
#define CW_FRAME_H

#include <stdbool.h>
#include <stdint.h>
#include <wlr/types/wlr_scene.h>

/*
 * crossway's window frame: a title bar with the window's title and a
 * close button, and thin borders, drawn with scene rects around the
 * content. The frame is drawn by the compositor, never by the client, so
 * it is the place where a window's origin (host or which VM) is shown.
 */
#define CW_FRAME_BORDER 2
#define CW_FRAME_TITLE_HEIGHT 24
#define CW_FRAME_BUTTON_SIZE 16
/* crossway's own frame colours (host windows); no VM may look like them. */
#define CW_FRAME_HOST_ACTIVE 0x285577
#define CW_FRAME_HOST_INACTIVE 0x3a3a3a
/* An unfocused VM window's frame: its VM colour scaled by this. */
#define CW_FRAME_VM_INACTIVE_SCALE 0.55f

enum cw_frame_part {
	CW_FRAME_NONE = 0,
	CW_FRAME_TITLE,
	CW_FRAME_CLOSE,
	CW_FRAME_BORDER_EDGE, // see cw_frame_edges_at for which edges
};

struct cw_frame_colors {
	float active[4];
	float inactive[4];
	float text[4];
	float close_button[4];
};

struct cw_frame {
	struct wlr_scene_tree *tree; // child of the view tree, below surfaces
	struct wlr_scene_rect *title_bar;
	struct wlr_scene_rect *left, *right, *bottom;
	struct wlr_scene_node *close_button;
	struct wlr_scene_buffer *title_text; // NULL when the title is empty
	struct cw_frame_colors colors;
	char *title;
	int width, height; // content size the frame surrounds
	bool active;
};

void cw_frame_init(struct cw_frame *frame, struct wlr_scene_node *parent,
	const struct cw_frame_colors *colors);
void cw_frame_finish(struct cw_frame *frame);
void cw_frame_set_size(struct cw_frame *frame, int width, int height);
void cw_frame_set_active(struct cw_frame *frame, bool active);
/* title may be NULL; it is sanitised before it is drawn. */
void cw_frame_set_title(struct cw_frame *frame, const char *title);
void cw_frame_set_visible(struct cw_frame *frame, bool visible);

/* Which part of the frame is at (x, y), relative to the content origin. */
enum cw_frame_part cw_frame_part_at(const struct cw_frame *frame, double x, double y);
/* The resize edges (enum wlr_edges) for a border point. */
uint32_t cw_frame_edges_at(const struct cw_frame *frame, double x, double y);

void cw_frame_default_colors(struct cw_frame_colors *colors);

#endif
