/*
 * common/daly.c: the adaptive checkpoint interval against values worked by hand (python3 gives
 * the same digits), Daly's formula
 *   T = sqrt(2 d M) (1 + sqrt(d / 2M) / 3 + d / 18M) - d   (d < 2M), else T = M.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>

#include "common/common.h"

#define S	1000ull			/* ms in a second */
#define H	(3600 * S)
#define NOMIN	0
#define NOMAX	UINT64_MAX

/* within 1 ms of the hand-worked value (the function rounds to the nearest ms) */
static void
assert_ms(uint64_t got, uint64_t want)
{
	assert_true(got + 1 >= want && got <= want + 1);
}

static void
test_daly_worked_values(void **state)
{
	(void)state;
	/* d = 60 s, M = 24 h = 86400 s:
	 * sqrt(2*60*86400) = sqrt(10368000) = 3219.938 s; sqrt(60/172800)/3 = 0.0186339/3 = 0.0062113;
	 * 60/(18*86400) = 0.0000386; 3219.938 * 1.0062499 = 3240.062; - 60 = 3180.062 s */
	assert_ms(daly_interval_ms(60 * S, 24 * H, NOMIN, NOMAX), 3180062);
	/* d = 10 s, M = 1 h: sqrt(72000) = 268.328 s; sqrt(10/7200)/3 = 0.0124226;
	 * 10/64800 = 0.0001543; 268.328 * 1.0125769 = 271.703; - 10 = 261.703 s */
	assert_ms(daly_interval_ms(10 * S, H, NOMIN, NOMAX), 261703);
	/* d = 1 s, M = 20 s (the integration test's scale): sqrt(40) = 6.32456;
	 * sqrt(1/40)/3 = 0.0527046; 1/360 = 0.0027778; 6.32456 * 1.0554824 = 6.67546; - 1 = 5.675 s */
	assert_ms(daly_interval_ms(1 * S, 20 * S, NOMIN, NOMAX), 5675);
	/* d = 300 s, M = 1 h: sqrt(2160000) = 1469.694; sqrt(300/7200)/3 = 0.0680414;
	 * 300/64800 = 0.0046296; 1469.694 * 1.0726710 = 1576.498; - 300 = 1276.498 s */
	assert_ms(daly_interval_ms(300 * S, H, NOMIN, NOMAX), 1276498);
}

static void
test_daly_cost_at_least_twice_mtbf_gives_mtbf(void **state)
{
	(void)state;
	/* d >= 2M: T = M (checkpointing cannot pay; Young's sqrt(2*30*10) = 24.5 s would be wrong) */
	assert_int_equal(daly_interval_ms(30 * S, 10 * S, NOMIN, NOMAX), 10 * S);
	assert_int_equal(daly_interval_ms(20 * S, 10 * S, NOMIN, NOMAX), 10 * S);
	/* just below 2M the formula holds: d = 19.998 s, M = 10 s gives 8.889 s, not M */
	assert_true(daly_interval_ms(19998, 10 * S, NOMIN, NOMAX) != 10 * S);
}

static void
test_daly_bounds_clamp(void **state)
{
	(void)state;
	/* an unmeasured cost (0) gives T = 0: the lower bound, so the first checkpoint measures it */
	assert_int_equal(daly_interval_ms(0, 24 * H, 30 * S, 24 * H), 30 * S);
	/* d = 10 ms, M = 1 h: sqrt(72) = 8.485 s, * 1.0006 - 0.01 = 8.479 s: under a 30 s floor */
	assert_int_equal(daly_interval_ms(10, H, 30 * S, 24 * H), 30 * S);
	/* d = 60 s, M = 24 h gives 3180 s; a 1 h ceiling does not cut it, a 10 min one does */
	assert_ms(daly_interval_ms(60 * S, 24 * H, 30 * S, H), 3180062);
	assert_int_equal(daly_interval_ms(60 * S, 24 * H, 30 * S, 600 * S), 600 * S);
	/* T = M is bounded too */
	assert_int_equal(daly_interval_ms(100 * H, 48 * H, 30 * S, 24 * H), 24 * H);
}

static void
test_daly_grows_with_cost(void **state)
{
	uint64_t last = 0;

	(void)state;
	/* what the integration test sees: a slower checkpoint gives a longer interval */
	for (uint64_t d = 100; d < 20 * S; d += 700) {
		uint64_t t = daly_interval_ms(d, 20 * S, NOMIN, NOMAX);
		assert_true(t > last);
		last = t;
	}
}

static void
test_daly_mtbf_values(void **state)
{
	uint64_t ms = 7;

	(void)state;
	assert_int_equal(daly_mtbf_parse("1h", &ms), 0);
	assert_int_equal(ms, H);
	assert_int_equal(daly_mtbf_parse("90", &ms), 0);
	assert_int_equal(ms, 90 * S);
	ms = 7;
	assert_int_equal(daly_mtbf_parse("0", &ms), -1);
	assert_int_equal(daly_mtbf_parse("0h", &ms), -1);
	assert_int_equal(daly_mtbf_parse("-5m", &ms), -1);
	assert_int_equal(daly_mtbf_parse("soon", &ms), -1);
	assert_int_equal(daly_mtbf_parse("", &ms), -1);
	assert_int_equal(daly_mtbf_parse(NULL, &ms), -1);
	assert_int_equal(ms, 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daly_worked_values),
		cmocka_unit_test(test_daly_cost_at_least_twice_mtbf_gives_mtbf),
		cmocka_unit_test(test_daly_bounds_clamp),
		cmocka_unit_test(test_daly_grows_with_cost),
		cmocka_unit_test(test_daly_mtbf_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
