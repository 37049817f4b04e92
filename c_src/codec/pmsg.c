#include "codec/pmsg.h"

#include <ei.h>
#include <string.h>

#define VERSION_MAGIC 131
/* A message's buffers are kept from message to message up to this. */
#define MSG_KEEP (64u * 1024u)

static void reset(bytebuf *b) { b->off = b->len = 0; }

/* The slot an atom lives in is a function of its text, so an atom that is
 * sent again finds itself there and goes out as a one-byte reference.
 * Eight bytes a step: every atom of every frame is hashed (a node name of
 * 20 bytes byte by byte cost more than the rest of its control term). */
unsigned pmsg_slot_of(const uint8_t *text, size_t len)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (len + 1), w;
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        memcpy(&w, text + i, 8);
        x = (x ^ w) * 0xff51afd7ed558ccdull;
        x ^= x >> 32;
    }
    if (len >= 8 && i < len) { /* the last 8 bytes, overlapping the ones hashed */
        memcpy(&w, text + len - 8, 8);
    } else {
        for (w = 0; i < len; i++)
            w = (w << 8) | text[i];
    }
    x = (x ^ w) * 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 29;
    return (unsigned)(x >> 40) & (PMSG_CACHE_SLOTS - 1);
}

static int ascii(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80)
            return 0;
    return 1;
}

int pmsg_atom_cacheable(const term_atom *a)
{
    int utf8 = a->tag == ERL_SMALL_ATOM_UTF8_EXT || a->tag == ERL_ATOM_UTF8_EXT ||
               ascii(a->text, a->len);
    return utf8 && a->len <= 255;
}

void pmsg_init(rc_pmsg *m)
{
    memset(m, 0, sizeof *m);
    bytebuf_init(&m->body, 0);
    bytebuf_init(&m->texts, 0);
}

void pmsg_set(rc_pmsg *m, const struct iovec *parts, const uint8_t *kinds,
                      int nparts)
{
    m->parts = parts;
    m->kinds = kinds;
    m->nparts = nparts;
    m->state = 0;
    m->nrefs = 0;
    m->fixed = 0;
    reset(&m->body);
    reset(&m->texts);
    /* kept from message to message, but one huge event must not pin its
     * size for good (the kept encoding goes with it) */
    if (m->body.cap > MSG_KEEP || m->texts.cap > MSG_KEEP)
        m->memo_len = 0;
    bytebuf_trim(&m->body, MSG_KEEP);
    bytebuf_trim(&m->texts, MSG_KEEP);
}

void pmsg_free(rc_pmsg *m)
{
    bytebuf_free(&m->body);
    bytebuf_free(&m->texts);
    m->state = 0;
    m->nrefs = 0;
    m->memo_len = 0;
}

/* An atom of the message: a reference numbered in the message's own list
 * (one per slot; a second atom wanting a slot goes out in full, as within
 * a frame). Which slot texts a connection holds is not looked at here. */
static int msg_atom(void *ctx, const term_atom *a, bytebuf *out)
{
    rc_pmsg *m = ctx;
    if (a->tag == TERM_ATOM_CACHE_REF)
        return -1;
    if (!pmsg_atom_cacheable(a))
        return bytebuf_append(out, a->raw, a->raw_len);
    unsigned s = pmsg_slot_of(a->text, a->len);
    int ref = -1;
    for (int j = 0; j < m->nrefs; j++)
        if (m->slot[j] == s) {
            if (m->text_len[j] == a->len &&
                memcmp(m->texts.data + m->texts.off + m->text_off[j], a->text, a->len) == 0)
                ref = j;
            else
                return bytebuf_append(out, a->raw, a->raw_len);
            break;
        }
    if (ref < 0) {
        if (m->nrefs >= PMSG_MAX_REFS || bytebuf_pending(&m->texts) > UINT32_MAX - 255)
            return bytebuf_append(out, a->raw, a->raw_len);
        size_t off = bytebuf_pending(&m->texts);
        if (bytebuf_append(&m->texts, a->text, a->len) != 0)
            return -1;
        ref = m->nrefs++;
        m->slot[ref] = (uint16_t)s;
        m->text_off[ref] = (uint32_t)off;
        m->text_len[ref] = (uint8_t)a->len;
    }
    uint8_t r[2] = {TERM_ATOM_CACHE_REF, (uint8_t)ref};
    return bytebuf_append(out, r, 2);
}

static int msg_walk(rc_pmsg *m, const uint8_t *t, size_t len, size_t from)
{
    size_t i = from;
    return term_copy_atoms(t, len, &i, &m->body, msg_atom, m) == 0 && i == len ? 0 : -1;
}

/* The leading fixed parts' bytes, when they fit the memo; 0 otherwise. */
static size_t fixed_len(const rc_pmsg *m)
{
    if (m->kinds == NULL || m->fixed <= 0 || m->fixed > m->nparts)
        return 0;
    size_t n = 0;
    for (int i = 0; i < m->fixed; i++) {
        if (m->parts[i].iov_len > PMSG_MEMO - n)
            return 0;
        n += m->parts[i].iov_len;
    }
    return n;
}

static int fixed_same(const rc_pmsg *m, size_t n)
{
    if (n == 0 || m->memo_len != n)
        return 0;
    size_t at = 0;
    for (int i = 0; i < m->fixed; i++) {
        if (memcmp(m->memo_raw + at, m->parts[i].iov_base, m->parts[i].iov_len) != 0)
            return 0;
        at += m->parts[i].iov_len;
    }
    return 1;
}

static void fixed_keep(rc_pmsg *m, size_t n)
{
    size_t at = 0;
    for (int i = 0; i < m->fixed; i++) {
        memcpy(m->memo_raw + at, m->parts[i].iov_base, m->parts[i].iov_len);
        at += m->parts[i].iov_len;
    }
    m->memo_len = n;
    m->memo_body = bytebuf_pending(&m->body);
    m->memo_texts = bytebuf_pending(&m->texts);
    m->memo_nrefs = m->nrefs;
}

/* Makes m's encoding: each part in place when their kinds are known,
 * else the parts joined in flat first. state -1 when any of it cannot
 * be walked (the generic way then sends the message as given). */
void pmsg_prepare(rc_pmsg *m, bytebuf *flat)
{
    m->state = -1;
    m->nrefs = 0;
    size_t fixed = fixed_len(m);
    int from = 0;
    if (fixed_same(m, fixed)) {
        /* the fixed parts' encoding is still there: only the rest is walked */
        m->body.off = m->texts.off = 0;
        m->body.len = m->memo_body;
        m->texts.len = m->memo_texts;
        m->nrefs = m->memo_nrefs;
        from = m->fixed;
    } else {
        m->memo_len = 0;
        reset(&m->body);
        reset(&m->texts);
    }
    if (m->nparts < 1 || m->parts[0].iov_len < 1 ||
        ((const uint8_t *)m->parts[0].iov_base)[0] != VERSION_MAGIC)
        return;
    if (m->kinds == NULL) {
        reset(flat);
        for (int i = 0; i < m->nparts; i++)
            if (bytebuf_append(flat, m->parts[i].iov_base, m->parts[i].iov_len) != 0)
                return;
        int rc = msg_walk(m, flat->data + flat->off, bytebuf_pending(flat), 1);
        reset(flat);
        if (rc == 0)
            m->state = 1;
        return;
    }
    for (int i = from; i < m->nparts; i++) {
        const uint8_t *p = m->parts[i].iov_base;
        size_t n = m->parts[i].iov_len, skip = i == 0 ? 1 : 0;
        if (m->kinds[i] == PMSG_PART_TERM) {
            if (n <= skip || msg_walk(m, p, n, skip) != 0)
                return;
        } else if (m->kinds[i] != PMSG_PART_PLAIN ||
                   bytebuf_append(&m->body, p + skip, n - skip) != 0) {
            return;
        }
        if (i + 1 == m->fixed && fixed > 0)
            fixed_keep(m, fixed);
    }
    m->state = 1;
}

