#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "text.h"

static void
check_sanitize(const char *in, size_t max, const char *want)
{
	char *got = cw_text_sanitize(in, max);
	CHECK_STR(got, want);
	free(got);
}

int
main(void)
{
	check_sanitize("plain title", 64, "plain title");
	check_sanitize(NULL, 64, "");
	check_sanitize("tab\there\nnewline", 64, "tab_here_newline");
	check_sanitize("del\x7f", 64, "del_");
	/* Valid multi-byte text survives. */
	check_sanitize("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", 64, "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
	/* Broken, overlong and surrogate sequences become '_' byte by byte. */
	check_sanitize("a\xc3(b", 64, "a_(b");
	check_sanitize("\xc0\xaf", 64, "__");
	check_sanitize("\xed\xa0\x80", 64, "___");
	check_sanitize("\xf4\x90\x80\x80", 64, "____");
	check_sanitize("\xff\xfe", 64, "__");
	/* C1 controls and bidi overrides could disguise a title. */
	check_sanitize("x\xc2\x85y", 64, "x_y");
	check_sanitize("evil\xe2\x80\xaetxt.exe", 64, "evil_txt.exe");
	/* Isolates (U+2066..2069), marks (LRM, RLM, ALM) and separators too. */
	check_sanitize("a\xe2\x81\xa6" "b\xe2\x81\xa9" "c", 64, "a_b_c");
	check_sanitize("a\xe2\x80\x8e" "b\xe2\x80\x8f" "c\xd8\x9c" "d", 64, "a_b_c_d");
	check_sanitize("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", 64, "a_b_c");
	/* Other scripts and symbols stay. */
	check_sanitize("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xe2\x9c\x93", 64,
		"\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xe2\x9c\x93");
	/* Cut on a character boundary, never inside a sequence. */
	check_sanitize("abc\xe2\x9c\x93", 5, "abc");
	check_sanitize("abcdef", 3, "abc");
	check_sanitize("", 0, "");

	/* A long title is ellipsised to the width it is given. */
	const float white[4] = {1, 1, 1, 1};
	struct wlr_buffer *buffer = cw_text_render("a fairly long window title that cannot fit",
		white, 100, 24);
	CHECK(buffer != NULL);
	if (buffer != NULL) {
		CHECK(buffer->width > 0 && buffer->width <= 100);
		CHECK(buffer->height == 24);
		wlr_buffer_drop(buffer);
	}
	CHECK(cw_text_render("", white, 100, 24) == NULL);
	CHECK(cw_text_render("x", white, 0, 24) == NULL);
	CHECK_DONE();
}
