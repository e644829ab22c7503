#define _GNU_SOURCE // SOCK_CLOEXEC, SOCK_NONBLOCK
#include "vm_client.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wlr/util/log.h>

#include "vm.h"

/* One guest application's connection. */
struct cw_vm_client {
	struct wl_list link; // cw_vm.clients
	struct cw_vm *vm;
	struct wl_client *client;
	uint32_t ctx_id;
	uint64_t fds_taken; // fds carried by the requests dispatched so far
	struct wl_listener destroy; // client's destroy: the entry goes with it
};

static void
handle_client_destroy(struct wl_listener *listener, void *data)
{
	struct cw_vm_client *entry = wl_container_of(listener, entry, destroy);
	wlr_log(WLR_INFO, "[vm %s] guest client gone (context %u)", entry->vm->config.name,
		entry->ctx_id);
	wl_list_remove(&entry->link);
	wl_list_remove(&entry->destroy.link);
	free(entry);
}

struct cw_vm *
cw_vm_from_client(struct wl_client *client)
{
	if (client == NULL) {
		return NULL;
	}
	/* Only VM clients carry this listener: no table to search or keep in sync. */
	struct wl_listener *listener = wl_client_get_destroy_listener(client, handle_client_destroy);
	if (listener == NULL) {
		return NULL;
	}
	struct cw_vm_client *entry = wl_container_of(listener, entry, destroy);
	return entry->vm;
}

/* Fds a message takes: its 'h' arguments (the signature also holds versions and '?'). */
static unsigned
message_fds(const struct wl_message *message)
{
	unsigned n = 0;
	for (const char *c = message->signature; *c != '\0'; c++) {
		n += *c == 'h';
	}
	return n;
}

/*
 * Every request libwayland dispatches passes here first, with the fds it
 * took from the client's connection. The device asks for the count: fds
 * a guest sends that no request takes stay in that connection.
 */
static void
log_request(void *data, enum wl_protocol_logger_type type,
	const struct wl_protocol_logger_message *message)
{
	(void)data;
	if (type != WL_PROTOCOL_LOGGER_REQUEST) {
		return;
	}
	struct wl_client *client = wl_resource_get_client(message->resource);
	struct wl_listener *listener = wl_client_get_destroy_listener(client, handle_client_destroy);
	if (listener != NULL) {
		struct cw_vm_client *entry = wl_container_of(listener, entry, destroy);
		entry->fds_taken += message_fds(message->message);
	}
}

/* One logger per display, removed with it. */
struct fd_logger {
	struct wl_protocol_logger *logger;
	struct wl_listener display_destroy;
};

static void
handle_logger_display_destroy(struct wl_listener *listener, void *data)
{
	struct fd_logger *l = wl_container_of(listener, l, display_destroy);
	(void)data;
	wl_list_remove(&l->display_destroy.link);
	wl_protocol_logger_destroy(l->logger);
	free(l);
}

static bool
ensure_logger(struct wl_display *display)
{
	if (wl_display_get_destroy_listener(display, handle_logger_display_destroy) != NULL) {
		return true;
	}
	struct fd_logger *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		return false;
	}
	l->logger = wl_display_add_protocol_logger(display, log_request, NULL);
	if (l->logger == NULL) {
		free(l);
		return false;
	}
	l->display_destroy.notify = handle_logger_display_destroy;
	wl_display_add_destroy_listener(display, &l->display_destroy);
	return true;
}

uint64_t
cw_vm_client_fds_taken(struct cw_vm *vm, uint32_t ctx_id)
{
	/* The newest: a destroyed context's client may linger until it reads its hang-up. */
	struct cw_vm_client *entry;
	wl_list_for_each_reverse(entry, &vm->clients, link) {
		if (entry->ctx_id == ctx_id) {
			return entry->fds_taken;
		}
	}
	return UINT64_MAX;
}

int
cw_vm_client_connect(struct cw_vm *vm, struct wl_display *display, uint32_t ctx_id)
{
	if (!ensure_logger(display)) {
		return -ENOMEM;
	}
	struct cw_vm_client *entry = calloc(1, sizeof(*entry));
	if (entry == NULL) {
		return -ENOMEM;
	}
	/* Both ends non-blocking: the device and the client share one event loop. */
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0) {
		int err = errno;
		free(entry);
		return -err;
	}
	entry->client = wl_client_create(display, fds[0]);
	if (entry->client == NULL) {
		int err = errno != 0 ? errno : ENOMEM;
		close(fds[0]); // wl_client_create leaves it open on failure
		close(fds[1]);
		free(entry);
		return -err;
	}
	entry->vm = vm;
	entry->ctx_id = ctx_id;
	entry->destroy.notify = handle_client_destroy;
	wl_client_add_destroy_listener(entry->client, &entry->destroy);
	wl_list_insert(vm->clients.prev, &entry->link);
	wlr_log(WLR_INFO, "[vm %s] guest client connected (context %u)", vm->config.name, ctx_id);
	return fds[1];
}

void
cw_vm_clients_destroy(struct cw_vm *vm)
{
	struct cw_vm_client *entry, *tmp;
	/* Each client's destroy listener unlinks and frees its entry. */
	wl_list_for_each_safe(entry, tmp, &vm->clients, link) {
		wl_client_destroy(entry->client);
	}
}
