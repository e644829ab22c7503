#include <string.h>
#include <wlr/types/wlr_scene.h>
#include <wlr/util/edges.h>

#include "check.h"
#include "frame.h"

int
main(void)
{
	struct wlr_scene *scene = wlr_scene_create();
	struct cw_frame_colors colors;
	cw_frame_default_colors(&colors);
	struct cw_frame frame;
	cw_frame_init(&frame, &scene->node, &colors);
	cw_frame_set_size(&frame, 200, 100);
	cw_frame_set_title(&frame, "title\n");
	CHECK_STR(frame.title, "title_");

	const int b = CW_FRAME_BORDER, top = CW_FRAME_TITLE_HEIGHT + CW_FRAME_BORDER;
	/* Content is not frame. */
	CHECK(cw_frame_part_at(&frame, 0, 0) == CW_FRAME_NONE);
	CHECK(cw_frame_part_at(&frame, 199, 99) == CW_FRAME_NONE);
	/* Outside everything. */
	CHECK(cw_frame_part_at(&frame, -b - 1, 10) == CW_FRAME_NONE);
	CHECK(cw_frame_part_at(&frame, 10, -top - 1) == CW_FRAME_NONE);
	CHECK(cw_frame_part_at(&frame, 200 + b, 10) == CW_FRAME_NONE);
	/* Title bar, close button, borders. */
	CHECK(cw_frame_part_at(&frame, 50, -10) == CW_FRAME_TITLE);
	int bx = frame.close_button->state.x, by = frame.close_button->state.y;
	CHECK(bx + CW_FRAME_BUTTON_SIZE <= 200 + b && by >= -top);
	CHECK(cw_frame_part_at(&frame, bx + 1, by + 1) == CW_FRAME_CLOSE);
	CHECK(cw_frame_part_at(&frame, -1, 50) == CW_FRAME_BORDER_EDGE);
	CHECK(cw_frame_part_at(&frame, 200, 50) == CW_FRAME_BORDER_EDGE);
	CHECK(cw_frame_part_at(&frame, 50, 100) == CW_FRAME_BORDER_EDGE);
	CHECK(cw_frame_part_at(&frame, 50, -top) == CW_FRAME_BORDER_EDGE);

	/* Edges, with generous corners. */
	CHECK(cw_frame_edges_at(&frame, -1, 50) == WLR_EDGE_LEFT);
	CHECK(cw_frame_edges_at(&frame, 200, 50) == WLR_EDGE_RIGHT);
	CHECK(cw_frame_edges_at(&frame, 100, 100) == WLR_EDGE_BOTTOM);
	CHECK(cw_frame_edges_at(&frame, 100, -top) == WLR_EDGE_TOP);
	CHECK(cw_frame_edges_at(&frame, 5, 100) == (WLR_EDGE_BOTTOM | WLR_EDGE_LEFT));
	CHECK(cw_frame_edges_at(&frame, 200, 95) == (WLR_EDGE_BOTTOM | WLR_EDGE_RIGHT));
	CHECK(cw_frame_edges_at(&frame, -1, -top + 3) == (WLR_EDGE_TOP | WLR_EDGE_LEFT));

	/* A hidden frame (fullscreen, client-side decorations) is never hit. */
	cw_frame_set_visible(&frame, false);
	CHECK(cw_frame_part_at(&frame, 50, -10) == CW_FRAME_NONE);

	/* Colours follow focus. */
	cw_frame_set_visible(&frame, true);
	cw_frame_set_active(&frame, true);
	CHECK(memcmp(frame.title_bar->color, colors.active, sizeof(colors.active)) == 0);
	cw_frame_set_active(&frame, false);
	CHECK(memcmp(frame.left->color, colors.inactive, sizeof(colors.inactive)) == 0);

	cw_frame_finish(&frame);
	wlr_scene_node_destroy(&scene->node);
	CHECK_DONE();
}
