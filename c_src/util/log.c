#include "util/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void rc_logger_init(rc_logger *lg, rc_log_level level)
{
    lg->level = level;
    lg->out = stderr;
}

int rc_log_level_parse(const char *s, rc_log_level *out)
{
    for (int i = 0; i <= (int)RC_LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (rc_log_level)i;
            return 0;
        }
    }
    return -1;
}

void rc_log(const rc_logger *lg, rc_log_level level, const char *module, const char *fmt, ...)
{
    if (lg == NULL || level > lg->level)
        return;
    /* Build the whole line first so concurrent writers (worker threads) never
     * interleave within a line: one fputs of a complete line is atomic enough
     * for stderr's line-sized writes. */
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, level_names[level], module);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    /* Keep one event per line even if a message carried a newline. */
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n] = '\n';
    line[n + 1] = '\0';
    fputs(line, lg->out);
}

int rc_ratelimit_allow(rc_ratelimit *r, uint64_t now_ms, uint64_t window_ms, unsigned budget,
                       unsigned *left_out)
{
    *left_out = 0;
    if (now_ms - r->window_start_ms >= window_ms) {
        *left_out = r->suppressed;
        r->window_start_ms = now_ms;
        r->lines = r->suppressed = 0;
    }
    if (r->lines < budget) {
        r->lines++;
        return 1;
    }
    r->suppressed++;
    return 0;
}

static int log_plain(uint8_t b) { return b >= 0x20 && b < 0x7f && b != '\\'; }

char *rc_log_text(char *out, size_t cap, const uint8_t *bytes, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t whole = 0;
    for (size_t i = 0; i < n; i++)
        whole += log_plain(bytes[i]) ? 1 : 4;
    /* all of it if it fits, else as much as leaves room for "..." */
    size_t room = whole < cap ? whole : cap - 4;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t need = log_plain(bytes[i]) ? 1 : 4;
        if (o + need > room)
            break;
        if (need == 1) {
            out[o++] = (char)bytes[i];
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[bytes[i] >> 4];
            out[o++] = hex[bytes[i] & 15];
        }
    }
    if (whole >= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}
