/*
 * The adaptive checkpoint interval (docs/ARCHITECTURE.md, "Adaptive checkpoint intervals"):
 * Daly's higher-order estimate of the optimum compute time between checkpoints (J. T. Daly, "A
 * higher order estimate of the optimum checkpoint interval for restart dumps", FGCS 22(3), 2006),
 * which refines Young's sqrt(2 delta M):
 *
 *   T = sqrt(2 delta M) (1 + sqrt(delta / (2M)) / 3 + delta / (18 M)) - delta   for delta < 2M
 *   T = M                                                                        otherwise
 *
 * delta the cost of one checkpoint, M the mean time between failures. Bounded by [min, max]
 * (cts.conf auto_min, auto_max), so an unmeasured cost (delta 0 gives T 0) starts at min.
 */
#include <math.h>
#include <stdint.h>

#include "common/common.h"

uint64_t
daly_interval_ms(uint64_t delta_ms, uint64_t mtbf_ms, uint64_t min_ms, uint64_t max_ms)
{
	double d = (double)delta_ms, m = (double)mtbf_ms, t;

	if (mtbf_ms == 0 || d >= 2 * m)
		t = m;
	else
		t = sqrt(2 * d * m) * (1 + sqrt(d / (2 * m)) / 3 + d / (18 * m)) - d;
	if (t < (double)min_ms)
		return min_ms;
	if (t > (double)max_ms)
		return max_ms;
	return (uint64_t)(t + 0.5);
}

int
daly_mtbf_parse(const char *s, uint64_t *ms)
{
	uint64_t v;

	if (duration_parse(s, &v) != 0 || v == 0)
		return -1;
	*ms = v;
	return 0;
}
