#include "proc/cpid.h"

#include "util/be.h"

#include <stdlib.h>
#include <string.h>

/* Parses one pid at *idx (bounded by len) without touching the table. */
static int parse_pid(const char *buf, int len, int *idx, const char **name, size_t *nlen,
                     rc_cpid *out)
{
    const uint8_t *b = (const uint8_t *)buf;
    size_t i = (size_t)*idx;
    if (*idx < 0 || i + 1 > (size_t)len)
        return -1;
    uint8_t tag = b[i];
    if (tag != ERL_PID_EXT && tag != ERL_NEW_PID_EXT)
        return -1;
    i++;
    if (i + 2 > (size_t)len)
        return -1;
    size_t alen, hdr;
    switch (b[i]) {
    case ERL_SMALL_ATOM_UTF8_EXT:
    case ERL_SMALL_ATOM_EXT:
        alen = b[i + 1];
        hdr = 2;
        break;
    case ERL_ATOM_UTF8_EXT:
    case ERL_ATOM_EXT:
        if (i + 3 > (size_t)len)
            return -1;
        alen = ((size_t)b[i + 1] << 8) | b[i + 2];
        hdr = 3;
        break;
    default:
        return -1;
    }
    /* Node names are ASCII in practice; a latin-1 ATOM_EXT name with bytes
     * >= 128 would intern under different bytes than its UTF-8 twin, which
     * only costs a second index for the same node. */
    *name = (const char *)b + i + hdr;
    *nlen = alen;
    i += hdr + alen;
    size_t tail = tag == ERL_PID_EXT ? 9 : 12;
    if (i + tail > (size_t)len)
        return -1;
    out->num = rc_get32(b + i);
    out->serial = rc_get32(b + i + 4);
    out->creation = tag == ERL_PID_EXT ? b[i + 8] : rc_get32(b + i + 8);
    *idx = (int)(i + tail);
    return 0;
}

int rc_cpid_read(rc_nodetab *t, const char *buf, int len, int *idx, rc_cpid *out)
{
    const char *name;
    size_t nlen;
    rc_cpid p;
    int at = *idx;
    if (parse_pid(buf, len, &at, &name, &nlen, &p) != 0)
        return -1;
    p.node = rc_nodetab_intern(t, name, nlen);
    if (p.node == RC_NODE_NONE)
        return -1;
    *out = p;
    *idx = at;
    return 0;
}

int rc_cpid_read_of(const rc_nodetab *t, uint32_t node, const char *buf, int len, int *idx,
                    rc_cpid *out)
{
    const char *name;
    size_t nlen;
    rc_cpid p;
    int at = *idx;
    const char *want = rc_nodetab_name(t, node);
    if (want == NULL || parse_pid(buf, len, &at, &name, &nlen, &p) != 0)
        return -1;
    *idx = at;
    if (nlen != rc_nodetab_name_len(t, node) || memcmp(name, want, nlen) != 0)
        return 1;
    p.node = node;
    *out = p;
    return 0;
}

int rc_cpid_write(const rc_nodetab *t, ei_x_buff *x, const rc_cpid *p)
{
    const char *name = rc_nodetab_name(t, p->node);
    size_t nlen = rc_nodetab_name_len(t, p->node);
    if (name == NULL || nlen > 255 * 4)
        return -1;
    uint8_t b[3 + 255 * 4 + 12 + 1];
    size_t i = 0;
    b[i++] = ERL_NEW_PID_EXT;
    if (nlen <= 255) {
        b[i++] = ERL_SMALL_ATOM_UTF8_EXT;
        b[i++] = (uint8_t)nlen;
    } else {
        b[i++] = ERL_ATOM_UTF8_EXT;
        b[i++] = (uint8_t)(nlen >> 8);
        b[i++] = (uint8_t)nlen;
    }
    memcpy(b + i, name, nlen);
    i += nlen;
    const uint32_t v[3] = {p->num, p->serial, p->creation};
    for (int k = 0; k < 3; k++) {
        b[i++] = (uint8_t)(v[k] >> 24);
        b[i++] = (uint8_t)(v[k] >> 16);
        b[i++] = (uint8_t)(v[k] >> 8);
        b[i++] = (uint8_t)v[k];
    }
    return ei_x_append_buf(x, (const char *)b, (int)i);
}

int rc_cpid_from_ei(rc_nodetab *t, const erlang_pid *in, rc_cpid *out)
{
    uint32_t node = rc_nodetab_intern(t, in->node, strlen(in->node));
    if (node == UINT32_MAX)
        return -1;
    out->node = node;
    out->num = in->num;
    out->serial = in->serial;
    out->creation = in->creation;
    return 0;
}

int rc_cpid_to_ei(const rc_nodetab *t, const rc_cpid *in, erlang_pid *out)
{
    const char *name = rc_nodetab_name(t, in->node);
    /* the table knows the length: every send to a member converts a pid */
    size_t len = rc_nodetab_name_len(t, in->node);
    if (name == NULL || len >= sizeof out->node)
        return -1;
    memcpy(out->node, name, len + 1);
    out->num = in->num;
    out->serial = in->serial;
    out->creation = in->creation;
    return 0;
}

int rc_cref_from_ei(rc_nodetab *t, const erlang_ref *in, rc_cref *out)
{
    uint32_t node = rc_nodetab_intern(t, in->node, strlen(in->node));
    if (node == RC_NODE_NONE || in->len < 1 || in->len > 5)
        return -1;
    memset(out, 0, sizeof *out);
    out->node = node;
    out->creation = in->creation;
    out->len = (uint8_t)in->len;
    for (int i = 0; i < in->len; i++)
        out->n[i] = in->n[i];
    return 0;
}

int rc_cref_to_ei(const rc_nodetab *t, const rc_cref *in, erlang_ref *out)
{
    const char *name = rc_nodetab_name(t, in->node);
    size_t len = rc_nodetab_name_len(t, in->node);
    if (name == NULL || len >= sizeof out->node)
        return -1;
    memset(out, 0, sizeof *out);
    memcpy(out->node, name, len + 1);
    out->creation = in->creation;
    out->len = in->len;
    for (int i = 0; i < in->len; i++)
        out->n[i] = in->n[i];
    return 0;
}

int rc_cref_matches(const rc_nodetab *t, const rc_cref *c, const erlang_ref *ref)
{
    if (ref->len != c->len || ref->creation != c->creation)
        return 0;
    for (int i = 0; i < c->len; i++)
        if ((uint32_t)ref->n[i] != c->n[i])
            return 0;
    return rc_nodetab_find(t, ref->node, strlen(ref->node)) == c->node;
}
