/*
 * crossway: a Wayland compositor that hosts the windows of virtual machines
 * next to native ones. This file: command line, signals, the startup
 * command, and the main loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wayland-server-core.h>
#include <wlr/util/log.h>

#include "options.h"
#include "server.h"
#include "vm.h"
#include "vm_config.h"

#ifndef CW_VERSION
#define CW_VERSION "unknown"
#endif

/* The fd limit crossway started with: the startup command gets it back. */
static struct rlimit initial_nofile;
static bool nofile_raised;

/*
 * Every VM client, guest blob and pipe is an fd of this one process; the
 * default soft limit (often 1024) is low for a compositor hosting VMs.
 * Raised to the hard limit, as systemd advises for programs that need
 * more; what one VM can make crossway hold is bounded far below it.
 */
static void
raise_fd_limit(void)
{
	if (getrlimit(RLIMIT_NOFILE, &initial_nofile) != 0) {
		wlr_log_errno(WLR_ERROR, "getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (initial_nofile.rlim_cur >= initial_nofile.rlim_max) {
		wlr_log(WLR_INFO, "fd limit: %llu (already the hard limit)",
			(unsigned long long)initial_nofile.rlim_cur);
		return;
	}
	struct rlimit raised = {.rlim_cur = initial_nofile.rlim_max,
		.rlim_max = initial_nofile.rlim_max};
	if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
		wlr_log_errno(WLR_ERROR, "cannot raise the fd limit from %llu to %llu",
			(unsigned long long)initial_nofile.rlim_cur,
			(unsigned long long)initial_nofile.rlim_max);
		return;
	}
	nofile_raised = true;
	wlr_log(WLR_INFO, "fd limit raised from %llu to %llu (the hard limit)",
		(unsigned long long)initial_nofile.rlim_cur, (unsigned long long)raised.rlim_cur);
}

struct startup_child {
	struct cw_server *server;
	pid_t pid;
	bool exit_with_child;
};

static int
handle_terminate_signal(int signal, void *data)
{
	struct cw_server *server = data;
	wlr_log(WLR_INFO, "Caught signal %d, exiting", signal);
	cw_server_terminate(server, 0);
	return 0;
}

/* Reaps every exited child; ends crossway with the startup command if asked. */
static int
handle_sigchld(int signal, void *data)
{
	struct startup_child *child = data;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != child->pid) {
			continue;
		}
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		wlr_log(WLR_INFO, "Startup command exited with status %d", code);
		child->pid = -1;
		if (child->exit_with_child) {
			cw_server_terminate(child->server, code);
		}
	}
	return 0;
}

static pid_t
spawn_startup_command(const char *command)
{
	pid_t pid = fork();
	if (pid < 0) {
		wlr_log_errno(WLR_ERROR, "fork failed");
		return -1;
	}
	if (pid == 0) {
		/* wl_event_loop_add_signal blocked these; the child must get them. */
		sigset_t set;
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		if (nofile_raised) {
			/* select()-based programs break above 1024: the session gets the old limit. */
			setrlimit(RLIMIT_NOFILE, &initial_nofile);
		}
		setsid();
		execl("/bin/sh", "/bin/sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The config file's VMs, then those of --vm. */
static bool
load_vm_config(const struct cw_options *options, struct cw_vm_config_list *vms)
{
	char error[512];
	char *path = options->vm_config_path != NULL ? strdup(options->vm_config_path) :
		cw_vm_config_default_path();
	bool ok = path == NULL || cw_vm_config_load_file(vms, path, error, sizeof(error));
	free(path);
	for (size_t i = 0; ok && i < options->vm_spec_count; i++) {
		ok = cw_vm_config_add(vms, options->vm_specs[i], error, sizeof(error));
	}
	if (!ok) {
		fprintf(stderr, "crossway: %s\n", error);
		cw_vm_config_list_finish(vms);
	}
	return ok;
}

int
main(int argc, char *argv[])
{
	struct cw_options options;
	char error[256];
	if (!cw_options_parse(&options, argc, argv, error, sizeof(error))) {
		fprintf(stderr, "crossway: %s\nTry 'crossway --help'.\n", error);
		return 2;
	}
	if (options.show_help) {
		cw_options_print_usage(argv[0]);
		return 0;
	}
	if (options.show_version) {
		printf("crossway %s\n", CW_VERSION);
		return 0;
	}
	wlr_log_init(options.verbose ? WLR_DEBUG : WLR_INFO, NULL);
	if (getenv("XDG_RUNTIME_DIR") == NULL) {
		fprintf(stderr, "crossway: XDG_RUNTIME_DIR is not set\n");
		return 1;
	}
	raise_fd_limit();

	struct cw_vm_config_list vms = {0};
	if (!load_vm_config(&options, &vms)) {
		return 2;
	}
	struct cw_server server;
	int code = 1;
	if (!cw_server_init(&server, &options)) {
		goto out;
	}
	if (!cw_vms_init(&server, &vms)) {
		goto out;
	}
	struct wl_event_loop *loop = server.event_loop;
	struct wl_event_source *sources[3] = {
		wl_event_loop_add_signal(loop, SIGTERM, handle_terminate_signal, &server),
		wl_event_loop_add_signal(loop, SIGINT, handle_terminate_signal, &server),
		NULL,
	};
	struct startup_child child = {.server = &server, .pid = -1,
		.exit_with_child = options.exit_with_startup_cmd};
	sources[2] = wl_event_loop_add_signal(loop, SIGCHLD, handle_sigchld, &child);

	const char *socket = cw_server_start(&server);
	if (socket == NULL) {
		goto out_sources;
	}
	setenv("WAYLAND_DISPLAY", socket, true);
	wlr_log(WLR_INFO, "Running on WAYLAND_DISPLAY=%s", socket);

	if (options.startup_cmd != NULL) {
		child.pid = spawn_startup_command(options.startup_cmd);
		if (child.pid < 0) {
			goto out_sources;
		}
	}
	wl_display_run(server.display);
	code = server.exit_code < 0 ? 0 : server.exit_code;

	if (child.pid > 0) {
		/* The startup command's session goes with us. */
		kill(-child.pid, SIGTERM);
	}
out_sources:
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		if (sources[i] != NULL) {
			wl_event_source_remove(sources[i]);
		}
	}
out:
	cw_server_finish(&server);
	cw_vm_config_list_finish(&vms);
	return code;
}
