/* event: builds reckon-db's #event{} record from C fields, encoded in the
 * external term format without the version byte, ready to broadcast:
 *   {event, EventId, EventType, StreamId, Version, Data, Metadata, Tags,
 *    Timestamp, EpochUs, DataContentType, MetadataContentType}
 * (the 11-tuple of older reckon-gater when `legacy_11` is set: no Tags).
 * Data is a binary or a pre-encoded term; Metadata a pre-encoded map (or
 * #{}); Tags a list of binaries or `undefined`. */
#ifndef RC_EVENT_H
#define RC_EVENT_H

#include "reckon_cnode.h"

#include <stddef.h>
#include <stdint.h>

int event_build(const rc_event_fields *f, uint8_t **out, size_t *len);
/* Appends #{K => V} with binary keys and values (a common metadata shape). */
int event_encode_binary_map(const char *const *keys, const uint8_t *const *vals,
                            const size_t *val_lens, size_t n, uint8_t **out, size_t *len);

#endif
