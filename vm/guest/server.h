#ifndef CWG_SERVER_H
#define CWG_SERVER_H

/* The listening socket and the single-threaded poll(2) loop over clients,
 * their contexts' fence events and their pipes. */

#include <signal.h>
#include <sys/un.h>

#include "client.h"
#include "transport.h"

struct cwg_server {
	struct cwg_transport *transport;
	int listen_fd, lock_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	struct cwg_client *clients[CWG_MAX_CLIENTS];
	unsigned nclients;
};

/* Listens on $XDG_RUNTIME_DIR/name. 0 or -1 (after printing why). */
int cwg_server_listen(struct cwg_server *srv, struct cwg_transport *transport,
	const char *name);
/* Runs until *stop is set; 0, or -1 when the transport failed. */
int cwg_server_run(struct cwg_server *srv, volatile sig_atomic_t *stop);
void cwg_server_finish(struct cwg_server *srv);

#endif
