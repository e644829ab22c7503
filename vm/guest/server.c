#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Statistics for benchmarks, one line on stderr on SIGUSR1 and at exit:
 * clients served, connected, and the bytes their wl_surface.commits copied
 * from wl_shm pools into guest blobs (connected clients included).
 */
static volatile sig_atomic_t stats_wanted;
static bool stats_at_exit;
static unsigned long clients_served;
static uint64_t gone_bytes_copied; // of clients already disconnected

static void on_sigusr1(int sig)
{
	(void)sig;
	stats_wanted = 1;
}

static void print_stats(const struct cwg_server *srv)
{
	uint64_t copied = gone_bytes_copied;
	for (unsigned i = 0; i < srv->nclients; i++)
		copied += srv->clients[i]->shm.bytes_copied;
	fprintf(stderr, "crossway-guest: stats: clients=%lu connected=%u shm_bytes_copied=%" PRIu64 "\n",
		clients_served, srv->nclients, copied);
}

int cwg_server_listen(struct cwg_server *srv, struct cwg_transport *transport,
	const char *name)
{
	memset(srv, 0, sizeof(*srv));
	srv->transport = transport;
	srv->listen_fd = srv->lock_fd = -1;
	const char *dir = getenv("XDG_RUNTIME_DIR");
	if (!dir || !*dir) {
		cwg_log(CWG_ERROR, "XDG_RUNTIME_DIR is not set");
		return -1;
	}
	if (name[0] == '/')
		dir = "";
	int n = snprintf(srv->path, sizeof(srv->path), "%s%s%s", dir, *dir ? "/" : "", name);
	if (n < 0 || (size_t)n >= sizeof(srv->path)) {
		cwg_log(CWG_ERROR, "socket path too long: %s/%s", dir, name);
		return -1;
	}
	snprintf(srv->lock_path, sizeof(srv->lock_path), "%s.lock", srv->path);
	srv->lock_fd = open(srv->lock_path, O_CREAT | O_CLOEXEC | O_RDWR, 0660);
	if (srv->lock_fd < 0 || flock(srv->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		cwg_log(CWG_ERROR, "%s is in use by another compositor or proxy", srv->path);
		if (srv->lock_fd >= 0)
			close(srv->lock_fd);
		srv->lock_fd = -1;
		srv->lock_path[0] = '\0';
		return -1;
	}
	unlink(srv->path);
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	memcpy(addr.sun_path, srv->path, strlen(srv->path) + 1);
	if (srv->listen_fd < 0 || bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
			listen(srv->listen_fd, 16) < 0) {
		cwg_log(CWG_ERROR, "cannot listen on %s: %s", srv->path, strerror(errno));
		return -1;
	}
	cwg_log(CWG_INFO, "listening on %s", srv->path);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	stats_at_exit = true;
	return 0;
}

static void accept_clients(struct cwg_server *srv)
{
	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				cwg_log(CWG_INFO, "accept: %s", strerror(errno));
			return;
		}
		if (srv->nclients >= CWG_MAX_CLIENTS) {
			cwg_log(CWG_ERROR, "refusing a client: %u clients already", CWG_MAX_CLIENTS);
			close(fd);
			continue;
		}
		struct cwg_client *c = cwg_client_new(srv->transport, fd);
		if (!c) {
			close(fd);
			continue;
		}
		cwg_log(CWG_INFO, "client connected");
		srv->clients[srv->nclients++] = c;
		clients_served++;
	}
}

enum tag_kind { TAG_LISTEN, TAG_TRANSPORT, TAG_SOCK, TAG_EVENTS, TAG_PIPE };
struct tag {
	enum tag_kind kind;
	struct cwg_client *client;
	unsigned index;
};

#define MAX_POLL (2 + CWG_MAX_CLIENTS * (2 + CWG_MAX_PIPES))

static void reap(struct cwg_server *srv)
{
	for (unsigned i = 0; i < srv->nclients; ) {
		struct cwg_client *c = srv->clients[i];
		if (!c->dead) {
			i++;
			continue;
		}
		if (c->sock >= 0)
			cwg_client_write_socket(c); // best effort: the error event
		cwg_log(CWG_INFO, "client disconnected");
		gone_bytes_copied += c->shm.bytes_copied;
		cwg_client_destroy(c);
		srv->clients[i] = srv->clients[--srv->nclients];
	}
}

int cwg_server_run(struct cwg_server *srv, volatile sig_atomic_t *stop)
{
	static struct pollfd pfd[MAX_POLL];
	static struct tag tags[MAX_POLL];
	const struct cwg_transport_impl *impl = srv->transport->impl;
	while (!*stop) {
		if (stats_wanted) {
			stats_wanted = 0;
			print_stats(srv);
		}
		unsigned n = 0;
		pfd[n] = (struct pollfd){ srv->listen_fd, POLLIN, 0 };
		tags[n++] = (struct tag){ TAG_LISTEN, NULL, 0 };
		int tfd = impl->poll_fd ? impl->poll_fd(srv->transport) : -1;
		if (tfd >= 0) {
			pfd[n] = (struct pollfd){ tfd, POLLIN, 0 };
			tags[n++] = (struct tag){ TAG_TRANSPORT, NULL, 0 };
		}
		for (unsigned i = 0; i < srv->nclients; i++) {
			struct cwg_client *c = srv->clients[i];
			short ev = POLLIN;
			if (cwg_client_wants_write(c))
				ev |= POLLOUT;
			pfd[n] = (struct pollfd){ c->sock, ev, 0 };
			tags[n++] = (struct tag){ TAG_SOCK, c, 0 };
			pfd[n] = (struct pollfd){ impl->event_fd(c->ctx), POLLIN, 0 };
			tags[n++] = (struct tag){ TAG_EVENTS, c, 0 };
			for (unsigned p = 0; p < CWG_MAX_PIPES; p++) {
				short pev = cwg_client_pipe_events(c, p);
				if (!pev)
					continue;
				pfd[n] = (struct pollfd){ c->pipes[p].fd, pev, 0 };
				tags[n++] = (struct tag){ TAG_PIPE, c, p };
			}
		}
		int r = poll(pfd, n, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			cwg_log(CWG_ERROR, "poll: %s", strerror(errno));
			return -1;
		}
		bool transport_ready = false;
		for (unsigned i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			struct cwg_client *c = tags[i].client;
			if (c && c->dead)
				continue;
			switch (tags[i].kind) {
			case TAG_LISTEN:
				accept_clients(srv);
				break;
			case TAG_TRANSPORT:
				transport_ready = true;
				break;
			case TAG_SOCK:
				if (pfd[i].revents & POLLOUT)
					cwg_client_write_socket(c);
				if (!c->dead && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
					cwg_client_read_socket(c);
				break;
			case TAG_EVENTS:
				cwg_client_events(c);
				if (!c->dead && cwg_client_wants_write(c))
					cwg_client_write_socket(c);
				break;
			case TAG_PIPE:
				cwg_client_pipe_ready(c, tags[i].index, pfd[i].revents);
				break;
			}
		}
		if (transport_ready) {
			if (impl->dispatch(srv->transport) < 0) {
				cwg_log(CWG_ERROR, "the virtio-gpu transport failed");
				return -1;
			}
			for (unsigned i = 0; i < srv->nclients; i++) {
				struct cwg_client *c = srv->clients[i];
				if (!c->dead)
					cwg_client_events(c);
				if (!c->dead && cwg_client_wants_write(c))
					cwg_client_write_socket(c);
			}
		}
		reap(srv);
	}
	return 0;
}

void cwg_server_finish(struct cwg_server *srv)
{
	if (stats_at_exit)
		print_stats(srv);
	stats_at_exit = false;
	for (unsigned i = 0; i < srv->nclients; i++)
		cwg_client_destroy(srv->clients[i]);
	srv->nclients = 0;
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		unlink(srv->path);
	}
	if (srv->lock_fd >= 0) {
		close(srv->lock_fd);
		unlink(srv->lock_path);
	}
	srv->listen_fd = srv->lock_fd = -1;
}
