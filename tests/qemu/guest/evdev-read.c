/*
 * evdev-read: the input side of the QEMU guest harness.
 *
 * Opens every /dev/input/event* device, prints what each one offers, then
 * prints every event it reads until a timeout or a sentinel key sequence.
 * Every line starts with "GTEST " so the host can grep the results out of the
 * serial log between kernel messages; lines about one device end with
 * "dev=eventN".
 *
 *   GTEST input-dev name="NAME" bus=0xBBBB vendor=0xVVVV product=0xPPPP
 *         version=0xVVVV ev=0xBITS props=0xBITS keys=N key_a=0|1 btn_left=0|1
 *         btn_right=0|1 abs_x=MIN..MAX,fuzz=F,flat=F,res=R abs_y=...
 *         rel=0xBITS rel_wheel=0|1 rel_hwheel=0|1 led=0xBITS rep=0|1 dev=eventN
 *                                    (one line per device; abs_* only when present)
 *   GTEST input-led code=C value=1 r=0|-1 errno=E leds=0xBITS dev=eventN  (--led)
 *   GTEST input ready devices=N      (from here on, events are read)
 *   GTEST ev TYPE CODE VALUE dev=eventN    (decimal; every event, EV_SYN too)
 *   GTEST input done reason=timeout|quit-keys events=N
 *
 * Built static inside make-initrd.sh:  gcc -static -O2 -o evdev-read evdev-read.c
 *
 * Usage: evdev-read [--timeout S] [--wait S] [--min N] [--led CODE]
 *                   [--quit-keys CODE[,CODE...]] [--grab]
 *   --timeout S   stop reading S seconds after "input ready" (default 20)
 *   --wait S      wait up to S seconds for --min devices (default 10)
 *   --min N       devices required (default 1); fewer after --wait fails
 *   --led CODE    after the device lines, turn LED CODE (0 NUML, 1 CAPSL,
 *                 2 SCROLLL) on by writing EV_LED + SYN_REPORT to every
 *                 device that has it (virtio-input sends it on its status
 *                 queue), then read the LED state back (EVIOCGLED)
 *   --quit-keys   stop once these keys (evdev codes) were pressed in this
 *                 order, right after the last one's release and its SYN
 *   --grab        EVIOCGRAB every device (the guest's console gets no keys)
 *
 * Exit status: 0 after the timeout or the quit keys, 1 when no (or too few)
 * devices showed up or reading failed, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/input.h>

#define MAX_DEVICES 32
#define MAX_QUIT_KEYS 16
#define NBITS(n) (((n) + 8 * sizeof(unsigned long) - 1) / (8 * sizeof(unsigned long)))

struct device {
	int fd;
	char node[32]; /* "event3" */
};

static struct device devices[MAX_DEVICES];
static int ndevices;

/* One write per line, so lines stay whole between kernel messages. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	memcpy(line, "GTEST ", 6);
	va_start(ap, fmt);
	n = vsnprintf(line + 6, sizeof(line) - 7, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n += 6;
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	line[n++] = '\n';
	ssize_t off = 0;
	while (off < n) {
		ssize_t w = write(STDOUT_FILENO, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

static int test_bit(const unsigned long *bits, unsigned bit)
{
	return (bits[bit / (8 * sizeof(long))] >> (bit % (8 * sizeof(long)))) & 1;
}

static unsigned long low_word(const unsigned long *bits)
{
	return bits[0];
}

static int count_bits(const unsigned long *bits, unsigned max)
{
	int n = 0;
	for (unsigned i = 0; i < max; i++)
		n += test_bit(bits, i);
	return n;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int by_number(const struct dirent **a, const struct dirent **b)
{
	return atoi((*a)->d_name + 5) - atoi((*b)->d_name + 5);
}

static int is_event_node(const struct dirent *d)
{
	const char *p = d->d_name;
	if (strncmp(p, "event", 5) != 0 || !p[5])
		return 0;
	for (p += 5; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

/* Opens the event devices not yet open; returns how many are open. */
static int scan_devices(int grab)
{
	struct dirent **names;
	int n = scandir("/dev/input", &names, is_event_node, by_number);

	for (int i = 0; i < n; i++) {
		int known = 0;
		for (int j = 0; j < ndevices; j++)
			known |= strcmp(devices[j].node, names[i]->d_name) == 0;
		if (!known && ndevices < MAX_DEVICES) {
			char path[300];
			snprintf(path, sizeof(path), "/dev/input/%s", names[i]->d_name);
			int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (fd >= 0) {
				if (grab && ioctl(fd, EVIOCGRAB, 1) < 0)
					say("input-grab-failed errno=%d dev=%s", errno, names[i]->d_name);
				devices[ndevices].fd = fd;
				snprintf(devices[ndevices].node, sizeof(devices[ndevices].node), "%.24s",
					names[i]->d_name);
				ndevices++;
			}
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return ndevices;
}

/* Appends " key=MIN..MAX,fuzz=F,flat=F,res=R" for one absolute axis. */
static size_t describe_abs(char *out, size_t size, int fd, const char *key, unsigned axis)
{
	struct input_absinfo ai;

	if (ioctl(fd, EVIOCGABS(axis), &ai) < 0)
		return (size_t)snprintf(out, size, " %s=error%d", key, errno);
	return (size_t)snprintf(out, size, " %s=%d..%d,fuzz=%d,flat=%d,res=%d", key, ai.minimum,
		ai.maximum, ai.fuzz, ai.flat, ai.resolution);
}

static void describe(const struct device *d)
{
	unsigned long ev[NBITS(EV_CNT)] = { 0 }, key[NBITS(KEY_CNT)] = { 0 };
	unsigned long abs[NBITS(ABS_CNT)] = { 0 }, rel[NBITS(REL_CNT)] = { 0 };
	unsigned long led[NBITS(LED_CNT)] = { 0 }, prop[NBITS(INPUT_PROP_CNT)] = { 0 };
	char name[256] = "";
	struct input_id id = { 0 };
	char line[900];
	size_t off = 0;

	if (ioctl(d->fd, EVIOCGNAME(sizeof(name) - 1), name) < 0)
		snprintf(name, sizeof(name), "?");
	for (char *p = name; *p; p++)
		if (*p == '"' || *p < ' ')
			*p = '_';
	ioctl(d->fd, EVIOCGID, &id);
	ioctl(d->fd, EVIOCGBIT(0, sizeof(ev)), ev);
	ioctl(d->fd, EVIOCGPROP(sizeof(prop)), prop);
	if (test_bit(ev, EV_KEY))
		ioctl(d->fd, EVIOCGBIT(EV_KEY, sizeof(key)), key);
	if (test_bit(ev, EV_ABS))
		ioctl(d->fd, EVIOCGBIT(EV_ABS, sizeof(abs)), abs);
	if (test_bit(ev, EV_REL))
		ioctl(d->fd, EVIOCGBIT(EV_REL, sizeof(rel)), rel);
	if (test_bit(ev, EV_LED))
		ioctl(d->fd, EVIOCGBIT(EV_LED, sizeof(led)), led);

#define ADD(...) off += (size_t)snprintf(line + off, off < sizeof(line) ? sizeof(line) - off : 0, __VA_ARGS__)
	ADD("input-dev name=\"%s\" bus=0x%04x vendor=0x%04x product=0x%04x version=0x%04x ev=0x%lx props=0x%lx",
		name, id.bustype, id.vendor, id.product, id.version, low_word(ev), low_word(prop));
	ADD(" keys=%d key_a=%d btn_left=%d btn_right=%d", count_bits(key, KEY_CNT),
		test_bit(key, KEY_A), test_bit(key, BTN_LEFT), test_bit(key, BTN_RIGHT));
	if (test_bit(abs, ABS_X) && off < sizeof(line))
		off += describe_abs(line + off, sizeof(line) - off, d->fd, "abs_x", ABS_X);
	if (test_bit(abs, ABS_Y) && off < sizeof(line))
		off += describe_abs(line + off, sizeof(line) - off, d->fd, "abs_y", ABS_Y);
	if (count_bits(abs, ABS_CNT) > test_bit(abs, ABS_X) + test_bit(abs, ABS_Y))
		ADD(" abs=0x%lx", low_word(abs));
	ADD(" rel=0x%lx rel_wheel=%d rel_hwheel=%d led=0x%lx rep=%d", low_word(rel),
		test_bit(rel, REL_WHEEL), test_bit(rel, REL_HWHEEL), low_word(led), test_bit(ev, EV_REP));
	ADD(" dev=%s", d->node);
#undef ADD
	say("%s", line);
}

/* --led: EV_LED CODE 1 + SYN_REPORT through evdev, then the state back. */
static void set_led(const struct device *d, unsigned code)
{
	unsigned long ev[NBITS(EV_CNT)] = { 0 }, led[NBITS(LED_CNT)] = { 0 };
	struct input_event w[2];
	int r, err = 0;

	ioctl(d->fd, EVIOCGBIT(0, sizeof(ev)), ev);
	if (!test_bit(ev, EV_LED))
		return;
	ioctl(d->fd, EVIOCGBIT(EV_LED, sizeof(led)), led);
	if (!test_bit(led, code))
		return;
	memset(w, 0, sizeof(w));
	w[0].type = EV_LED;
	w[0].code = (unsigned short)code;
	w[0].value = 1;
	w[1].type = EV_SYN;
	w[1].code = SYN_REPORT;
	r = (int)write(d->fd, w, sizeof(w));
	if (r < 0)
		err = errno;
	r = r == (int)sizeof(w) ? 0 : -1;
	memset(led, 0, sizeof(led));
	ioctl(d->fd, EVIOCGLED(sizeof(led)), led);
	say("input-led code=%u value=1 r=%d errno=%d leds=0x%lx dev=%s", code, r, err, low_word(led),
		d->node);
}

static void usage(void)
{
	fprintf(stderr, "GTEST usage: evdev-read [--timeout S] [--wait S] [--min N] [--led CODE] "
			"[--quit-keys CODE[,CODE...]] [--grab]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned timeout = 20, wait = 10, min = 1, led = 0;
	int want_led = 0, grab = 0;
	unsigned quit[MAX_QUIT_KEYS];
	unsigned nquit = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--grab") == 0) {
			grab = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--timeout") == 0) {
			if (parse_uint(v, 86400, &timeout) < 0 || timeout == 0)
				usage();
		} else if (strcmp(a, "--wait") == 0) {
			if (parse_uint(v, 3600, &wait) < 0)
				usage();
		} else if (strcmp(a, "--min") == 0) {
			if (parse_uint(v, MAX_DEVICES, &min) < 0)
				usage();
		} else if (strcmp(a, "--led") == 0) {
			if (parse_uint(v, LED_MAX, &led) < 0)
				usage();
			want_led = 1;
		} else if (strcmp(a, "--quit-keys") == 0) {
			char buf[256];
			snprintf(buf, sizeof(buf), "%s", v);
			nquit = 0;
			for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (nquit == MAX_QUIT_KEYS || parse_uint(t, KEY_MAX, &quit[nquit]) < 0)
					usage();
				nquit++;
			}
			if (nquit == 0)
				usage();
		} else {
			usage();
		}
	}

	/* Devices: wait (bounded) until at least --min are there. */
	double deadline = now() + wait;
	while (scan_devices(grab) < (int)min && now() < deadline)
		usleep(100 * 1000);
	for (int i = 0; i < ndevices; i++)
		describe(&devices[i]);
	if (ndevices < (int)min || ndevices == 0) {
		say("input fail devices=%d min=%u", ndevices, min);
		return 1;
	}
	if (want_led)
		for (int i = 0; i < ndevices; i++)
			set_led(&devices[i], led);
	say("input ready devices=%d", ndevices);

	/* Events, until the timeout or the quit keys. */
	struct pollfd pfd[MAX_DEVICES];
	for (int i = 0; i < ndevices; i++) {
		pfd[i].fd = devices[i].fd;
		pfd[i].events = POLLIN;
	}
	unsigned matched = 0;         /* quit keys pressed in order so far */
	int quit_code = -1;            /* the last quit key, once all were pressed */
	int released = 0;              /* ... and released */
	double quit_deadline = 0;
	unsigned long events = 0;
	const char *reason = "timeout";
	int status = 0;

	deadline = now() + timeout;
	for (;;) {
		double left = deadline - now();
		if (quit_code >= 0 && quit_deadline - now() < left)
			left = quit_deadline - now();
		if (left <= 0) {
			if (quit_code >= 0)
				reason = "quit-keys";
			break;
		}
		int r = poll(pfd, (nfds_t)ndevices, (int)(left * 1000) + 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			say("input fail poll errno=%d", errno);
			status = 1;
			break;
		}
		int stop = 0;
		for (int i = 0; i < ndevices && !stop; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			struct input_event buf[64];
			ssize_t n;
			while ((n = read(pfd[i].fd, buf, sizeof(buf))) > 0) {
				for (size_t k = 0; k < (size_t)n / sizeof(buf[0]); k++) {
					const struct input_event *e = &buf[k];
					events++;
					say("ev %u %u %d dev=%s", e->type, e->code, e->value, devices[i].node);
					if (nquit && e->type == EV_KEY && e->value == 1) {
						if (matched < nquit && e->code == quit[matched])
							matched++;
						else
							matched = e->code == quit[0] ? 1 : 0;
						if (matched == nquit && quit_code < 0) {
							quit_code = e->code;
							/* Do not wait forever for the release. */
							quit_deadline = now() + 2;
						}
					} else if (quit_code >= 0 && e->type == EV_KEY &&
						   e->code == (unsigned)quit_code && e->value == 0) {
						released = 1;
					} else if (released && e->type == EV_SYN && e->code == SYN_REPORT) {
						stop = 1;
					}
				}
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				say("input fail read errno=%d dev=%s", errno, devices[i].node);
				pfd[i].fd = -1; /* gone (e.g. unbound): keep reading the others */
			}
		}
		if (stop) {
			reason = "quit-keys";
			break;
		}
	}
	say("input done reason=%s events=%lu", reason, events);
	for (int i = 0; i < ndevices; i++)
		close(devices[i].fd);
	return status;
}
