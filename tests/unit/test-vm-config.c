#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "vm_config.h"

static void
test_specs(void)
{
	struct cw_vm_config_list list = {0};
	char err[256];
	CHECK(cw_vm_config_add(&list, "work=/run/work.sock,color=#112233,outputs=2", err, sizeof(err)));
	CHECK(cw_vm_config_add(&list, "web-1.test=/tmp/w.sock", err, sizeof(err)));
	CHECK(list.count == 2);
	CHECK_STR(list.vms[0].name, "work");
	CHECK_STR(list.vms[0].socket_path, "/run/work.sock");
	CHECK(list.vms[0].color == 0x112233 && list.vms[0].has_color);
	CHECK(list.vms[0].outputs == 2);
	CHECK(list.vms[1].outputs == 1 && !list.vms[1].has_color);
	CHECK(!list.vms[0].config_events);
	CHECK(cw_vm_config_add(&list, "ev=/ev.sock,config-events=on,contexts=off", err, sizeof(err)));
	CHECK(list.count == 3 && list.vms[2].config_events && list.vms[2].no_contexts);
	free(list.vms[2].socket_path);
	list.count = 2;
	CHECK(list.vms[0].input_socket_path == NULL && !list.vms[0].no_contexts);
	CHECK(cw_vm_config_add(&list, "in=/in-gpu.sock,input=/in-input.sock,outputs=1", err,
		sizeof(err)));
	CHECK(list.count == 3);
	CHECK_STR(list.vms[2].socket_path, "/in-gpu.sock");
	CHECK_STR(list.vms[2].input_socket_path, "/in-input.sock");
	CHECK(!list.vms[2].no_contexts);
	free(list.vms[2].socket_path);
	free(list.vms[2].input_socket_path);
	list.count = 2;
	CHECK(list.vms[1].color != list.vms[0].color || list.vms[1].color != 0);

	/* Names are what titles show: a strict character set. */
	const char *bad[] = {
		"=/x.sock", "bad name=/x.sock", "evil\xe2\x80\xae=/x.sock", "a/b=/x.sock",
		"noequals", "x=", "x=,color=#000000", "toolongname_toolongname_toolongn1=/s",
		"c=/s,color=red", "c=/s,color=#12345", "c=/s,outputs=0", "c=/s,outputs=17",
		"c=/s,outputs=-1", "c=/s,wat=1", "c=/s,color", "c=/s,max-memory=0",
		"work=/other.sock", "other=/run/work.sock", "c=/s,config-events=maybe",
		"c=/s,input=", "c=/s,input=/s", "c=/s,input=/run/work.sock", "c=/s,input=/i,input=/j", "c=/s,contexts=maybe",
		/* Frames that would look like host windows': crossway's colours, near them,
		 * or a colour whose unfocused shade is crossway's inactive grey. */
		"c=/s,color=#285577", "c=/s,color=#2a5a70", "c=/s,color=#3a3a3a", "c=/s,color=#6a6a6a",
		"w2=/run/work.sock,input=/i",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		bool ok = cw_vm_config_add(&list, bad[i], err, sizeof(err));
		if (ok) {
			fprintf(stderr, "accepted '%s'\n", bad[i]);
		}
		CHECK(!ok);
		CHECK(err[0] != '\0');
	}
	CHECK(list.count == 2);
	cw_vm_config_list_finish(&list);
}

static void
test_file(void)
{
	char path[] = "/tmp/cw-vm-config-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char *text = "# my VMs\n\n  alpha=/a.sock,color=#ff0000  # red\nbeta=/b.sock\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	struct cw_vm_config_list list = {0};
	char err[256];
	CHECK(cw_vm_config_load_file(&list, path, err, sizeof(err)));
	CHECK(list.count == 2);
	CHECK_STR(list.vms[0].socket_path, "/a.sock");
	CHECK(list.vms[0].color == 0xff0000);
	cw_vm_config_list_finish(&list);

	/* An error names the file and line. */
	FILE *f = fopen(path, "w");
	fputs("ok=/ok.sock\nbroken line\n", f);
	fclose(f);
	CHECK(!cw_vm_config_load_file(&list, path, err, sizeof(err)));
	CHECK(strstr(err, ":2:") != NULL);
	cw_vm_config_list_finish(&list);
	unlink(path);

	/* A missing file is no error. */
	CHECK(cw_vm_config_load_file(&list, "/nonexistent/crossway/vms.conf", err, sizeof(err)));
	CHECK(list.count == 0);
}

int
main(void)
{
	test_specs();
	test_file();
	CHECK_DONE();
}
