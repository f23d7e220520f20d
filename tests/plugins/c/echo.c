/*
 * A Herald channel plugin in C, written against herald_plugin.h alone:
 * it serves the channel "c_echo" and accepts every message, echoing its
 * message id. The test suite compiles it with the system C compiler and
 * drives it through the same host code as the Rust plugins, which shows
 * that the ABI is language-neutral.
 *
 * It does not parse JSON in general: it scans the batch for the
 * "message_id" keys the host writes and copies each string value as it
 * stands (escapes included), which is valid JSON in the reply too.
 */
#include "herald_plugin.h"

#include <stdlib.h>
#include <string.h>

static const char KEY[] = "\"message_id\":\"";

/* A growable byte buffer; the plugin allocates, so the plugin frees. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} buffer;

static int append(buffer *b, const void *bytes, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    return 0;
}

static int append_str(buffer *b, const char *s) { return append(b, s, strlen(s)); }

static void give_text(const char *text, uint8_t **out, size_t *out_len) {
    size_t n = strlen(text);
    uint8_t *copy = malloc(n);
    if (!copy) return;
    memcpy(copy, text, n);
    *out = copy;
    *out_len = n;
}

/* The instance holds nothing, but must be a real pointer the host keeps. */
typedef struct {
    int unused;
} echo_instance;

static int32_t echo_create(const uint8_t *config, size_t config_len, void **instance,
                           uint8_t **err, size_t *err_len) {
    (void)config;
    (void)config_len;
    echo_instance *made = calloc(1, sizeof *made);
    if (!made) {
        give_text("c_echo: out of memory", err, err_len);
        return HERALD_ERROR;
    }
    *instance = made;
    return HERALD_OK;
}

static int32_t echo_describe(void *instance, uint8_t **out, size_t *out_len) {
    (void)instance;
    give_text("{\"version\":1,\"concurrency\":2,\"channels\":[{\"name\":\"c_echo\","
              "\"address_column\":null,\"normalise\":\"none\",\"tracking\":false}]}",
              out, out_len);
    return *out ? HERALD_OK : HERALD_ERROR;
}

/* Finds the end of a JSON string body starting at p (just after the opening
 * quote), skipping escaped characters. Returns NULL if it never ends. */
static const uint8_t *string_end(const uint8_t *p, const uint8_t *end) {
    while (p < end) {
        if (*p == '\\') {
            p += 2;
        } else if (*p == '"') {
            return p;
        } else {
            p++;
        }
    }
    return NULL;
}

static int32_t echo_send_batch(void *instance, const uint8_t *batch, size_t batch_len,
                               uint8_t **out, size_t *out_len) {
    (void)instance;
    buffer reply = {0};
    const uint8_t *p = batch;
    const uint8_t *end = batch + batch_len;
    const size_t key_len = sizeof KEY - 1;
    int first = 1;
    if (append_str(&reply, "{\"version\":1,\"results\":[")) goto oom;
    while (p + key_len <= end) {
        if (memcmp(p, KEY, key_len) != 0) {
            p++;
            continue;
        }
        const uint8_t *id = p + key_len;
        const uint8_t *id_end = string_end(id, end);
        if (!id_end) {
            free(reply.data);
            give_text("c_echo: the batch ends inside a message_id", out, out_len);
            return HERALD_ERROR;
        }
        if (!first && append_str(&reply, ",")) goto oom;
        first = 0;
        if (append_str(&reply, "{\"message_id\":\"") || append(&reply, id, (size_t)(id_end - id)) ||
            append_str(&reply, "\",\"status\":\"accepted\",\"provider_message_id\":\"c-") ||
            append(&reply, id, (size_t)(id_end - id)) || append_str(&reply, "\"}"))
            goto oom;
        p = id_end + 1;
    }
    if (append_str(&reply, "]}")) goto oom;
    *out = reply.data;
    *out_len = reply.len;
    return HERALD_OK;
oom:
    free(reply.data);
    give_text("c_echo: out of memory", out, out_len);
    return HERALD_ERROR;
}

static void echo_free(uint8_t *ptr, size_t len) {
    (void)len;
    free(ptr);
}

static void echo_destroy(void *instance) { free(instance); }

static const HeraldChannelV1 TABLE = {
    .abi_version = HERALD_ABI_VERSION,
    .abi_min_compatible = HERALD_ABI_MIN_COMPATIBLE,
    .name = "c_echo",
    .version = "1.0.0",
    .create = echo_create,
    .describe = echo_describe,
    .send_batch = echo_send_batch,
    .free = echo_free,
    .destroy = echo_destroy,
};

const HeraldChannelV1 *herald_channel_v1(void) { return &TABLE; }
