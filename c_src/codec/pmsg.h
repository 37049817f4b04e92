/* pmsg: a prepared message, for the distribution header's atom cache. The
 * layers above the transport build one per event or message they send to
 * many (processes, emitters, broadcasts) and hand it to the transport,
 * which splices its encoding into each connection's frames; no layer above
 * sees the header itself. What an encoding is: the message's terms without
 * version byte, every atom that can be one written as a reference
 * numbered 0..nrefs-1, with the atom's text and its cache slot (a function
 * of the text, so the same on every connection). Pure: no I/O. */
#ifndef RC_PMSG_H
#define RC_PMSG_H

#include "codec/term_atoms.h"
#include "util/bytebuf.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PMSG_CACHE_SLOTS 2048
#define PMSG_MAX_REFS 255

/* A message whose encoding for the distribution header is made once and
 * spliced into every frame that carries it (transport/dist_hdr.c): one event fanned out to many subscribers, or a message whose
 * parts are known (the fixed head of a broadcast, then the event) so that
 * nothing is joined before the walk. A cache slot is a function of the
 * atom's text, so the encoding is the same on every connection; what a
 * connection's cache decides, per frame, is only whether a reference
 * defines its slot anew. Loop thread only. */
enum {
    PMSG_PART_TERM = 1, /* one whole term: its atoms become references */
    PMSG_PART_PLAIN = 2 /* bytes that hold no atom (tuple and list heads, a binary, a tail) */
};

#define PMSG_MEMO 64

typedef struct rc_pmsg {
    /* The message as given, parts[0] starting with its version byte 131;
     * kinds NULL: unknown, the parts are joined and the whole is walked. */
    const struct iovec *parts;
    const uint8_t *kinds;
    int nparts;
    int state; /* 0: not encoded yet; 1: encoded; -1: goes out the generic way */
    bytebuf body;  /* without version byte, references numbered 0..nrefs-1 */
    bytebuf texts; /* the referenced atoms' texts, one after another */
    int nrefs;
    uint16_t slot[PMSG_MAX_REFS];
    uint32_t text_off[PMSG_MAX_REFS];
    uint8_t text_len[PMSG_MAX_REFS];
    /* How many leading parts repeat from message to message (a broadcast's
     * tuple head and atom): set by the caller after pmsg_set. Their
     * encoding stays at the start of body and texts, and the next message
     * whose leading parts hold the same bytes (compared, never assumed)
     * starts its walk after them. */
    int fixed;
    size_t memo_len; /* 0: nothing kept */
    size_t memo_body, memo_texts;
    int memo_nrefs;
    uint8_t memo_raw[PMSG_MEMO];
} rc_pmsg;

void pmsg_init(rc_pmsg *m);
/* Points m at another message; its old encoding is forgotten (the memory
 * is kept for the next one). The parts must outlive every send of m. */
void pmsg_set(rc_pmsg *m, const struct iovec *parts, const uint8_t *kinds,
                      int nparts);
void pmsg_free(rc_pmsg *m);

/* Makes m's encoding (state 1), or finds it cannot be walked (state -1:
 * the message then goes out as it was given); flat is work space for
 * joining parts of unknown kinds. */
void pmsg_prepare(rc_pmsg *m, bytebuf *flat);

/* The cache slot of an atom's text. */
unsigned pmsg_slot_of(const uint8_t *text, size_t len);
/* Whether an atom may go out as a cache reference: UTF-8 (or ASCII) and
 * at most 255 bytes. */
int pmsg_atom_cacheable(const term_atom *a);

#endif
