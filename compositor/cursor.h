#ifndef CW_CURSOR_H
#define CW_CURSOR_H

#include <stdbool.h>

struct cw_seat;

/*
 * The pointer half of the seat: cursor motion, buttons, scrolling,
 * interactive move and resize, pointer constraints and relative motion.
 */
bool cw_cursor_init(struct cw_seat *seat);
void cw_cursor_finish(struct cw_seat *seat);
/* The keyboard focus moved: a constraint may become active or inactive. */
void cw_cursor_update_constraint(struct cw_seat *seat);
/* Super+Escape: frees a locked or confined pointer until the focus moves. */
void cw_cursor_release_constraint(struct cw_seat *seat);

#endif
