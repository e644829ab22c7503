/*
 * crossway-guest: a Wayland proxy inside a VM. Guest clients connect to
 * $XDG_RUNTIME_DIR/NAME; each gets one virtio-gpu cross-domain context
 * whose host end is a connection to crossway.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cwg.h"
#include "server.h"
#include "transport.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fputs("usage: crossway-guest [--socket NAME] [--transport drm[:PATH]|vhost-user:SOCKET] [-v]\n"
		"  --socket NAME      listen on $XDG_RUNTIME_DIR/NAME (default wayland-0)\n"
		"  --transport SPEC   the virtio-gpu device: drm (default /dev/dri/renderD128),\n"
		"                     drm:PATH, or vhost-user:SOCKET (tests)\n"
		"  -v                 log more (twice: debug)\n"
		"SIGUSR1 (and exit) prints 'stats: clients=N connected=N shm_bytes_copied=N'\n"
		"on stderr: bytes copied from clients' wl_shm pools into guest blobs.\n", f);
}

int main(int argc, char **argv)
{
	const char *name = "wayland-0";
	const char *spec = "drm";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "--socket") == 0 || strcmp(a, "--transport") == 0) && i + 1 < argc) {
			if (a[2] == 's')
				name = argv[++i];
			else
				spec = argv[++i];
		} else if (strncmp(a, "--socket=", 9) == 0) {
			name = a + 9;
		} else if (strncmp(a, "--transport=", 12) == 0) {
			spec = a + 12;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			cwg_verbosity++;
		} else if (strcmp(a, "-vv") == 0) {
			cwg_verbosity += 2;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "crossway-guest: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!*name || strchr(name, '/') != NULL) {
		fprintf(stderr, "crossway-guest: --socket takes a name inside $XDG_RUNTIME_DIR\n");
		return 2;
	}

	struct cwg_transport *transport = cwg_transport_open(spec);
	if (!transport)
		return 1;
	/* The device must take a cross-domain context before we listen. */
	struct cwg_context *probe = transport->impl->context_create(transport);
	if (!probe) {
		if (errno != EOPNOTSUPP)
			cwg_log(CWG_ERROR, "cannot create a cross-domain context on %s: %s",
				transport->impl->name, strerror(errno));
		transport->impl->destroy(transport);
		return 1;
	}
	transport->impl->context_destroy(probe);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct cwg_server srv;
	if (cwg_server_listen(&srv, transport, name) < 0) {
		cwg_server_finish(&srv);
		transport->impl->destroy(transport);
		return 1;
	}
	int ret = cwg_server_run(&srv, &stop);
	cwg_server_finish(&srv);
	transport->impl->destroy(transport);
	return ret < 0 ? 1 : 0;
}
