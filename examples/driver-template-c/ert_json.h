/*
 * ert_json.h: the JSON a C driver needs, in one file with no dependencies beyond libc and the
 * driver header. Copy it next to your driver and include it.
 *
 * Reading works on the text in place (no allocation): ert_json_parse validates one value and
 * gives it as a span; members, elements and paths ("data.0.id") are found by scanning; scalars
 * are converted on request (strings unescaped, \u escapes and surrogate pairs included).
 * Writing goes straight to an ert_sink, commas and escapes handled.
 *
 *   ert_json_value root, id;
 *   if (ert_json_parse(body, length, &root) && ert_json_path(root, "data.0.id", &id)) {
 *       char model[256];
 *       if (ert_json_string(id, model, sizeof model)) ...
 *   }
 *
 *   ert_json_writer w = ert_json_writer_on(response);
 *   ert_json_begin_object(&w);
 *   ert_json_key(&w, "engine"); ert_json_write_string(&w, "acme", 4);
 *   ert_json_end_object(&w);
 *   if (!w.ok) ... the sink refused, or the nesting was wrong
 *
 * Limits: nesting at most ERT_JSON_MAX_DEPTH; numbers as C doubles or int64. Thread-safe (no
 * state outside the values and writers you pass).
 */
#ifndef ERT_JSON_H
#define ERT_JSON_H

#include "engine_runtime_driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERT_JSON_MAX_DEPTH 64

#if defined(__GNUC__)
#define ERT_JSON_API static __attribute__((unused))
#else
#define ERT_JSON_API static
#endif

typedef enum ert_json_type {
    ERT_JSON_INVALID = 0,
    ERT_JSON_NULL,
    ERT_JSON_BOOL,
    ERT_JSON_NUMBER,
    ERT_JSON_STRING,
    ERT_JSON_ARRAY,
    ERT_JSON_OBJECT,
} ert_json_type;

/** A value inside a text: where it starts, how long it is, what it is. Borrowed from the text. */
typedef struct ert_json_value {
    const char *start;
    size_t length;
    ert_json_type type;
} ert_json_value;

/* ---- scanning ------------------------------------------------------------------------- */

static const char *ert_json__space(const char *at, const char *end) {
    while (at < end && (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r')) at++;
    return at;
}

static int ert_json__hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Past a string literal starting at `at` ('"'), or NULL when it is not one. */
static const char *ert_json__string_end(const char *at, const char *end) {
    if (at >= end || *at != '"') return NULL;
    for (at++; at < end; at++) {
        unsigned char c = (unsigned char)*at;
        if (c == '"') return at + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            if (++at >= end) return NULL;
            if (*at == 'u') {
                if (end - at < 5) return NULL;
                for (int i = 1; i <= 4; i++)
                    if (ert_json__hex(at[i]) < 0) return NULL;
                at += 4;
            } else if (!strchr("\"\\/bfnrt", *at)) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *ert_json__number_end(const char *at, const char *end) {
    const char *start = at;
    if (at < end && *at == '-') at++;
    if (at >= end) return NULL;
    if (*at == '0') {
        at++;
    } else if (*at >= '1' && *at <= '9') {
        while (at < end && *at >= '0' && *at <= '9') at++;
    } else {
        return NULL;
    }
    if (at < end && *at == '.') {
        const char *digits = ++at;
        while (at < end && *at >= '0' && *at <= '9') at++;
        if (at == digits) return NULL;
    }
    if (at < end && (*at == 'e' || *at == 'E')) {
        at++;
        if (at < end && (*at == '+' || *at == '-')) at++;
        const char *digits = at;
        while (at < end && *at >= '0' && *at <= '9') at++;
        if (at == digits) return NULL;
    }
    return at > start ? at : NULL;
}

/* Past one value at `at` (after whitespace), filling `out`; NULL when malformed. */
static const char *ert_json__value(const char *at, const char *end, int depth, ert_json_value *out) {
    at = ert_json__space(at, end);
    if (at >= end || depth > ERT_JSON_MAX_DEPTH) return NULL;
    const char *start = at;
    ert_json_type type;
    switch (*at) {
    case '{':
    case '[': {
        char close = *at == '{' ? '}' : ']';
        type = *at == '{' ? ERT_JSON_OBJECT : ERT_JSON_ARRAY;
        at = ert_json__space(at + 1, end);
        if (at < end && *at == close) {
            at++;
            break;
        }
        for (;;) {
            ert_json_value ignored;
            if (type == ERT_JSON_OBJECT) {
                at = ert_json__string_end(ert_json__space(at, end), end);
                if (at == NULL) return NULL;
                at = ert_json__space(at, end);
                if (at >= end || *at != ':') return NULL;
                at++;
            }
            at = ert_json__value(at, end, depth + 1, &ignored);
            if (at == NULL) return NULL;
            at = ert_json__space(at, end);
            if (at < end && *at == close) {
                at++;
                break;
            }
            if (at >= end || *at != ',') return NULL;
            at++;
        }
        break;
    }
    case '"':
        type = ERT_JSON_STRING;
        at = ert_json__string_end(at, end);
        break;
    case 't':
    case 'f':
    case 'n': {
        const char *word = *at == 't' ? "true" : *at == 'f' ? "false" : "null";
        size_t n = strlen(word);
        if ((size_t)(end - at) < n || memcmp(at, word, n) != 0) return NULL;
        type = *at == 'n' ? ERT_JSON_NULL : ERT_JSON_BOOL;
        at += n;
        break;
    }
    default:
        type = ERT_JSON_NUMBER;
        at = ert_json__number_end(at, end);
    }
    if (at == NULL) return NULL;
    out->start = start;
    out->length = (size_t)(at - start);
    out->type = type;
    return at;
}

/* ---- reading -------------------------------------------------------------------------- */

/** Validates that `text` is exactly one JSON value (whitespace around it allowed). */
ERT_JSON_API bool ert_json_parse(const char *text, size_t length, ert_json_value *out) {
    if (text == NULL || out == NULL) return false;
    const char *end = text + length;
    const char *after = ert_json__value(text, end, 0, out);
    return after != NULL && ert_json__space(after, end) == end;
}

/** Unescapes a string value into `out` (NUL-terminated). False when `value` is not a string,
 *  does not fit in `capacity`, or contains an escaped NUL (which C strings cannot carry). */
ERT_JSON_API bool ert_json_string(ert_json_value value, char *out, size_t capacity) {
    if (value.type != ERT_JSON_STRING || out == NULL || capacity == 0) return false;
    const char *at = value.start + 1, *end = value.start + value.length - 1;
    size_t n = 0;
    while (at < end) {
        unsigned long code;
        if (*at != '\\') {
            if (n + 1 >= capacity) return false;
            out[n++] = *at++;
            continue;
        }
        at++;
        switch (*at) {
        case 'b': code = '\b'; break;
        case 'f': code = '\f'; break;
        case 'n': code = '\n'; break;
        case 'r': code = '\r'; break;
        case 't': code = '\t'; break;
        case 'u':
            code = 0;
            for (int i = 1; i <= 4; i++) code = code * 16 + (unsigned long)ert_json__hex(at[i]);
            at += 4;
            if (code >= 0xD800 && code < 0xDC00) {
                /* A high surrogate must be followed by a low one. */
                if (end - at < 7 || at[1] != '\\' || at[2] != 'u') return false;
                unsigned long low = 0;
                for (int i = 3; i <= 6; i++) {
                    int digit = ert_json__hex(at[i]);
                    if (digit < 0) return false;
                    low = low * 16 + (unsigned long)digit;
                }
                if (low < 0xDC00 || low >= 0xE000) return false;
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                at += 6;
            } else if (code >= 0xDC00 && code < 0xE000) {
                return false;
            }
            break;
        default: code = (unsigned char)*at;
        }
        at++;
        if (code == 0) return false;
        char bytes[4];
        size_t count;
        if (code < 0x80) {
            bytes[0] = (char)code, count = 1;
        } else if (code < 0x800) {
            bytes[0] = (char)(0xC0 | (code >> 6)), bytes[1] = (char)(0x80 | (code & 0x3F)), count = 2;
        } else if (code < 0x10000) {
            bytes[0] = (char)(0xE0 | (code >> 12)), bytes[1] = (char)(0x80 | ((code >> 6) & 0x3F));
            bytes[2] = (char)(0x80 | (code & 0x3F)), count = 3;
        } else {
            bytes[0] = (char)(0xF0 | (code >> 18)), bytes[1] = (char)(0x80 | ((code >> 12) & 0x3F));
            bytes[2] = (char)(0x80 | ((code >> 6) & 0x3F)), bytes[3] = (char)(0x80 | (code & 0x3F)), count = 4;
        }
        if (n + count >= capacity) return false;
        memcpy(out + n, bytes, count);
        n += count;
    }
    out[n] = '\0';
    return true;
}

/** The member `key` of an object (the last one when a key repeats). */
ERT_JSON_API bool ert_json_member(ert_json_value object, const char *key, ert_json_value *out) {
    if (object.type != ERT_JSON_OBJECT || key == NULL || out == NULL) return false;
    const char *at = object.start + 1, *end = object.start + object.length;
    bool found = false;
    size_t key_length = strlen(key);
    char name[256];
    for (;;) {
        at = ert_json__space(at, end);
        if (at >= end || *at == '}') return found;
        ert_json_value name_value, member;
        if ((at = ert_json__value(at, end, 1, &name_value)) == NULL) return found;
        at = ert_json__space(at, end) + 1; /* ':' */
        if ((at = ert_json__value(at, end, 1, &member)) == NULL) return found;
        /* Most keys have no escapes: compare the raw text first, unescape only when needed. */
        bool same = name_value.length == key_length + 2 && memcmp(name_value.start + 1, key, key_length) == 0;
        if (!same && memchr(name_value.start, '\\', name_value.length) != NULL)
            same = ert_json_string(name_value, name, sizeof name) && strcmp(name, key) == 0;
        if (same) {
            *out = member;
            found = true;
        }
        at = ert_json__space(at, end);
        if (at < end && *at == ',') at++;
    }
}

/** Element `index` (from 0) of an array. */
ERT_JSON_API bool ert_json_element(ert_json_value array, size_t index, ert_json_value *out) {
    if (array.type != ERT_JSON_ARRAY || out == NULL) return false;
    const char *at = array.start + 1, *end = array.start + array.length;
    for (size_t i = 0;; i++) {
        at = ert_json__space(at, end);
        if (at >= end || *at == ']') return false;
        ert_json_value element;
        if ((at = ert_json__value(at, end, 1, &element)) == NULL) return false;
        if (i == index) {
            *out = element;
            return true;
        }
        at = ert_json__space(at, end);
        if (at < end && *at == ',') at++;
    }
}

/** Members of an object or elements of an array; 0 for anything else. */
ERT_JSON_API size_t ert_json_count(ert_json_value container) {
    size_t count = 0;
    ert_json_value ignored;
    if (container.type == ERT_JSON_ARRAY) {
        while (ert_json_element(container, count, &ignored)) count++;
    } else if (container.type == ERT_JSON_OBJECT) {
        const char *at = container.start + 1, *end = container.start + container.length;
        while ((at = ert_json__space(at, end)) < end && *at != '}') {
            if ((at = ert_json__value(at, end, 1, &ignored)) == NULL) break;
            at = ert_json__space(at, end) + 1;
            if ((at = ert_json__value(at, end, 1, &ignored)) == NULL) break;
            count++;
            at = ert_json__space(at, end);
            if (at < end && *at == ',') at++;
        }
    }
    return count;
}

/** A value by path from `root`: keys separated by '.', a segment of digits indexes an array
 *  ("data.0.id"). A key containing '.' needs ert_json_member. */
ERT_JSON_API bool ert_json_path(ert_json_value root, const char *path, ert_json_value *out) {
    if (path == NULL || out == NULL) return false;
    ert_json_value current = root;
    char segment[256];
    while (*path != '\0') {
        size_t n = strcspn(path, ".");
        if (n == 0 || n >= sizeof segment) return false;
        memcpy(segment, path, n);
        segment[n] = '\0';
        path += n;
        if (*path == '.') path++;
        bool digits = strspn(segment, "0123456789") == n;
        ert_json_value next;
        if (current.type == ERT_JSON_ARRAY && digits) {
            if (!ert_json_element(current, (size_t)strtoull(segment, NULL, 10), &next)) return false;
        } else if (!ert_json_member(current, segment, &next)) {
            return false;
        }
        current = next;
    }
    *out = current;
    return true;
}

ERT_JSON_API bool ert_json_double(ert_json_value value, double *out) {
    if (value.type != ERT_JSON_NUMBER || out == NULL || value.length >= 64) return false;
    char text[64];
    memcpy(text, value.start, value.length);
    text[value.length] = '\0';
    errno = 0;
    double number = strtod(text, NULL);
    if (errno == ERANGE) return false;
    *out = number;
    return true;
}

/** An integer value within int64 (no fraction, no exponent). */
ERT_JSON_API bool ert_json_int64(ert_json_value value, int64_t *out) {
    if (value.type != ERT_JSON_NUMBER || out == NULL || value.length >= 32) return false;
    if (memchr(value.start, '.', value.length) || memchr(value.start, 'e', value.length) || memchr(value.start, 'E', value.length))
        return false;
    char text[32];
    memcpy(text, value.start, value.length);
    text[value.length] = '\0';
    errno = 0;
    long long number = strtoll(text, NULL, 10);
    if (errno == ERANGE) return false;
    *out = (int64_t)number;
    return true;
}

ERT_JSON_API bool ert_json_bool(ert_json_value value, bool *out) {
    if (value.type != ERT_JSON_BOOL || out == NULL) return false;
    *out = value.start[0] == 't';
    return true;
}

/* ---- writing -------------------------------------------------------------------------- */

/** Writes JSON to a sink. `ok` turns false at the first refused write or misplaced call, and
 *  every later call does nothing: check it once at the end. */
typedef struct ert_json_writer {
    const ert_sink *sink;
    bool ok;
    int depth;
    /* Per level: has a value been written (so the next needs a comma); is the level an object
     * waiting for its key's value. */
    bool written[ERT_JSON_MAX_DEPTH + 1];
    bool after_key;
} ert_json_writer;

ERT_JSON_API ert_json_writer ert_json_writer_on(const ert_sink *sink) {
    ert_json_writer writer;
    memset(&writer, 0, sizeof writer);
    writer.sink = sink;
    writer.ok = sink != NULL && sink->write != NULL;
    return writer;
}

static void ert_json__raw(ert_json_writer *w, const char *text, size_t length) {
    if (w->ok && length > 0) w->ok = w->sink->write(w->sink->context, text, length);
}

/* The comma before a value, unless it follows its key. */
static void ert_json__before_value(ert_json_writer *w) {
    if (w->after_key) {
        w->after_key = false;
    } else if (w->written[w->depth]) {
        ert_json__raw(w, ",", 1);
    }
    w->written[w->depth] = true;
}

ERT_JSON_API void ert_json_write_string(ert_json_writer *w, const char *text, size_t length) {
    if (text == NULL) {
        w->ok = false;
        return;
    }
    ert_json__before_value(w);
    ert_json__raw(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ert_json__raw(w, text + run, i - run);
        char escaped[8];
        int n = c == '"' ? snprintf(escaped, sizeof escaped, "\\\"")
                : c == '\\' ? snprintf(escaped, sizeof escaped, "\\\\")
                : c == '\n' ? snprintf(escaped, sizeof escaped, "\\n")
                : snprintf(escaped, sizeof escaped, "\\u%04x", c);
        ert_json__raw(w, escaped, (size_t)n);
        run = i + 1;
    }
    ert_json__raw(w, text + run, length - run);
    ert_json__raw(w, "\"", 1);
}

/** An object member's key; the next call writes its value. */
ERT_JSON_API void ert_json_key(ert_json_writer *w, const char *key) {
    if (w->after_key || w->depth == 0) {
        w->ok = false;
        return;
    }
    ert_json_write_string(w, key, key ? strlen(key) : 0);
    ert_json__raw(w, ":", 1);
    w->after_key = true;
}

static void ert_json__open(ert_json_writer *w, char bracket) {
    ert_json__before_value(w);
    if (w->depth >= ERT_JSON_MAX_DEPTH) {
        w->ok = false;
        return;
    }
    ert_json__raw(w, &bracket, 1);
    w->written[++w->depth] = false;
}

static void ert_json__close(ert_json_writer *w, char bracket) {
    if (w->depth == 0 || w->after_key) {
        w->ok = false;
        return;
    }
    ert_json__raw(w, &bracket, 1);
    w->depth--;
}

ERT_JSON_API void ert_json_begin_object(ert_json_writer *w) { ert_json__open(w, '{'); }
ERT_JSON_API void ert_json_end_object(ert_json_writer *w) { ert_json__close(w, '}'); }
ERT_JSON_API void ert_json_begin_array(ert_json_writer *w) { ert_json__open(w, '['); }
ERT_JSON_API void ert_json_end_array(ert_json_writer *w) { ert_json__close(w, ']'); }

ERT_JSON_API void ert_json_write_int64(ert_json_writer *w, int64_t number) {
    char text[32];
    int n = snprintf(text, sizeof text, "%lld", (long long)number);
    ert_json__before_value(w);
    ert_json__raw(w, text, (size_t)n);
}

/** A finite double (JSON has no NaN or infinity: those make the writer fail). */
ERT_JSON_API void ert_json_write_double(ert_json_writer *w, double number) {
    if (number != number || number > 1.7976931348623157e308 || number < -1.7976931348623157e308) {
        w->ok = false;
        return;
    }
    char text[40];
    int n = snprintf(text, sizeof text, "%.17g", number);
    ert_json__before_value(w);
    ert_json__raw(w, text, (size_t)n);
}

ERT_JSON_API void ert_json_write_bool(ert_json_writer *w, bool value) {
    ert_json__before_value(w);
    ert_json__raw(w, value ? "true" : "false", value ? 4 : 5);
}

ERT_JSON_API void ert_json_write_null(ert_json_writer *w) {
    ert_json__before_value(w);
    ert_json__raw(w, "null", 4);
}

/** A value read with the functions above, copied as it is (an engine's object passed on). */
ERT_JSON_API void ert_json_write_value(ert_json_writer *w, ert_json_value value) {
    if (value.type == ERT_JSON_INVALID) {
        w->ok = false;
        return;
    }
    ert_json__before_value(w);
    ert_json__raw(w, value.start, value.length);
}

#endif /* ERT_JSON_H */
