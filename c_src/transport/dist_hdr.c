#include "transport/dist_hdr.h"

#include "codec/term_atoms.h"
#include "transport/frame.h"
#include "util/be.h"

#include <ei.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define VERSION_MAGIC 131
#define DIST_HEADER 68
#define PASS_THROUGH 112
#define NEW_ENTRY 8u
#define LONG_ATOMS 1u

typedef struct slot {
    uint8_t *text; /* NULL: never defined; at least one byte allocated */
    uint16_t len;
} slot;

struct dist_hdr_out {
    slot slots[DIST_HDR_CACHE_SLOTS];
    /* The frame being encoded: which slots it references already (stamped
     * with its number, so nothing needs clearing between frames). */
    uint32_t frame;
    uint32_t stamp[DIST_HDR_CACHE_SLOTS];
    uint8_t ref_of[DIST_HDR_CACHE_SLOTS];
    int nrefs;
    uint16_t ref_slot[DIST_HDR_MAX_REFS];
    uint8_t ref_new[DIST_HDR_MAX_REFS];
};

struct dist_hdr_in {
    slot slots[DIST_HDR_CACHE_SLOTS];
};

dist_hdr_out *dist_hdr_out_new(void) { return calloc(1, sizeof(dist_hdr_out)); }
dist_hdr_in *dist_hdr_in_new(void) { return calloc(1, sizeof(dist_hdr_in)); }

static void free_slots(slot *s)
{
    for (size_t i = 0; i < DIST_HDR_CACHE_SLOTS; i++)
        free(s[i].text);
}

void dist_hdr_out_free(dist_hdr_out *h)
{
    if (h == NULL)
        return;
    free_slots(h->slots);
    free(h);
}

void dist_hdr_in_free(dist_hdr_in *h)
{
    if (h == NULL)
        return;
    free_slots(h->slots);
    free(h);
}

void dist_hdr_scratch_init(dist_hdr_scratch *s)
{
    bytebuf_init(&s->flat, 0);
    bytebuf_init(&s->body, 0);
}

void dist_hdr_scratch_free(dist_hdr_scratch *s)
{
    bytebuf_free(&s->flat);
    bytebuf_free(&s->body);
}

static void reset(bytebuf *b) { b->off = b->len = 0; }

static int slot_is(const slot *s, const uint8_t *text, size_t len)
{
    return s->text != NULL && s->len == len && memcmp(s->text, text, len) == 0;
}

/* ------------------------------------------------------------------ sending */

/* This frame's reference for an atom, the slot taken over (a new entry)
 * when it holds another atom. -1: the atom goes out in full (its slot is
 * used by another atom of this frame, 255 references are made already, or
 * no memory for its text). */
static int ref_for(dist_hdr_out *h, const uint8_t *text, size_t len)
{
    unsigned s = pmsg_slot_of(text, len);
    slot *sl = &h->slots[s];
    if (h->stamp[s] == h->frame)
        return slot_is(sl, text, len) ? h->ref_of[s] : -1;
    if (h->nrefs >= DIST_HDR_MAX_REFS)
        return -1;
    int is_new = !slot_is(sl, text, len);
    if (is_new) {
        uint8_t *copy = malloc(len ? len : 1);
        if (copy == NULL)
            return -1;
        memcpy(copy, text, len);
        free(sl->text);
        sl->text = copy;
        sl->len = (uint16_t)len;
    }
    h->stamp[s] = h->frame;
    h->ref_of[s] = (uint8_t)h->nrefs;
    h->ref_slot[h->nrefs] = (uint16_t)s;
    h->ref_new[h->nrefs] = (uint8_t)is_new;
    return h->nrefs++;
}

static int out_atom(void *ctx, const term_atom *a, bytebuf *out)
{
    dist_hdr_out *h = ctx;
    /* Only the layers above feed this walk, and they never hold cache
     * references: one here would mean a frame we cannot describe. */
    if (a->tag == TERM_ATOM_CACHE_REF)
        return -1;
    int ref = pmsg_atom_cacheable(a) ? ref_for(h, a->text, a->len) : -1;
    if (ref < 0)
        return bytebuf_append(out, a->raw, a->raw_len);
    uint8_t r[2] = {TERM_ATOM_CACHE_REF, (uint8_t)ref};
    return bytebuf_append(out, r, 2);
}

/* Appends one term without its version byte, atoms as references; a term
 * the walk cannot read goes as it was. -1 only when out cannot grow. */
static int put_term(dist_hdr_out *h, bytebuf *body, const uint8_t *t, size_t len)
{
    size_t mark = bytebuf_pending(body);
    size_t i = 1;
    if (term_copy_atoms(t, len, &i, body, out_atom, h) == 0 && i == len)
        return 0;
    body->len = body->off + mark;
    return bytebuf_append(body, t + 1, len - 1);
}

static size_t header_size(const dist_hdr_out *h)
{
    int n = h->nrefs;
    size_t sz = 3;
    if (n == 0)
        return sz;
    sz += (size_t)n / 2 + 1;
    for (int i = 0; i < n; i++)
        sz += 1 + (h->ref_new[i] ? 1 + (size_t)h->slots[h->ref_slot[i]].len : 0);
    return sz;
}

static void write_header(const dist_hdr_out *h, uint8_t *p)
{
    int n = h->nrefs;
    *p++ = VERSION_MAGIC;
    *p++ = DIST_HEADER;
    *p++ = (uint8_t)n;
    if (n == 0)
        return;
    uint8_t *flags = p;
    size_t nflags = (size_t)n / 2 + 1;
    memset(flags, 0, nflags); /* the LongAtoms half byte stays 0: texts <= 255 */
    for (int i = 0; i < n; i++) {
        unsigned nib = (h->ref_new[i] ? NEW_ENTRY : 0u) | (unsigned)(h->ref_slot[i] >> 8);
        flags[i / 2] |= (uint8_t)(nib << ((i & 1) * 4));
    }
    p += nflags;
    for (int i = 0; i < n; i++) {
        const slot *s = &h->slots[h->ref_slot[i]];
        *p++ = (uint8_t)(h->ref_slot[i] & 0xff);
        if (h->ref_new[i]) {
            *p++ = (uint8_t)s->len;
            memcpy(p, s->text, s->len);
            p += s->len;
        }
    }
}

static void begin_frame(dist_hdr_out *h)
{
    if (++h->frame == 0) { /* wrapped: stamps of 4 billion frames ago */
        memset(h->stamp, 0, sizeof h->stamp);
        h->frame = 1;
    }
    h->nrefs = 0;
}

/* A frame given up after its references were taken: the slots it was to
 * define are forgotten, since the peer never learns them; left as they
 * were, a later frame would reference them as known. */
static void abandon_frame(dist_hdr_out *h)
{
    for (int i = 0; i < h->nrefs; i++)
        if (h->ref_new[i]) {
            slot *sl = &h->slots[h->ref_slot[i]];
            free(sl->text);
            sl->text = NULL;
            sl->len = 0;
        }
    h->nrefs = 0;
}

/* Appends the frame: length, header, then the body in pieces. */
static int put_frame(dist_hdr_out *h, bytebuf *out, const struct iovec *body, int nbody,
                     size_t *appended)
{
    size_t hs = header_size(h);
    size_t payload = hs;
    for (int i = 0; i < nbody; i++)
        payload += body[i].iov_len;
    if (payload > UINT32_MAX || bytebuf_reserve(out, 4 + payload) != 0) {
        abandon_frame(h);
        return RC_EFULL;
    }
    uint8_t *p = out->data + out->len;
    frame_put_header(p, (uint32_t)payload);
    write_header(h, p + 4);
    p += 4 + hs;
    for (int i = 0; i < nbody; i++) {
        if (body[i].iov_len == 0) /* an empty bytebuf has no storage at all */
            continue;
        memcpy(p, body[i].iov_base, body[i].iov_len);
        p += body[i].iov_len;
    }
    out->len += 4 + payload;
    *appended = 4 + payload;
    return RC_OK;
}

int dist_hdr_encode(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const struct iovec *parts,
                    int nparts, size_t *appended)
{
    *appended = 0;
    if (nparts < 1 || parts[0].iov_len < 2 || ((const uint8_t *)parts[0].iov_base)[0] != VERSION_MAGIC)
        return RC_EBADARG;
    const uint8_t *msg = NULL;
    size_t mlen = 0;
    if (nparts == 2) {
        msg = parts[1].iov_base;
        mlen = parts[1].iov_len;
    } else if (nparts > 2) {
        reset(&s->flat);
        for (int i = 1; i < nparts; i++)
            if (bytebuf_append(&s->flat, parts[i].iov_base, parts[i].iov_len) != 0)
                return RC_EFULL;
        msg = s->flat.data + s->flat.off;
        mlen = bytebuf_pending(&s->flat);
    }
    if (nparts > 1 && (mlen < 2 || msg[0] != VERSION_MAGIC))
        return RC_EBADARG;
    begin_frame(h);
    reset(&s->body);
    if (put_term(h, &s->body, parts[0].iov_base, parts[0].iov_len) != 0 ||
        (msg != NULL && put_term(h, &s->body, msg, mlen) != 0)) {
        abandon_frame(h);
        return RC_EFULL;
    }
    struct iovec body = {.iov_base = s->body.data + s->body.off,
                         .iov_len = bytebuf_pending(&s->body)};
    int rc = put_frame(h, out, &body, 1, appended);
    /* left empty, so a quiet connection's trim can give a burst's room back */
    reset(&s->body);
    reset(&s->flat);
    return rc;
}

/* This frame's references start with the message's, in its numbering:
 * its encoding then goes out as it is. 0, or -1 (no memory for a slot's
 * text: the frame is given up, the slots it defined forgotten). */
static int take_msg_refs(dist_hdr_out *h, const rc_pmsg *m)
{
    const uint8_t *texts = m->texts.data + m->texts.off;
    for (int j = 0; j < m->nrefs; j++) {
        unsigned s = m->slot[j];
        const uint8_t *text = texts + m->text_off[j];
        size_t len = m->text_len[j];
        slot *sl = &h->slots[s];
        int is_new = !slot_is(sl, text, len);
        if (is_new) {
            uint8_t *copy = malloc(len ? len : 1);
            if (copy == NULL) {
                abandon_frame(h);
                return -1;
            }
            memcpy(copy, text, len);
            free(sl->text);
            sl->text = copy;
            sl->len = (uint16_t)len;
        }
        h->stamp[s] = h->frame;
        h->ref_of[s] = (uint8_t)j;
        h->ref_slot[j] = (uint16_t)s;
        h->ref_new[j] = (uint8_t)is_new;
        h->nrefs = j + 1;
    }
    return 0;
}

static int encode_generic(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const uint8_t *ctrl,
                          size_t ctrl_len, const rc_pmsg *m, size_t *appended)
{
    struct iovec v[16];
    if (m->nparts > 15)
        return RC_EBADARG;
    v[0].iov_base = (void *)ctrl;
    v[0].iov_len = ctrl_len;
    for (int i = 0; i < m->nparts; i++)
        v[i + 1] = m->parts[i];
    return dist_hdr_encode(h, s, out, v, m->nparts + 1, appended);
}

int dist_hdr_encode_msg(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const uint8_t *ctrl,
                        size_t ctrl_len, rc_pmsg *m, size_t *appended)
{
    *appended = 0;
    if (ctrl_len < 2 || ctrl[0] != VERSION_MAGIC)
        return RC_EBADARG;
    if (m->state == 0)
        pmsg_prepare(m, &s->flat);
    if (m->state < 0)
        return encode_generic(h, s, out, ctrl, ctrl_len, m, appended);
    begin_frame(h);
    if (take_msg_refs(h, m) != 0)
        return encode_generic(h, s, out, ctrl, ctrl_len, m, appended);
    reset(&s->body);
    if (put_term(h, &s->body, ctrl, ctrl_len) != 0) {
        abandon_frame(h);
        return RC_EFULL;
    }
    struct iovec body[2] = {
        {.iov_base = s->body.data + s->body.off, .iov_len = bytebuf_pending(&s->body)},
        {.iov_base = m->body.data + m->body.off, .iov_len = bytebuf_pending(&m->body)}};
    int rc = put_frame(h, out, body, 2, appended);
    reset(&s->body);
    return rc;
}

/* The tag and length of a UTF-8 atom of len bytes; the length written. */
static size_t put_atom_head(uint8_t *p, size_t len)
{
    if (len <= 255) {
        p[0] = ERL_SMALL_ATOM_UTF8_EXT;
        p[1] = (uint8_t)len;
        return 2;
    }
    p[0] = ERL_ATOM_UTF8_EXT;
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    return 3;
}

/* An atom of a control term written here: a reference when it can be one
 * (as out_atom decides), else in full. The length written. */
static size_t put_utf8_atom(dist_hdr_out *h, uint8_t *p, const uint8_t *text, size_t len,
                            int refs)
{
    int ref = refs && len <= 255 ? ref_for(h, text, len) : -1;
    if (ref >= 0) {
        p[0] = TERM_ATOM_CACHE_REF;
        p[1] = (uint8_t)ref;
        return 2;
    }
    size_t hl = put_atom_head(p, len);
    memcpy(p + hl, text, len);
    return hl + len;
}

/* The most a send's control term takes: version, tuple and integer heads,
 * '' and the pid with the longest node name. */
#define SEND_CTRL_MAX (1 + 2 + 2 + 2 + 1 + 3 + MAXATOMLEN_UTF8 + 12)

/* {2, '', To} as ei writes it (NEW_PID_EXT, the node a UTF-8 atom), after
 * a version byte when !refs, atoms as references when refs. The length. */
static size_t put_send_ctrl(dist_hdr_out *h, uint8_t *p, const erlang_pid *to, int refs)
{
    size_t n = 0, nlen = strnlen(to->node, MAXATOMLEN_UTF8 - 1);
    if (!refs)
        p[n++] = VERSION_MAGIC;
    p[n++] = ERL_SMALL_TUPLE_EXT;
    p[n++] = 3;
    p[n++] = ERL_SMALL_INTEGER_EXT;
    p[n++] = 2; /* SEND */
    n += put_utf8_atom(h, p + n, (const uint8_t *)"", 0, refs);
    p[n++] = ERL_NEW_PID_EXT;
    n += put_utf8_atom(h, p + n, (const uint8_t *)to->node, nlen, refs);
    rc_put32(p + n, to->num);
    rc_put32(p + n + 4, to->serial);
    rc_put32(p + n + 8, to->creation);
    return n + 12;
}

int dist_hdr_encode_send(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const erlang_pid *to,
                         rc_pmsg *m, size_t *appended)
{
    *appended = 0;
    uint8_t ctrl[SEND_CTRL_MAX];
    if (m->state == 0)
        pmsg_prepare(m, &s->flat);
    if (m->state > 0) {
        begin_frame(h);
        if (take_msg_refs(h, m) == 0) {
            struct iovec body[2] = {
                {.iov_base = ctrl, .iov_len = put_send_ctrl(h, ctrl, to, 1)},
                {.iov_base = m->body.data + m->body.off, .iov_len = bytebuf_pending(&m->body)}};
            return put_frame(h, out, body, 2, appended);
        }
    }
    size_t clen = put_send_ctrl(h, ctrl, to, 0);
    return encode_generic(h, s, out, ctrl, clen, m, appended);
}

/* ---------------------------------------------------------------- receiving */

static const char TOO_BIG[] = "decoded frame too big";

typedef struct in_frame {
    const char *why; /* why the walk stopped, when the callback stopped it */
    int n;
    const uint8_t *text[DIST_HDR_MAX_REFS];
    uint16_t len[DIST_HDR_MAX_REFS];
} in_frame;

static int in_atom(void *ctx, const term_atom *a, bytebuf *out)
{
    in_frame *f = ctx;
    if (a->tag != TERM_ATOM_CACHE_REF) {
        if (bytebuf_append(out, a->raw, a->raw_len) == 0)
            return 0;
        f->why = TOO_BIG;
        return -1;
    }
    if (a->cache_ref >= f->n) {
        f->why = "atom cache reference past the header's references";
        return -1;
    }
    size_t n = f->len[a->cache_ref];
    uint8_t hdr[3];
    size_t hl = put_atom_head(hdr, n);
    if (bytebuf_append(out, hdr, hl) != 0 || bytebuf_append(out, f->text[a->cache_ref], n) != 0) {
        f->why = TOO_BIG;
        return -1;
    }
    return 0;
}

/* Reads the header's references into f, updating the cache as the peer
 * did when it wrote them (in order: a slot may be redefined within one
 * frame). Replaced texts go to dead[], freed once the frame is decoded,
 * since f may still point at them. The offset after the header, or 0. */
static size_t read_refs(dist_hdr_in *h, const uint8_t *p, size_t len, in_frame *f,
                        uint8_t **dead, int *ndead, const char **why)
{
    size_t i = 3;
    int n = p[2];
    f->n = n;
    if (n == 0)
        return i;
    size_t nflags = (size_t)n / 2 + 1;
    if (len - i < nflags) {
        *why = "distribution header truncated in its flags";
        return 0;
    }
    const uint8_t *flags = p + i;
    i += nflags;
    int long_atoms = ((flags[n / 2] >> ((n & 1) * 4)) & LONG_ATOMS) != 0;
    for (int t = 0; t < n; t++) {
        unsigned nib = (flags[t / 2] >> ((t & 1) * 4)) & 0xfu;
        if (i >= len) {
            *why = "distribution header truncated in its atom references";
            return 0;
        }
        unsigned cix = ((nib & 7u) << 8) | p[i++];
        slot *s = &h->slots[cix];
        if (!(nib & NEW_ENTRY)) {
            if (s->text == NULL) {
                *why = "reference to an atom cache entry never defined";
                return 0;
            }
            f->text[t] = s->text;
            f->len[t] = s->len;
            continue;
        }
        size_t lb = long_atoms ? 2 : 1;
        if (len - i < lb) {
            *why = "distribution header truncated in an atom length";
            return 0;
        }
        size_t alen = long_atoms ? ((size_t)p[i] << 8) | p[i + 1] : p[i];
        i += lb;
        if (alen > DIST_HDR_MAX_ATOM_BYTES) {
            *why = "atom in the distribution header longer than an atom can be";
            return 0;
        }
        if (len - i < alen) {
            *why = "distribution header truncated in an atom text";
            return 0;
        }
        uint8_t *copy = malloc(alen ? alen : 1);
        if (copy == NULL) {
            *why = "out of memory for the atom cache";
            return 0;
        }
        memcpy(copy, p + i, alen);
        i += alen;
        if (s->text != NULL)
            dead[(*ndead)++] = s->text;
        s->text = copy;
        s->len = (uint16_t)alen;
        f->text[t] = copy;
        f->len[t] = (uint16_t)alen;
    }
    return i;
}

static int decode_body(in_frame *f, const uint8_t *p, size_t len, size_t i, bytebuf *out,
                       const char **why)
{
    static const uint8_t head[2] = {PASS_THROUGH, VERSION_MAGIC};
    *why = TOO_BIG;
    if (bytebuf_append(out, head, 2) != 0)
        return -1;
    f->why = NULL;
    int rc = term_copy_atoms(p, len, &i, out, in_atom, f);
    if (rc != 0) {
        *why = f->why != NULL          ? f->why
               : rc == RC_EFULL ? TOO_BIG
                                       : "malformed control message after a distribution header";
        return -1;
    }
    if (i == len)
        return 0;
    uint8_t magic = VERSION_MAGIC;
    if (bytebuf_append(out, &magic, 1) != 0)
        return -1;
    f->why = NULL;
    rc = term_copy_atoms(p, len, &i, out, in_atom, f);
    if (rc == RC_EFULL || f->why == TOO_BIG)
        return -1;
    /* A message that cannot be read whole goes on with its readable start
     * decoded and the rest as it came: the layer above refuses it as it
     * refuses a malformed pass-through message, and can still look at its
     * first fields (to answer a call with badarg, say). */
    return bytebuf_append(out, p + i, len - i) == 0 ? 0 : -1;
}

int dist_hdr_decode(dist_hdr_in *h, const uint8_t *p, size_t len, bytebuf *out, const char **why)
{
    if (len < 3 || p[0] != VERSION_MAGIC || p[1] != DIST_HEADER) {
        *why = len > 0 && p[0] == PASS_THROUGH
                   ? "pass-through frame on a connection with distribution headers"
               : len > 1 && p[0] == VERSION_MAGIC && (p[1] == 69 || p[1] == 70)
                   ? "fragmented frame, never agreed to"
                   : "frame without a distribution header";
        return -1;
    }
    in_frame f;
    uint8_t *dead[DIST_HDR_MAX_REFS];
    int ndead = 0;
    size_t i = read_refs(h, p, len, &f, dead, &ndead, why);
    int rc = -1;
    if (i != 0) {
        if (i >= len)
            *why = "distribution header without a control message";
        else
            rc = decode_body(&f, p, len, i, out, why);
    }
    for (int k = 0; k < ndead; k++)
        free(dead[k]);
    return rc == 0 ? RC_OK : *why == TOO_BIG ? RC_EFULL : RC_EFAIL;
}
