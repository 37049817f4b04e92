/* log: one line per event on stderr, "<time> <level> [<module>] message".
 * The logger is a value owned by the node context (no global state); modules
 * that have no logger return error values instead of logging. Never log the
 * cookie. */
#ifndef RC_LOG_H
#define RC_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { RC_LOG_ERROR = 0, RC_LOG_WARNING, RC_LOG_INFO, RC_LOG_DEBUG } rc_log_level;

typedef struct rc_logger {
    rc_log_level level;
    FILE *out; /* stderr unless a test redirects it */
} rc_logger;

void rc_logger_init(rc_logger *lg, rc_log_level level);
/* Parses "error|warning|info|debug"; returns 0 on success, -1 otherwise. */
int rc_log_level_parse(const char *s, rc_log_level *out);
void rc_log(const rc_logger *lg, rc_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A budget of lines per window for events a peer can cause at will: a
 * flood costs a few lines, and the count left out is reported once the
 * next window opens. */
typedef struct rc_ratelimit {
    uint64_t window_start_ms;
    unsigned lines, suppressed;
} rc_ratelimit;
/* 1 if a line may be written now. *left_out is set to the number of lines
 * the window that just ended left out (0 if none, or no window ended). */
int rc_ratelimit_allow(rc_ratelimit *r, uint64_t now_ms, uint64_t window_ms, unsigned budget,
                       unsigned *left_out);

/* Bytes from a peer (a store name, a subscription key) made fit for a log
 * line: printable ASCII as is, anything else as \xHH, cut with "..." to
 * fit cap (at least 8). Returns out. */
char *rc_log_text(char *out, size_t cap, const uint8_t *bytes, size_t n);

#define RC_LOG_ENABLED(lg, lvl) ((lg) != NULL && (lvl) <= (lg)->level)
#define LOG_E(lg, mod, ...) rc_log((lg), RC_LOG_ERROR, (mod), __VA_ARGS__)
#define LOG_W(lg, mod, ...) rc_log((lg), RC_LOG_WARNING, (mod), __VA_ARGS__)
#define LOG_I(lg, mod, ...) rc_log((lg), RC_LOG_INFO, (mod), __VA_ARGS__)
#define LOG_D(lg, mod, ...) \
    do { if (RC_LOG_ENABLED((lg), RC_LOG_DEBUG)) rc_log((lg), RC_LOG_DEBUG, (mod), __VA_ARGS__); } while (0)

#endif
