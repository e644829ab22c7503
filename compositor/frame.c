#include "frame.h"

#include <stdlib.h>
#include <string.h>
#include <wlr/util/edges.h>

#include "cairo_buffer.h"
#include "text.h"

#define CW_TITLE_MAX_BYTES 256
#define CW_TITLE_PADDING 6

static void
set_color(float dst[static 4], uint32_t rgb)
{
	dst[0] = (float)((rgb >> 16) & 0xff) / 255.0f;
	dst[1] = (float)((rgb >> 8) & 0xff) / 255.0f;
	dst[2] = (float)(rgb & 0xff) / 255.0f;
	dst[3] = 1.0f;
}

void
cw_frame_default_colors(struct cw_frame_colors *colors)
{
	set_color(colors->active, CW_FRAME_HOST_ACTIVE);
	set_color(colors->inactive, CW_FRAME_HOST_INACTIVE);
	set_color(colors->text, 0xffffff);
	set_color(colors->close_button, 0xb03a2e);
}

static const float *
current_color(const struct cw_frame *frame)
{
	return frame->active ? frame->colors.active : frame->colors.inactive;
}

static int
title_bar_height(void)
{
	return CW_FRAME_TITLE_HEIGHT + CW_FRAME_BORDER;
}

static void
update_title_text(struct cw_frame *frame)
{
	if (frame->title_text != NULL) {
		wlr_scene_node_destroy(&frame->title_text->node);
		frame->title_text = NULL;
	}
	int max_width = frame->width + 2 * CW_FRAME_BORDER - 2 * CW_TITLE_PADDING -
		CW_FRAME_BUTTON_SIZE - CW_TITLE_PADDING;
	struct wlr_buffer *text = cw_text_render(frame->title, frame->colors.text,
		max_width, CW_FRAME_TITLE_HEIGHT);
	if (text == NULL) {
		return;
	}
	frame->title_text = wlr_scene_buffer_create(&frame->tree->node, text);
	/* The scene holds its own reference. */
	wlr_buffer_drop(text);
	if (frame->title_text != NULL) {
		wlr_scene_node_set_position(&frame->title_text->node,
			-CW_FRAME_BORDER + CW_TITLE_PADDING, -title_bar_height());
	}
}

static void
layout_parts(struct cw_frame *frame)
{
	int w = frame->width, h = frame->height, b = CW_FRAME_BORDER;
	int top = title_bar_height();
	wlr_scene_rect_set_size(frame->title_bar, w + 2 * b, top);
	wlr_scene_node_set_position(&frame->title_bar->node, -b, -top);
	wlr_scene_rect_set_size(frame->left, b, h);
	wlr_scene_node_set_position(&frame->left->node, -b, 0);
	wlr_scene_rect_set_size(frame->right, b, h);
	wlr_scene_node_set_position(&frame->right->node, w, 0);
	wlr_scene_rect_set_size(frame->bottom, w + 2 * b, b);
	wlr_scene_node_set_position(&frame->bottom->node, -b, h);
	int button_y = -top + (CW_FRAME_TITLE_HEIGHT - CW_FRAME_BUTTON_SIZE) / 2;
	wlr_scene_node_set_position(frame->close_button,
		w + b - CW_TITLE_PADDING - CW_FRAME_BUTTON_SIZE, button_y);
}

/* The close button: a rounded square in the button colour with a white cross. */
static struct wlr_scene_node *
create_close_button(struct wlr_scene_node *parent, const struct cw_frame_colors *colors)
{
	const int size = CW_FRAME_BUTTON_SIZE;
	struct cw_cairo_buffer *buffer = cw_cairo_buffer_create(size, size);
	if (buffer == NULL) {
		return &wlr_scene_tree_create(parent)->node; // an empty, harmless node
	}
	cairo_t *cr = cairo_create(buffer->surface);
	const float *c = colors->close_button;
	cairo_set_source_rgba(cr, c[0], c[1], c[2], c[3]);
	cairo_rectangle(cr, 0, 0, size, size);
	cairo_fill(cr);
	const float *t = colors->text;
	cairo_set_source_rgba(cr, t[0], t[1], t[2], t[3]);
	cairo_set_line_width(cr, 2.0);
	cairo_move_to(cr, 4.5, 4.5);
	cairo_line_to(cr, size - 4.5, size - 4.5);
	cairo_move_to(cr, size - 4.5, 4.5);
	cairo_line_to(cr, 4.5, size - 4.5);
	cairo_stroke(cr);
	cairo_destroy(cr);
	struct wlr_scene_buffer *node = wlr_scene_buffer_create(parent, &buffer->base);
	wlr_buffer_drop(&buffer->base);
	return node != NULL ? &node->node : &wlr_scene_tree_create(parent)->node;
}

void
cw_frame_init(struct cw_frame *frame, struct wlr_scene_node *parent,
	const struct cw_frame_colors *colors)
{
	*frame = (struct cw_frame){0};
	frame->colors = *colors;
	frame->tree = wlr_scene_tree_create(parent);
	const float *color = current_color(frame);
	frame->title_bar = wlr_scene_rect_create(&frame->tree->node, 0, 0, color);
	frame->left = wlr_scene_rect_create(&frame->tree->node, 0, 0, color);
	frame->right = wlr_scene_rect_create(&frame->tree->node, 0, 0, color);
	frame->bottom = wlr_scene_rect_create(&frame->tree->node, 0, 0, color);
	frame->close_button = create_close_button(&frame->tree->node, &frame->colors);
	layout_parts(frame);
}

void
cw_frame_finish(struct cw_frame *frame)
{
	/* The scene nodes go with the view's tree; only our own memory here. */
	free(frame->title);
	frame->title = NULL;
}

void
cw_frame_set_size(struct cw_frame *frame, int width, int height)
{
	if (width == frame->width && height == frame->height) {
		return;
	}
	bool width_changed = width != frame->width;
	frame->width = width;
	frame->height = height;
	layout_parts(frame);
	if (width_changed) {
		update_title_text(frame); // the ellipsis depends on the width
	}
}

void
cw_frame_set_active(struct cw_frame *frame, bool active)
{
	frame->active = active;
	const float *color = current_color(frame);
	wlr_scene_rect_set_color(frame->title_bar, color);
	wlr_scene_rect_set_color(frame->left, color);
	wlr_scene_rect_set_color(frame->right, color);
	wlr_scene_rect_set_color(frame->bottom, color);
}

void
cw_frame_set_title(struct cw_frame *frame, const char *title)
{
	char *clean = cw_text_sanitize(title, CW_TITLE_MAX_BYTES);
	if (clean == NULL) {
		return;
	}
	if (frame->title != NULL && strcmp(frame->title, clean) == 0) {
		free(clean);
		return;
	}
	free(frame->title);
	frame->title = clean;
	update_title_text(frame);
}

void
cw_frame_set_visible(struct cw_frame *frame, bool visible)
{
	wlr_scene_node_set_enabled(&frame->tree->node, visible);
}

enum cw_frame_part
cw_frame_part_at(const struct cw_frame *frame, double x, double y)
{
	if (!frame->tree->node.state.enabled) {
		return CW_FRAME_NONE;
	}
	int b = CW_FRAME_BORDER, top = title_bar_height();
	if (x < -b || x >= frame->width + b || y < -top || y >= frame->height + b) {
		return CW_FRAME_NONE;
	}
	if (x >= 0 && x < frame->width && y >= 0 && y < frame->height) {
		return CW_FRAME_NONE; // the content
	}
	if (y < -b && y >= -top) {
		int bx = frame->close_button->state.x;
		int by = frame->close_button->state.y;
		if (x >= bx && x < bx + CW_FRAME_BUTTON_SIZE &&
				y >= by && y < by + CW_FRAME_BUTTON_SIZE) {
			return CW_FRAME_CLOSE;
		}
		/* The outermost border row of the title bar still resizes. */
		if (y >= -top + b && x >= 0 && x < frame->width) {
			return CW_FRAME_TITLE;
		}
	}
	return CW_FRAME_BORDER_EDGE;
}

uint32_t
cw_frame_edges_at(const struct cw_frame *frame, double x, double y)
{
	/* Near a corner the grab covers both edges: the border is thin. */
	const int corner = 16;
	const uint32_t vertical = WLR_EDGE_TOP | WLR_EDGE_BOTTOM;
	const uint32_t horizontal = WLR_EDGE_LEFT | WLR_EDGE_RIGHT;
	int top = -title_bar_height();
	uint32_t edges = WLR_EDGE_NONE;
	if (x < 0) {
		edges |= WLR_EDGE_LEFT;
	} else if (x >= frame->width) {
		edges |= WLR_EDGE_RIGHT;
	}
	if (y < top + CW_FRAME_BORDER) {
		edges |= WLR_EDGE_TOP;
	} else if (y >= frame->height) {
		edges |= WLR_EDGE_BOTTOM;
	}
	if ((edges & vertical) && !(edges & horizontal)) {
		if (x < corner) {
			edges |= WLR_EDGE_LEFT;
		} else if (x >= frame->width - corner) {
			edges |= WLR_EDGE_RIGHT;
		}
	}
	if ((edges & horizontal) && !(edges & vertical)) {
		if (y < top + corner) {
			edges |= WLR_EDGE_TOP;
		} else if (y >= frame->height - corner) {
			edges |= WLR_EDGE_BOTTOM;
		}
	}
	return edges;
}
