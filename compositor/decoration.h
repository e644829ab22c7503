#ifndef CW_DECORATION_H
#define CW_DECORATION_H

struct cw_server;

/*
 * Decoration negotiation: xdg-decoration and KDE's server-decoration.
 * crossway draws the frame unless a client asks to draw its own.
 */
void cw_decoration_init(struct cw_server *server);
void cw_decoration_finish(struct cw_server *server);

#endif
