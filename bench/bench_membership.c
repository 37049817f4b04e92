/* Cost of a peer leaving a pg scope (pgm_remove_node) in a large member
 * table: 1,000,000 memberships in 100,000 groups of 10, member k of group g
 * on node (g + k) % 10, so each node has one member in every group; node 10
 * has 10 more memberships in 10 groups, in the middle of their arrays.
 * Times removing node 10 (few memberships) and node 3 (100,000), each on a
 * freshly built table, and prints the median over the repetitions (and the
 * least and the most of each removal), with the cost of building the table
 * one join at a time and its heap bytes per membership. Uses only the calls
 * the table has always had, so the same file measures older versions of
 * membership.c. Prints "<name> <value>". */
#include "pg/membership.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { GROUPS = 100000, PER = 10, NODES = 10, FEW_NODE = 10, FEW = 10 };

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static size_t key_of(char *buf, size_t cap, int g)
{
    return (size_t)snprintf(buf, cap, "group-%06d", g);
}

typedef struct tally {
    size_t calls, pids;
} tally;

static void on_removed(void *ctx, const pgm_group *g, const rc_cpid *pids, size_t n)
{
    (void)g;
    (void)pids;
    tally *t = ctx;
    t->calls++;
    t->pids += n;
}

/* Group g with FEW_NODE's member: which of the 10 groups, spread out. */
static int few_group(int g) { return g % (GROUPS / FEW) == GROUPS / FEW / 2; }

static pgm_table *build(double *ns_per_add)
{
    pgm_table *t = pgm_new();
    if (t == NULL)
        return NULL;
    double t0 = now_ns();
    for (int g = 0; g < GROUPS; g++) {
        char key[32];
        size_t kl = key_of(key, sizeof key, g);
        for (int k = 0; k < PER; k++) {
            rc_cpid p = {.node = (uint32_t)((g + k) % NODES), .num = (uint32_t)(g * PER + k),
                         .serial = 0, .creation = 1};
            if (pgm_add(t, (const uint8_t *)key, kl, &p, 1, 0) == NULL)
                goto oom;
            if (k == PER / 2 && few_group(g)) {
                rc_cpid q = {.node = FEW_NODE, .num = (uint32_t)g, .serial = 0, .creation = 1};
                if (pgm_add(t, (const uint8_t *)key, kl, &q, 1, 0) == NULL)
                    goto oom;
            }
        }
    }
    *ns_per_add = (now_ns() - t0) / (double)pgm_member_count(t);
    return t;
oom:
    pgm_free(t);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 100)
        reps = 5;
    double few_ns[100], many_ns[100], add_ns[100];
    size_t bytes = 0, members = 0;
    for (int r = 0; r < reps; r++) {
        size_t h0 = heap_bytes();
        pgm_table *t = build(&add_ns[r]);
        if (t == NULL) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        bytes = heap_bytes() - h0;
        members = pgm_member_count(t);
        if (members != (size_t)GROUPS * PER + FEW || pgm_group_count(t) != GROUPS)
            return 1;

        tally few = {0}, many = {0};
        double t0 = now_ns();
        size_t gone_few = pgm_remove_node(t, FEW_NODE, on_removed, &few);
        double t1 = now_ns();
        size_t gone_many = pgm_remove_node(t, 3, on_removed, &many);
        double t2 = now_ns();
        few_ns[r] = t1 - t0;
        many_ns[r] = t2 - t1;
        if (gone_few != FEW || few.calls != FEW || few.pids != FEW || gone_many != GROUPS ||
            many.calls != GROUPS || many.pids != GROUPS ||
            pgm_member_count(t) != (size_t)GROUPS * (PER - 1)) {
            fprintf(stderr, "wrong removal counts\n");
            return 1;
        }
        pgm_free(t);
    }
    printf("pgm_reps %d\n", reps);
    printf("pgm_memberships %zu\n", members);
    printf("pgm_groups %d\n", GROUPS);
    printf("pgm_add_one_ns %.1f\n", median(add_ns, reps));
    printf("pgm_heap_bytes_per_membership %.1f\n", (double)bytes / (double)members);
    /* median sorts: the first and last are then the least and the most */
    printf("pgm_remove_node_10_memberships_us %.1f\n", median(few_ns, reps) / 1e3);
    printf("pgm_remove_node_10_memberships_us_min %.1f\n", few_ns[0] / 1e3);
    printf("pgm_remove_node_10_memberships_us_max %.1f\n", few_ns[reps - 1] / 1e3);
    printf("pgm_remove_node_100k_memberships_us %.1f\n", median(many_ns, reps) / 1e3);
    printf("pgm_remove_node_100k_memberships_us_min %.1f\n", many_ns[0] / 1e3);
    printf("pgm_remove_node_100k_memberships_us_max %.1f\n", many_ns[reps - 1] / 1e3);
    return 0;
}
