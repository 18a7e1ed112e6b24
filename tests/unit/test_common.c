/* common/: ids, names, config files, whole-file writes, durations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

static void
test_id_is_uuidv7_and_sorts_by_time(void **state)
{
	char a[ID_LEN + 1], b[ID_LEN + 1];

	(void)state;
	id_new(a);
	usleep(2000);
	id_new(b);
	assert_true(id_valid(a));
	assert_true(id_valid(b));
	assert_int_equal(a[14], '7');
	assert_true(strcmp(a, b) < 0);
	/* its first 48 bits are the Unix time in milliseconds (RFC 9562) */
	char hex[13];
	uint64_t ms;
	snprintf(hex, sizeof hex, "%.8s%.4s", a, a + 9);
	ms = strtoull(hex, NULL, 16);
	assert_true(ms <= time_now_ms());
	assert_true(time_now_ms() - ms < 60000);
	assert_true(id_time_ms(a) == ms);	/* what the cut-off of TLS-signed images reads */
}

static void
test_version_cmp_numbers(void **state)
{
	(void)state;
	assert_true(version_cmp("7.2.22", "7.2") > 0);
	assert_true(version_cmp("7.2", "7.2.0") == 0);
	assert_true(version_cmp("7.10", "7.9.9") > 0);	/* numbers, not strings */
	assert_true(version_cmp("6.2.0", "7.2") < 0);
}

static void
test_id_rejects_non_canonical(void **state)
{
	(void)state;
	assert_false(id_valid(NULL));
	assert_false(id_valid(""));
	assert_false(id_valid("../../etc/passwd"));
	assert_false(id_valid("0190A1B2-0000-7000-8000-000000000000"));	/* upper case */
	assert_false(id_valid("0190a1b2-0000-7000-8000-00000000000"));
	assert_false(id_valid("0190a1b2x0000-7000-8000-000000000000"));
	assert_true(id_valid("0190a1b2-0000-7000-8000-000000000000"));
}

static void
test_name_to_path_is_one_safe_component(void **state)
{
	char out[NAME_MAX_LEN * 3 + 1];

	(void)state;
	assert_int_equal(name_to_path("job-1_a", out, sizeof out), 0);
	assert_string_equal(out, "job-1_a");
	assert_int_equal(name_to_path("..", out, sizeof out), 0);
	assert_string_equal(out, "%2E%2E");
	assert_int_equal(name_to_path("a/b", out, sizeof out), 0);
	assert_string_equal(out, "a%2Fb");
	assert_int_equal(name_to_path("*)(objectClass=*", out, sizeof out), 0);
	assert_null(strchr(out, '/'));
	assert_int_equal(name_to_path("", out, sizeof out), -1);
	assert_int_equal(name_to_path("a\nb", out, sizeof out), -1);
	assert_int_equal(name_to_path("abcdef", out, 4), -1);
}

/* The one rule for GIDs, CTS and class names: what the directory would read as another name is
 * refused (spaces at either end, a run of spaces), and each refusal says why. */
static void
test_names_follow_one_rule(void **state)
{
	char big[NAME_MAX_LEN + 2];

	(void)state;
	assert_true(name_valid("job-1"));
	assert_true(name_valid("my job 1"));
	assert_true(name_valid("*)(objectClass=*"));
	assert_null(name_why("job-1"));
	assert_false(name_valid(NULL));
	assert_string_equal(name_why(""), "empty");
	assert_string_equal(name_why(" job-1"), "a space at its start or end");
	assert_string_equal(name_why("job-1 "), "a space at its start or end");
	assert_string_equal(name_why(" "), "a space at its start or end");
	assert_string_equal(name_why("my  job"), "two spaces in a row");
	assert_non_null(strstr(name_why("a\nb"), "control character"));
	assert_non_null(strstr(name_why("a\x7f"), "control character"));
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_string_equal(name_why(big), "longer than 255 bytes");
	big[NAME_MAX_LEN] = '\0';
	assert_true(name_valid(big));
}

static void
test_config_keys_values_comments(void **state)
{
	char dir[] = "/tmp/gca-unit.XXXXXX", path[256], err[256];
	struct config c;
	long n = 0;
	const char text[] = "# a comment\n\nname   cts-1\nlisten 127.0.0.1:7000  \n"
	    "name cts-2\nretention 5\nbad x\n";

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/c.conf", dir);
	assert_int_equal(file_write_whole(path, text, strlen(text), 0600), 0);
	assert_int_equal(config_load(&c, path, err, sizeof err), 0);
	assert_string_equal(config_get(&c, "name"), "cts-2");		/* later lines win */
	assert_string_equal(config_get(&c, "listen"), "127.0.0.1:7000");
	assert_null(config_get(&c, "missing"));
	assert_int_equal(config_get_int(&c, "retention", 1, 100, &n, err, sizeof err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(config_get_int(&c, "bad", 1, 100, &n, err, sizeof err), -1);
	assert_non_null(strstr(err, "bad"));
	config_free(&c);
	assert_int_equal(config_load(&c, "/nonexistent/x.conf", err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/x.conf"));
	file_remove_tree(dir);
}

static void
test_file_write_whole_replaces_and_sets_mode(void **state)
{
	char dir[] = "/tmp/gca-unit.XXXXXX", path[256], *buf;
	size_t len;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/deep/er/f", dir);
	assert_int_equal(file_mkdirs(strrchr(path, '/') ? "/tmp" : "", 0700), 0);
	snprintf(path, sizeof path, "%s/deep/er", dir);
	assert_int_equal(file_mkdirs(path, 0700), 0);
	snprintf(path, sizeof path, "%s/deep/er/f", dir);
	assert_int_equal(file_write_whole(path, "one", 3, 0600), 0);
	assert_int_equal(file_write_whole(path, "second", 6, 0640), 0);
	assert_int_equal(file_read_all(path, &buf, &len, 100), 0);
	assert_int_equal(len, 6);
	assert_string_equal(buf, "second");
	free(buf);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(file_read_all(path, &buf, &len, 3), -1);	/* over the limit */
	assert_int_equal(file_remove_tree(dir), 0);
	assert_int_equal(access(dir, F_OK), -1);
}

static void
test_durations_and_times(void **state)
{
	uint64_t ms;
	char when[32];

	(void)state;
	assert_int_equal(duration_parse("30s", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(duration_parse("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(duration_parse("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(duration_parse("7", &ms), 0);
	assert_int_equal(ms, 7000);
	assert_int_equal(duration_parse("-1s", &ms), -1);
	assert_int_equal(duration_parse("5 days", &ms), -1);
	time_generalized(1764065700123ULL, when);
	assert_string_equal(when, "20251125101500.123Z");
}

/* A line a loop repeats: once a second at most, then how many were left out. */
static void
test_log_limited(void **state)
{
	char path[] = "/tmp/gca-log-limited.XXXXXX", buf[8192];
	int fd = mkstemp(path), saved = dup(2);
	struct log_limit l = { 0 };
	size_t n;
	FILE *f;
	int lines = 0;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	for (int i = 0; i < 1000; i++)
		log_limited(&l, LOG_WARN, "cannot accept: %d", i);
	usleep(1100 * 1000);
	log_limited(&l, LOG_WARN, "cannot accept: again");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	rewind(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	for (char *p = buf; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 2);
	assert_non_null(strstr(buf, "cannot accept: 0\n"));
	assert_non_null(strstr(buf, "cannot accept: again (and 999 more like it in the last"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_is_uuidv7_and_sorts_by_time),
		cmocka_unit_test(test_id_rejects_non_canonical),
		cmocka_unit_test(test_version_cmp_numbers),
		cmocka_unit_test(test_name_to_path_is_one_safe_component),
		cmocka_unit_test(test_names_follow_one_rule),
		cmocka_unit_test(test_config_keys_values_comments),
		cmocka_unit_test(test_file_write_whole_replaces_and_sets_mode),
		cmocka_unit_test(test_durations_and_times),
		cmocka_unit_test(test_log_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
