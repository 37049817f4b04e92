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

#include "codec/pmsg.h"
#include "util/bytebuf.h"
#include "util/err.h"

#include <ei.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DIST_HDR_CACHE_SLOTS PMSG_CACHE_SLOTS
#define DIST_HDR_MAX_REFS PMSG_MAX_REFS
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


/* A prepared message (codec/pmsg.h) in a frame. As dist_hdr_encode with
 * parts = ctrl, then m's parts; m is encoded at
 * its first use. Same results (a message that cannot be walked goes as
 * given, as there). */
int dist_hdr_encode_msg(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const uint8_t *ctrl,
                        size_t ctrl_len, rc_pmsg *m, size_t *appended);

/* The frame of a send to a pid, {2, '', To}, carrying m: the control term
 * is written here with its atoms as references, rather than encoded by ei
 * and then walked; it is the one part made anew for every copy of a
 * fan-out. Same results as dist_hdr_encode_msg. */
int dist_hdr_encode_send(dist_hdr_out *h, dist_hdr_scratch *s, bytebuf *out, const erlang_pid *to,
                         rc_pmsg *m, size_t *appended);

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
