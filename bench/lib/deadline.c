/*
 * One deadline for a benchmark program. bench/run gives each program an absolute end
 * (BENCH_DEADLINE, epoch seconds) inside its own 300 s (60 s quick); run alone, a program takes
 * that budget for itself. Measuring stops a margin before the end, so the sites are stopped and
 * the figures written before bench/run's timeout would have to kill anything.
 *
 * SIGINT and SIGTERM only set a flag: stopping a site and writing a file are not
 * async-signal-safe, so the main path sees the flag at its next bounded wait and reports.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/lib/bench.h"
#include "common/common.h"

static volatile sig_atomic_t deadline_sig;
static uint64_t deadline_stop_ms;	/* monotonic */
static uint64_t deadline_reserved_ms;
static bool deadline_hit;
static struct event *deadline_timer;

bool
deadline_quick(void)
{
	const char *q = getenv("BENCH_QUICK");

	return q != NULL && *q != '\0' && strcmp(q, "0") != 0;
}

static void
deadline_on_signal(int sig)
{
	deadline_sig = sig;
}

void
deadline_init(double margin_s)
{
	const char *d = getenv("BENCH_DEADLINE");
	uint64_t now = time_mono_ms(), left_ms = deadline_quick() ? 60000 : 300000;
	struct sigaction sa;

	if (d != NULL && *d != '\0') {
		uint64_t end_ms = strtoull(d, NULL, 10) * 1000, wall = time_now_ms();
		left_ms = end_ms > wall ? end_ms - wall : 0;
	}
	left_ms = left_ms > (uint64_t)(margin_s * 1000) ? left_ms - (uint64_t)(margin_s * 1000) : 0;
	deadline_stop_ms = now + left_ms;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = deadline_on_signal;	/* no SA_RESTART: a blocked poll returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void
deadline_reserve(double s)
{
	deadline_reserved_ms = s > 0 ? (uint64_t)(s * 1000) : 0;
}

static uint64_t
deadline_now_stop(void)
{
	return deadline_stop_ms > deadline_reserved_ms ? deadline_stop_ms - deadline_reserved_ms : 0;
}

int
deadline_signalled(void)
{
	return deadline_sig;
}

bool
deadline_passed(void)
{
	if (deadline_sig != 0)
		return true;
	if (time_mono_ms() < deadline_now_stop())
		return false;
	deadline_hit = true;
	return true;
}

uint64_t
deadline_end(double max_s)
{
	uint64_t end = time_mono_ms() + (uint64_t)(max_s * 1000), stop = deadline_now_stop();

	return end < stop ? end : stop;
}

int
deadline_slice(uint64_t until)
{
	uint64_t now = time_mono_ms(), stop = deadline_now_stop();

	if (deadline_sig != 0)
		return 0;
	if (stop < until)
		until = stop;
	if (now >= until)
		return 0;
	return until - now > 1000 ? 1000 : (int)(until - now);
}

static void
deadline_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
}

void
deadline_tick(struct event_base *base)
{
	struct timeval tv = { 0, 200 * 1000 };

	if (deadline_timer != NULL)
		return;
	deadline_timer = event_new(base, -1, EV_PERSIST, deadline_on_tick, NULL);
	if (deadline_timer != NULL)
		event_add(deadline_timer, &tv);
}

void
deadline_tick_free(void)
{
	if (deadline_timer != NULL)
		event_free(deadline_timer);
	deadline_timer = NULL;
}

const char *
deadline_why(void)
{
	if (deadline_sig == SIGTERM)
		return "SIGTERM";
	if (deadline_sig == SIGINT)
		return "SIGINT";
	return deadline_hit ? "deadline" : "";
}
