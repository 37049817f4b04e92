/* dist_hdr: the distribution header and its atom cache, for a connection
 * whose peer took DFLAG_DIST_HDR_ATOM_CACHE in the handshake. On such a
 * connection every frame starts 131 68: the header lists the atoms the
 * frame uses (new ones with their text, known ones by cache slot), then the
 * control term and the message follow without version bytes, their atoms
 * written as 2-byte references into that list.
 *
 * Why: a BEAM receiving a full atom looks it up in its atom table (hash,
 * table lock, compare) for every message; a cached atom is an array index.
 * That look-up was the receiving node's extra cost for C-sent messages.
 *
 * The layers above the transport keep seeing pass-through frames (112, 131
 * control, 131 message): outgoing frames are encoded from that shape and
 * incoming ones are decoded into it, so nothing above knows headers exist.
 *
 * Each direction keeps its own cache of 2048 slots per connection. Incoming
 * bytes are hostile: every count, length and index is checked, references
 * to slots never defined and atom texts longer than 1020 bytes are refused,
 * and a decoded frame can grow no further than its output buffer's limit.
 * Pure: no I/O, loop thread only. */
#ifndef RC_DIST_HDR_H
#define RC_DIST_HDR_H

#include "util/bytebuf.h"
#include "util/err.h"

#include <ei.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DIST_HDR_CACHE_SLOTS 2048
#define DIST_HDR_MAX_REFS 255
/* 255 characters of at most 4 UTF-8 bytes: the longest atom. */
#define DIST_HDR_MAX_ATOM_BYTES 1020

typedef struct dist_hdr_out dist_hdr_out;
typedef struct dist_hdr_in dist_hdr_in;

dist_hdr_out *dist_hdr_out_new(void);
void dist_hdr_out_free(dist_hdr_out *h);
dist_hdr_in *dist_hdr_in_new(void);
void dist_hdr_in_free(dist_hdr_in *h);

/* Work space for encoding, reused from frame to frame. */
typedef struct dist_hdr_scratch {
    bytebuf flat; /* a message given in several parts, joined */
    bytebuf body; /* the terms as they go out */
} dist_hdr_scratch;

void dist_hdr_scratch_init(dist_hdr_scratch *s);
void dist_hdr_scratch_free(dist_hdr_scratch *s);

/* Appends one whole frame to out (its 4-byte length included): parts[0] is
 * the control term, parts[1..nparts) the message in pieces, each of the two
 * starting with its version byte 131 as in a pass-through frame (no
 * message: nparts 1). Atoms become cache references where they can (UTF-8
 * or ASCII, at most 255 bytes, at most 255 a frame); a message the walk
 * cannot read goes out as it was given. *appended: bytes added to out.
 * RC_OK; RC_EFULL: out (or scratch) cannot grow that far, nothing appended;
 * RC_EBADARG: a part does not start with the version byte. */
int dist_hdr_encode(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const struct iovec *parts,
                    int nparts, size_t *appended);

/* A message whose encoding is made once and spliced into every frame that
 * carries it: one event fanned out to many subscribers, or a message whose
 * parts are known (the fixed head of a broadcast, then the event) so that
 * nothing is joined before the walk. A cache slot is a function of the
 * atom's text, so the encoding is the same on every connection; what a
 * connection's cache decides, per frame, is only whether a reference
 * defines its slot anew. Loop thread only, like the rest. */
enum {
    DIST_PART_TERM = 1, /* one whole term: its atoms become references */
    DIST_PART_PLAIN = 2 /* bytes that hold no atom (tuple and list heads, a binary, a tail) */
};

#define DIST_HDR_MSG_MEMO 64

typedef struct dist_hdr_msg {
    /* The message as given, parts[0] starting with its version byte 131;
     * kinds NULL: unknown, the parts are joined and the whole is walked. */
    const struct iovec *parts;
    const uint8_t *kinds;
    int nparts;
    int state; /* 0: not encoded yet; 1: encoded; -1: goes out the generic way */
    bytebuf body;  /* without version byte, references numbered 0..nrefs-1 */
    bytebuf texts; /* the referenced atoms' texts, one after another */
    int nrefs;
    uint16_t slot[DIST_HDR_MAX_REFS];
    uint32_t text_off[DIST_HDR_MAX_REFS];
    uint8_t text_len[DIST_HDR_MAX_REFS];
    /* How many leading parts repeat from message to message (a broadcast's
     * tuple head and atom): set by the caller after dist_hdr_msg_set. Their
     * encoding stays at the start of body and texts, and the next message
     * whose leading parts hold the same bytes (compared, never assumed)
     * starts its walk after them. */
    int fixed;
    size_t memo_len; /* 0: nothing kept */
    size_t memo_body, memo_texts;
    int memo_nrefs;
    uint8_t memo_raw[DIST_HDR_MSG_MEMO];
} dist_hdr_msg;

void dist_hdr_msg_init(dist_hdr_msg *m);
/* Points m at another message; its old encoding is forgotten (the memory
 * is kept for the next one). The parts must outlive every send of m. */
void dist_hdr_msg_set(dist_hdr_msg *m, const struct iovec *parts, const uint8_t *kinds,
                      int nparts);
void dist_hdr_msg_free(dist_hdr_msg *m);

/* As dist_hdr_encode with parts = ctrl, then m's parts; m is encoded at
 * its first use. Same results (a message that cannot be walked goes as
 * given, as there). */
int dist_hdr_encode_msg(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const uint8_t *ctrl,
                        size_t ctrl_len, dist_hdr_msg *m, size_t *appended);

/* The frame of a send to a pid, {2, '', To}, carrying m: the control term
 * is written here with its atoms as references, rather than encoded by ei
 * and then walked; it is the one part made anew for every copy of a
 * fan-out. Same results as dist_hdr_encode_msg. */
int dist_hdr_encode_send(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const erlang_pid *to,
                         dist_hdr_msg *m, size_t *appended);

/* Decodes one frame payload (131 68 ...) into its pass-through form,
 * appended to out: 112, 131, control, and 131, message when there is one.
 * A message whose terms cannot be read is passed on as it came, for the
 * layer above to refuse as it refuses a bad pass-through message. 0, or,
 * with a static reason in *why, RC_EFULL when the frame would grow past
 * out's limit (its cached atoms written out make it too big) and RC_EFAIL
 * when the header or the control term is broken; either way the connection
 * cannot go on (the peer's cache and ours may disagree from here). */
int dist_hdr_decode(dist_hdr_in *h, const uint8_t *payload, size_t len, bytebuf *out,
                    const char **why);

#endif
