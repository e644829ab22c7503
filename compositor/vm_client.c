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

int
cw_vm_client_connect(struct cw_vm *vm, struct wl_display *display, uint32_t ctx_id)
{
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
