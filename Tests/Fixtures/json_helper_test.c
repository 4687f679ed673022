/* Checks examples/driver-template-c/ert_json.h: run by JSONHelperTests; prints each failure
 * and exits 1 if any. */
#include "ert_json.h"

#include <stdio.h>

static int failures = 0;
#define CHECK(condition)                                                      \
    do {                                                                      \
        if (!(condition)) {                                                   \
            printf("FAIL line %d: %s\n", __LINE__, #condition);                \
            failures++;                                                       \
        }                                                                     \
    } while (0)

typedef struct {
    char text[4096];
    size_t length;
} buffer;

static bool collect(void *context, const char *data, size_t length) {
    buffer *b = context;
    if (b->length + length >= sizeof b->text) return false;
    memcpy(b->text + b->length, data, length);
    b->length += length;
    b->text[b->length] = '\0';
    return true;
}

static bool parse(const char *text, ert_json_value *value) { return ert_json_parse(text, strlen(text), value); }

int main(void) {
    ert_json_value root, v;
    char s[256];
    int64_t i;
    double d;
    bool b;

    /* Validation. */
    const char *good[] = {"{}", "[]", " {\"a\": [1, 2.5, -3e2, true, false, null, \"x\"]} ", "\"\\u00e9\"", "0", "-0.5e-3",
                          "{\"a\":{\"b\":{\"c\":[[[]]]}}}"};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) CHECK(parse(good[k], &v));
    const char *bad[] = {"", "{", "{\"a\"}", "{\"a\":}", "[1,]", "[1 2]", "01", "1.", "-", "tru", "\"\x01\"", "\"\\x\"",
                         "\"\\u12g4\"", "{} {}", "{\"a\":1,}", "nul", "[\"unterminated]"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) CHECK(!parse(bad[k], &v));
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    CHECK(!ert_json_parse(deep, sizeof deep, &v)); /* deeper than ERT_JSON_MAX_DEPTH */

    /* Nested reads: the shape of an OpenAI model list. */
    const char *models =
        "{\"object\":\"list\",\"data\":[{\"id\":\"base\",\"max_model_len\":4096},"
        "{\"id\":\"sql-lora\",\"parent\":\"base\",\"root\":\"/adapters/sql\",\"meta\":{\"rank\":16,\"alpha\":32.5,\"on\":true}}]}";
    CHECK(parse(models, &root) && root.type == ERT_JSON_OBJECT);
    CHECK(ert_json_path(root, "data.0.id", &v) && ert_json_string(v, s, sizeof s) && strcmp(s, "base") == 0);
    CHECK(ert_json_path(root, "data.1.parent", &v) && ert_json_string(v, s, sizeof s) && strcmp(s, "base") == 0);
    CHECK(ert_json_path(root, "data.1.meta.rank", &v) && ert_json_int64(v, &i) && i == 16);
    CHECK(ert_json_path(root, "data.1.meta.alpha", &v) && ert_json_double(v, &d) && d == 32.5);
    CHECK(!ert_json_int64(v, &i)); /* 32.5 is not an integer */
    CHECK(ert_json_path(root, "data.1.meta.on", &v) && ert_json_bool(v, &b) && b);
    CHECK(ert_json_path(root, "data.0.max_model_len", &v) && ert_json_int64(v, &i) && i == 4096);
    CHECK(!ert_json_path(root, "data.2.id", &v));
    CHECK(!ert_json_path(root, "data.0.missing", &v));
    CHECK(!ert_json_path(root, "object.0", &v));
    CHECK(ert_json_path(root, "data", &v) && ert_json_count(v) == 2);
    CHECK(ert_json_count(root) == 2);
    CHECK(ert_json_member(root, "object", &v) && v.type == ERT_JSON_STRING);

    /* Escapes: \u with surrogate pairs, escaped keys, an escaped NUL refused, sizes. */
    CHECK(parse("{\"na\\u006De\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\n\"}", &root));
    CHECK(ert_json_member(root, "name", &v) && ert_json_string(v, s, sizeof s));
    CHECK(strcmp(s, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \n") == 0);
    CHECK(!ert_json_string(v, s, 5)); /* does not fit */
    CHECK(parse("\"a\\u0000b\"", &v) && !ert_json_string(v, s, sizeof s));
    CHECK(parse("\"\\ud83d\"", &v) && !ert_json_string(v, s, sizeof s)); /* a lone high surrogate */
    CHECK(parse("{\"k\":1,\"k\":2}", &root) && ert_json_member(root, "k", &v) && ert_json_int64(v, &i) && i == 2);
    CHECK(parse("9223372036854775807", &v) && ert_json_int64(v, &i) && i == INT64_MAX);
    CHECK(parse("9223372036854775808", &v) && !ert_json_int64(v, &i));

    /* Writing, read back. */
    buffer out = {{0}, 0};
    ert_sink sink = {sizeof sink, &out, collect};
    ert_json_writer w = ert_json_writer_on(&sink);
    ert_json_begin_object(&w);
    ert_json_key(&w, "engine");
    ert_json_write_string(&w, "acme \"x\"\n\x01", strlen("acme \"x\"\n\x01"));
    ert_json_key(&w, "list");
    ert_json_begin_array(&w);
    ert_json_write_int64(&w, -42);
    ert_json_write_double(&w, 0.25);
    ert_json_write_bool(&w, false);
    ert_json_write_null(&w);
    ert_json_begin_object(&w);
    ert_json_end_object(&w);
    ert_json_end_array(&w);
    ert_json_key(&w, "copied");
    CHECK(parse("{\"rank\":16}", &v));
    ert_json_write_value(&w, v);
    ert_json_end_object(&w);
    CHECK(w.ok && w.depth == 0);
    CHECK(strcmp(out.text, "{\"engine\":\"acme \\\"x\\\"\\n\\u0001\",\"list\":[-42,0.25,false,null,{}],\"copied\":{\"rank\":16}}") == 0);
    CHECK(ert_json_parse(out.text, out.length, &root));
    CHECK(ert_json_path(root, "engine", &v) && ert_json_string(v, s, sizeof s) && strcmp(s, "acme \"x\"\n\x01") == 0);
    CHECK(ert_json_path(root, "copied.rank", &v) && ert_json_int64(v, &i) && i == 16);

    /* Misuse fails the writer instead of writing broken JSON. */
    buffer junk = {{0}, 0};
    ert_sink junk_sink = {sizeof junk_sink, &junk, collect};
    ert_json_writer bad_writer = ert_json_writer_on(&junk_sink);
    ert_json_begin_object(&bad_writer);
    ert_json_end_array(&bad_writer);
    ert_json_write_double(&bad_writer, 1.0 / 0.0);
    CHECK(!bad_writer.ok);
    ert_json_writer no_key = ert_json_writer_on(&junk_sink);
    ert_json_key(&no_key, "top-level key");
    CHECK(!no_key.ok);

    if (failures == 0) printf("all checks passed\n");
    return failures == 0 ? 0 : 1;
}
