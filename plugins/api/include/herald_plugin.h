/*
 * herald_plugin.h: the Herald channel plugin ABI, version 1.
 *
 * A plugin is a shared library that exports one C function,
 *
 *     const HeraldChannelV1 *herald_channel_v1(void);
 *
 * returning a pointer to a static table. The host (the Herald daemon)
 * loads the library once at start and never unloads it, so the table, its
 * strings and its functions must live as long as the library.
 *
 * Everything else crosses the boundary as bytes: JSON documents in UTF-8,
 * passed as (pointer, length) pairs, never NUL-terminated.
 *
 * VERSIONS
 *   The host reads abi_version and abi_min_compatible before anything else.
 *   It accepts the table when abi_version is within the range it supports,
 *   or when the table is newer but abi_min_compatible is a version the host
 *   supports (the table only grows at its end, so an old host can use the
 *   prefix it knows). Otherwise the library is refused at start with an
 *   error naming its path.
 *
 * OWNERSHIP: whoever allocates a buffer frees it.
 *   - Buffers the host passes in (config, batch) belong to the host and are
 *     valid only during the call; copy what you keep.
 *   - Buffers the plugin returns through out/err parameters belong to the
 *     plugin; the host copies them and hands them back to `free` with the
 *     same pointer and length, exactly once. A plugin may leave *out NULL
 *     (and *out_len 0) when it has nothing to say.
 *
 * THREADS
 *   `send_batch` may be called from several host threads at once on one
 *   instance, up to the `concurrency` that `describe` returns. `create`,
 *   `describe` and `destroy` are not called concurrently with anything on
 *   the same instance. `destroy` is called only once no call on the
 *   instance is running. Calls may block; the host runs them on its own
 *   threads, never on its async workers, and a plugin may run its own
 *   event loop inside.
 *
 * TIMEOUTS
 *   A `send_batch` that has not returned after the host's plugin_timeout
 *   is abandoned: the host cannot cancel it, leaves the thread to finish,
 *   and retries the batch's messages later with the same message ids. A
 *   plugin that keeps hanging is reported unhealthy.
 *
 * FAILURE
 *   Nothing may unwind or longjmp across these functions. A Rust plugin
 *   built with the SDK's export_channel! macro has every entry point wrapped
 *   in catch_unwind. A C plugin is trusted not to crash: if it does, the
 *   daemon process dies and systemd restarts it.
 *
 * JSON DOCUMENTS (every one carries "version": 1)
 *
 *   Batch (host -> send_batch):
 *     {"version":1,"messages":[{
 *        "message_id":"RUN/RECIPIENT",   stable across retries: deduplicate on it
 *        "run_id":"...", "recipient_id":"...", "channel":"email",
 *        "address":"ana@example.com",    already normalised by the host
 *        "content":{"subject":"...","html":"...","text":"..."},
 *        "headers":{"X-Tag":"..."},      optional, no CR or LF in values
 *        "data":{"k":"v"}                optional (push data)
 *     }, ...]}
 *   One batch may hold messages of several runs (small runs waiting for a
 *   free call share one), at most the host's sending.batch_size messages;
 *   each message names its own run_id and channel.
 *
 *   BatchResults (send_batch -> host): exactly one result per message, in
 *   the batch's order, each echoing its message_id:
 *     {"version":1,"results":[
 *        {"message_id":"...","status":"accepted","provider_message_id":"..."},
 *        {"message_id":"...","status":"bounced","kind":"hard"|"soft","reason":"..."},
 *        {"message_id":"...","status":"failed","reason":"..."},
 *        {"message_id":"...","status":"retry","reason":"...","retry_after_ms":5000}
 *     ]}
 *   provider_message_id, reason and retry_after_ms are optional.
 *
 *   Description (describe -> host):
 *     {"version":1,"concurrency":4,"channels":[
 *        {"name":"email","address_column":"email","normalise":"email","tracking":true}
 *     ]}
 *   normalise is one of "email", "e164", "token", "none"; address_column
 *   may be null (the host then passes the recipient id as the address).
 *   Two loaded instances serving one channel name is an error at start.
 */
#ifndef HERALD_PLUGIN_H
#define HERALD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The table layout this header describes. */
#define HERALD_ABI_VERSION 1
/* The oldest layout this one is a superset of. */
#define HERALD_ABI_MIN_COMPATIBLE 1
/* The name of the exported entry point. */
#define HERALD_ENTRY_SYMBOL "herald_channel_v1"

/* Return codes. On HERALD_ERROR the out (or err) buffer, if set, holds
 * UTF-8 text for the operator: what went wrong and how to fix it. */
#define HERALD_OK 0
#define HERALD_ERROR 1

/* Creates an instance from the plugin's JSON config. On success stores an
 * opaque instance pointer in *instance and returns HERALD_OK. On failure
 * returns HERALD_ERROR and may store an error text buffer in *err, *err_len. */
typedef int32_t (*herald_create_fn)(const uint8_t *config, size_t config_len,
                                    void **instance, uint8_t **err, size_t *err_len);

/* Stores the instance's Description JSON (or error text) in *out, *out_len. */
typedef int32_t (*herald_describe_fn)(void *instance, uint8_t **out, size_t *out_len);

/* Sends one Batch; stores BatchResults JSON (or, on HERALD_ERROR, error text)
 * in *out, *out_len. HERALD_ERROR means the whole batch is retried later. */
typedef int32_t (*herald_send_batch_fn)(void *instance, const uint8_t *batch, size_t batch_len,
                                        uint8_t **out, size_t *out_len);

/* Frees a buffer this plugin returned, given its pointer and length. */
typedef void (*herald_free_fn)(uint8_t *ptr, size_t len);

/* Destroys an instance; no call on it runs or will follow. */
typedef void (*herald_destroy_fn)(void *instance);

/* The table. Fields are only ever added at the end. */
typedef struct HeraldChannelV1 {
    uint32_t abi_version;        /* HERALD_ABI_VERSION */
    uint32_t abi_min_compatible; /* HERALD_ABI_MIN_COMPATIBLE */
    const char *name;            /* NUL-terminated UTF-8, e.g. "herald_email" */
    const char *version;         /* NUL-terminated UTF-8, e.g. "1.2.0" */
    herald_create_fn create;
    herald_describe_fn describe;
    herald_send_batch_fn send_batch;
    herald_free_fn free;
    herald_destroy_fn destroy;
} HeraldChannelV1;

/* The one symbol a plugin exports. */
const HeraldChannelV1 *herald_channel_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* HERALD_PLUGIN_H */
