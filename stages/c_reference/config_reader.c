/* See config_reader.h. The rules are docs/output_folder_rules.md's; the Python side is
 * stages/common/deployment/inference_config.py and predictor.py, and tests/helpers/config_corpus.py holds
 * both to one verdict. */
#define _POSIX_C_SOURCE 200809L /* open flags, fstat */

#include "config_reader.h"
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TEXT_BYTES (16u << 20) /* inference_config.json and labels.txt */
#define MAX_JSON_DEPTH 64
#define THRESHOLD_TOLERANCE 1e-9 /* between two readers' sigmoids (libm's and numpy's exp) */

/* ---- characters a label may not hold (stages/common/core/label_text.py) ------------------- */

/* Control characters (Cc), line and paragraph separators (Zl, Zp), format characters (Cf) and
 * U+00A0, as inclusive ranges of Python 3.11's Unicode data; a test compares them. */
static const unsigned FORBIDDEN_IN_LABELS[][2] = {
    {0x0000, 0x001F}, {0x007F, 0x00A0}, {0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C},
    {0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x0890, 0x0891}, {0x08E2, 0x08E2}, {0x180E, 0x180E},
    {0x200B, 0x200F}, {0x2028, 0x202E}, {0x2060, 0x2064}, {0x2066, 0x206F}, {0xFEFF, 0xFEFF},
    {0xFFF9, 0xFFFB}, {0x110BD, 0x110BD}, {0x110CD, 0x110CD}, {0x13430, 0x13438},
    {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}
};

static int forbidden_in_label(unsigned code)
{
    size_t i;
    for (i = 0; i < sizeof FORBIDDEN_IN_LABELS / sizeof FORBIDDEN_IN_LABELS[0]; ++i)
        if (code >= FORBIDDEN_IN_LABELS[i][0] && code <= FORBIDDEN_IN_LABELS[i][1]) return 1;
    return 0;
}

/* One UTF-8 sequence at s (n bytes left): its length and code point, or 0 if it is not valid
 * UTF-8 (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *code)
{
    size_t length, i;
    unsigned minimum;
    if (s[0] < 0x80) { *code = s[0]; return 1; }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) { length = 2; *code = s[0] & 0x1Fu; minimum = 0x80; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { length = 3; *code = s[0] & 0x0Fu; minimum = 0x800; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { length = 4; *code = s[0] & 0x07u; minimum = 0x10000; }
    else return 0;
    if (n < length) return 0;
    for (i = 1; i < length; ++i) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        *code = (*code << 6) | (s[i] & 0x3Fu);
    }
    if (*code < minimum || *code > 0x10FFFF || (*code >= 0xD800 && *code <= 0xDFFF)) return 0;
    return length;
}

/* The byte offset of the first invalid UTF-8 sequence, or size if there is none. */
static size_t utf8_invalid_at(const char *text, size_t size)
{
    size_t at = 0, length;
    unsigned code;
    while (at < size) {
        if ((length = utf8_next((const unsigned char *)text + at, size - at, &code)) == 0) return at;
        at += length;
    }
    return size;
}

/* The first code point of a (valid UTF-8, NUL-terminated or sized) label that a label may not
 * hold, or -1. */
static long forbidden_code(const char *text, size_t size)
{
    size_t at = 0, length;
    unsigned code;
    while (at < size) {
        length = utf8_next((const unsigned char *)text + at, size - at, &code);
        if (length == 0) return 0xFFFD;
        if (forbidden_in_label(code)) return (long)code;
        at += length;
    }
    return -1;
}

/* ---- a strict JSON parser into a small tree ---------------------------------------------- */

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_kind;

typedef struct json_node json_node;
struct json_node {
    json_kind kind;
    int boolean;
    double number;
    int is_integer; /* written without fraction or exponent */
    char *text;     /* JSON_STRING: UTF-8, NUL-terminated (a \u0000 inside is refused) */
    char *key;      /* the member name, for a node inside an object */
    json_node *items;
    size_t count, capacity;
};

typedef struct {
    const char *at, *end;
    int line, depth;
    char *error;
    const char *source;
} json_parser;

static void set_error(char *error, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(error, CONFIG_ERROR_SIZE, format, args);
    va_end(args);
}

static int parse_failure(json_parser *p, const char *problem)
{
    set_error(p->error, "%s:%d: invalid JSON: %s", p->source, p->line, problem);
    return -1;
}

static void json_free(json_node *node)
{
    size_t i;
    for (i = 0; i < node->count; ++i) json_free(&node->items[i]);
    free(node->items);
    free(node->text);
    free(node->key);
    memset(node, 0, sizeof *node);
}

static void skip_space(json_parser *p)
{
    while (p->at < p->end && (*p->at == ' ' || *p->at == '\t' || *p->at == '\n' || *p->at == '\r')) {
        if (*p->at == '\n') p->line++;
        p->at++;
    }
}

static int hex_value(const char *s, unsigned *value)
{
    int i;
    *value = 0;
    for (i = 0; i < 4; ++i) {
        char c = s[i];
        *value <<= 4;
        if (c >= '0' && c <= '9') *value |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') *value |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') *value |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    return 0;
}

static size_t put_utf8(char *out, unsigned code)
{
    if (code < 0x80) { out[0] = (char)code; return 1; }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

/* A string at p->at (the opening quote); the decoded text is never longer than the source. */
static int parse_string(json_parser *p, char **result)
{
    const char *start = ++p->at;
    char *out, *write;
    while (p->at < p->end && *p->at != '"') p->at += (*p->at == '\\' && p->at + 1 < p->end) ? 2 : 1;
    if (p->at >= p->end) return parse_failure(p, "a string is not closed");
    out = write = malloc((size_t)(p->at - start) + 1);
    if (out == NULL) return parse_failure(p, "out of memory");
    p->at = start;
    while (*p->at != '"') {
        unsigned char c = (unsigned char)*p->at;
        if (c < 0x20) { free(out); return parse_failure(p, "a control character inside a string"); }
        if (c != '\\') { *write++ = (char)c; p->at++; continue; }
        p->at++;
        switch (*p->at) {
        case '"': *write++ = '"'; break;
        case '\\': *write++ = '\\'; break;
        case '/': *write++ = '/'; break;
        case 'b': *write++ = '\b'; break;
        case 'f': *write++ = '\f'; break;
        case 'n': *write++ = '\n'; break;
        case 'r': *write++ = '\r'; break;
        case 't': *write++ = '\t'; break;
        case 'u': {
            unsigned code, low;
            if (p->end - p->at < 5 || hex_value(p->at + 1, &code) != 0) {
                free(out);
                return parse_failure(p, "a \\u escape needs four hex digits");
            }
            p->at += 4;
            if (code >= 0xD800 && code <= 0xDBFF) { /* a surrogate pair makes one code point */
                if (p->end - p->at < 7 || p->at[1] != '\\' || p->at[2] != 'u'
                    || hex_value(p->at + 3, &low) != 0 || low < 0xDC00 || low > 0xDFFF) {
                    free(out);
                    return parse_failure(p, "a lone UTF-16 surrogate in a \\u escape");
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                p->at += 6;
            } else if (code >= 0xDC00 && code <= 0xDFFF) {
                free(out);
                return parse_failure(p, "a lone UTF-16 surrogate in a \\u escape");
            }
            if (code == 0) { free(out); return parse_failure(p, "\\u0000 inside a string"); }
            write += put_utf8(write, code); /* 6 or 12 source bytes give at most 4 */
            break;
        }
        default:
            free(out);
            return parse_failure(p, "an unknown escape in a string");
        }
        p->at++;
    }
    p->at++;
    *write = '\0';
    *result = out;
    return 0;
}

static int parse_number(json_parser *p, json_node *node)
{
    const char *start = p->at;
    char lexeme[64];
    char *stop;
    int integer = 1;
    if (p->at < p->end && *p->at == '-') p->at++;
    if (p->at < p->end && *p->at == '0') p->at++;
    else if (p->at < p->end && *p->at >= '1' && *p->at <= '9')
        while (p->at < p->end && *p->at >= '0' && *p->at <= '9') p->at++;
    else return parse_failure(p, "a value is neither a number, a string, an array, an object, "
                                 "true, false nor null");
    if (p->at < p->end && *p->at == '.') {
        integer = 0;
        p->at++;
        if (p->at >= p->end || *p->at < '0' || *p->at > '9') return parse_failure(p, "a digit must follow '.'");
        while (p->at < p->end && *p->at >= '0' && *p->at <= '9') p->at++;
    }
    if (p->at < p->end && (*p->at == 'e' || *p->at == 'E')) {
        integer = 0;
        p->at++;
        if (p->at < p->end && (*p->at == '+' || *p->at == '-')) p->at++;
        if (p->at >= p->end || *p->at < '0' || *p->at > '9') return parse_failure(p, "a digit must follow the exponent");
        while (p->at < p->end && *p->at >= '0' && *p->at <= '9') p->at++;
    }
    if ((size_t)(p->at - start) >= sizeof lexeme) return parse_failure(p, "a number is too long");
    memcpy(lexeme, start, (size_t)(p->at - start));
    lexeme[p->at - start] = '\0';
    errno = 0;
    node->number = strtod(lexeme, &stop);
    if (*stop != '\0' || errno == ERANGE || !isfinite(node->number))
        return parse_failure(p, "a number is out of range");
    node->kind = JSON_NUMBER;
    node->is_integer = integer;
    return 0;
}

static int literal(json_parser *p, const char *word)
{
    size_t length = strlen(word);
    if ((size_t)(p->end - p->at) < length || memcmp(p->at, word, length) != 0) return 0;
    p->at += length;
    return 1;
}

static int append_item(json_parser *p, json_node *parent, json_node **item)
{
    if (parent->count == parent->capacity) {
        size_t capacity = parent->capacity ? 2 * parent->capacity : 4;
        json_node *grown = realloc(parent->items, capacity * sizeof *grown);
        if (grown == NULL) return parse_failure(p, "out of memory");
        parent->items = grown;
        parent->capacity = capacity;
    }
    *item = &parent->items[parent->count++];
    memset(*item, 0, sizeof **item);
    return 0;
}

static int parse_value(json_parser *p, json_node *node);

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An object whose members are all parsed: a member name given twice is refused (readers that
 * keep the first or the last would disagree). */
static int check_unique_keys(json_parser *p, const json_node *object)
{
    char **keys;
    size_t i;
    int status = 0;
    if (object->count < 2) return 0;
    if ((keys = malloc(object->count * sizeof *keys)) == NULL) return parse_failure(p, "out of memory");
    for (i = 0; i < object->count; ++i) keys[i] = object->items[i].key;
    qsort(keys, object->count, sizeof *keys, compare_keys);
    for (i = 1; i < object->count && status == 0; ++i)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            char problem[160];
            snprintf(problem, sizeof problem, "member name \"%.100s\" appears twice in one object",
                     keys[i]);
            status = parse_failure(p, problem);
        }
    free(keys);
    return status;
}

static int parse_container(json_parser *p, json_node *node, char close)
{
    json_node *item;
    int object = close == '}';
    node->kind = object ? JSON_OBJECT : JSON_ARRAY;
    if (++p->depth > MAX_JSON_DEPTH) return parse_failure(p, "nested too deeply");
    p->at++;
    skip_space(p);
    if (p->at < p->end && *p->at == close) { p->at++; p->depth--; return 0; }
    for (;;) {
        char *key = NULL;
        skip_space(p);
        if (object) {
            if (p->at >= p->end || *p->at != '"') return parse_failure(p, "a member name must be a string");
            if (parse_string(p, &key) != 0) return -1;
            skip_space(p);
            if (p->at >= p->end || *p->at != ':') { free(key); return parse_failure(p, "':' must follow a member name"); }
            p->at++;
        }
        if (append_item(p, node, &item) != 0) { free(key); return -1; }
        item->key = key;
        if (parse_value(p, item) != 0) return -1;
        skip_space(p);
        if (p->at < p->end && *p->at == ',') { p->at++; continue; }
        if (p->at < p->end && *p->at == close) {
            p->at++;
            p->depth--;
            return object ? check_unique_keys(p, node) : 0;
        }
        return parse_failure(p, object ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int parse_value(json_parser *p, json_node *node)
{
    skip_space(p);
    if (p->at >= p->end) return parse_failure(p, "a value is missing");
    switch (*p->at) {
    case '{': return parse_container(p, node, '}');
    case '[': return parse_container(p, node, ']');
    case '"': node->kind = JSON_STRING; return parse_string(p, &node->text);
    default: break;
    }
    if (literal(p, "true")) { node->kind = JSON_BOOL; node->boolean = 1; return 0; }
    if (literal(p, "false")) { node->kind = JSON_BOOL; return 0; }
    if (literal(p, "null")) { node->kind = JSON_NULL; return 0; }
    return parse_number(p, node);
}

int open_regular_file(const char *path)
{
    struct stat status;
    int file;
    if (stat(path, &status) != 0) return REGULAR_FILE_ERRNO;
    if (!S_ISREG(status.st_mode)) return REGULAR_FILE_NOT_REGULAR; /* a FIFO would block */
    if ((file = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) return REGULAR_FILE_ERRNO;
    if (fstat(file, &status) != 0 || !S_ISREG(status.st_mode)) { /* swapped since stat */
        close(file);
        return REGULAR_FILE_NOT_REGULAR;
    }
    return file;
}

char *read_regular_file(const char *path, size_t max_bytes, size_t *size, const char *what,
                        char *error)
{
    struct stat status;
    char *data;
    size_t used = 0;
    ssize_t got;
    int file = open_regular_file(path);
    if (file == REGULAR_FILE_ERRNO) {
        if (errno == ENOENT) set_error(error, "%s: not found (%s)", path, what);
        else set_error(error, "%s: cannot be read: %s", path, strerror(errno));
        return NULL;
    }
    if (file == REGULAR_FILE_NOT_REGULAR) {
        set_error(error, "%s: cannot be read: %s", path, NOT_REGULAR_FILE);
        return NULL;
    }
    if (fstat(file, &status) != 0) {
        close(file);
        set_error(error, "%s: cannot be read: %s", path, strerror(errno));
        return NULL;
    }
    if ((unsigned long long)status.st_size > max_bytes) {
        close(file);
        set_error(error, "%s: larger than %lu bytes", path, (unsigned long)max_bytes);
        return NULL;
    }
    if ((data = malloc((size_t)status.st_size + 1)) == NULL) {
        close(file);
        set_error(error, "%s: out of memory", path);
        return NULL;
    }
    while (used < (size_t)status.st_size
           && (got = read(file, data + used, (size_t)status.st_size - used)) > 0)
        used += (size_t)got;
    if (used != (size_t)status.st_size || read(file, data + used, 1) != 0) {
        close(file);
        free(data);
        set_error(error, "%s: cannot be read: its size changed while it was read", path);
        return NULL;
    }
    close(file);
    data[used] = '\0';
    *size = used;
    return data;
}

/* ---- the fields of inference_config.json ------------------------------------------------- */

static const char *kind_name(json_kind kind)
{
    static const char *names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return names[kind];
}

static const json_node *member(const json_node *object, const char *key)
{
    size_t i;
    for (i = 0; i < object->count; ++i)
        if (strcmp(object->items[i].key, key) == 0) return &object->items[i];
    return NULL;
}

/* The node at a dotted path such as "input.quantization.scale", of the given kind. */
static const json_node *field(const json_node *root, const char *path, json_kind kind,
                              const char *source, char *error)
{
    char name[128];
    const char *part = path;
    const json_node *node = root;
    while (*part) {
        size_t length = strcspn(part, ".");
        if (length >= sizeof name || node->kind != JSON_OBJECT) {
            set_error(error, "%s: field %.*s is missing", source, (int)(part - path + length), path);
            return NULL;
        }
        memcpy(name, part, length);
        name[length] = '\0';
        node = member(node, name);
        if (node == NULL) {
            set_error(error, "%s: field %.*s is missing", source, (int)(part - path + length), path);
            return NULL;
        }
        part += length + (part[length] == '.');
    }
    if (node->kind != kind) {
        set_error(error, "%s: field %s must be %s, got %s", source, path, kind_name(kind),
                  kind_name(node->kind));
        return NULL;
    }
    return node;
}

static int integer_in(const json_node *node, long low, long high, const char *name,
                      const char *source, char *error, int *value)
{
    if (node->kind != JSON_NUMBER || !node->is_integer || node->number < (double)low
        || node->number > (double)high) {
        set_error(error, "%s: field %s must be an integer from %ld to %ld", source, name, low, high);
        return -1;
    }
    *value = (int)node->number;
    return 0;
}

static int integer_field(const json_node *root, const char *path, long low, long high,
                         const char *source, char *error, int *value)
{
    const json_node *node = field(root, path, JSON_NUMBER, source, error);
    return node == NULL ? -1 : integer_in(node, low, high, path, source, error, value);
}

static int string_is(const json_node *root, const char *path, const char *expected,
                     const char *source, char *error)
{
    const json_node *node = field(root, path, JSON_STRING, source, error);
    if (node == NULL) return -1;
    if (strcmp(node->text, expected) != 0) {
        set_error(error, "%s: field %s is \"%s\"; this reader handles \"%s\" only", source, path,
                  node->text, expected);
        return -1;
    }
    return 0;
}

/* A string field equal to one of `choices`, written "a|b|c". */
static int string_in(const json_node *root, const char *path, const char *choices,
                     const char *source, char *error)
{
    const json_node *node = field(root, path, JSON_STRING, source, error);
    const char *choice = choices;
    size_t length;
    if (node == NULL) return -1;
    while (*choice) {
        length = strcspn(choice, "|");
        if (strlen(node->text) == length && strncmp(node->text, choice, length) == 0) return 0;
        choice += length + (choice[length] == '|');
    }
    set_error(error, "%s: field %s is \"%.100s\"; it must be one of %s", source, path, node->text,
              choices);
    return -1;
}

static char *copy_text(const char *text)
{
    char *copy = malloc(strlen(text) + 1);
    if (copy != NULL) strcpy(copy, text);
    return copy;
}

static char *join_path(const char *folder, const char *name)
{
    size_t length = strlen(folder) + strlen(name) + 2;
    char *path = malloc(length);
    if (path != NULL) snprintf(path, length, "%s/%s", folder, name);
    return path;
}

static int number_in(const json_node *root, const char *path, double low, double high,
                     int low_open, const char *source, char *error, double *value)
{
    const json_node *node = field(root, path, JSON_NUMBER, source, error);
    if (node == NULL) return -1;
    if (node->number > high || node->number < low || (low_open && node->number == low)) {
        set_error(error, "%s: field %s must be a number %s %g and at most %g", source, path,
                  low_open ? "above" : "from", low, high);
        return -1;
    }
    *value = node->number;
    return 0;
}

static int is_sha256_hex(const char *text)
{
    size_t i;
    for (i = 0; text[i]; ++i)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'))) return 0;
    return i == 64;
}

static double sigmoid_of(int q, double scale, int zero_point)
{
    return 1.0 / (1.0 + exp(-((double)q - zero_point) * scale));
}

/* Whether q is the smallest int8 output whose probability reaches p (128: none does), under
 * the output quantisation, within THRESHOLD_TOLERANCE. */
static int threshold_is_consistent(double p, int q, double scale, int zero_point)
{
    int reaches = q == 128 || sigmoid_of(q, scale, zero_point) >= p - THRESHOLD_TOLERANCE;
    int below = q == -128 || sigmoid_of(q - 1, scale, zero_point) < p + THRESHOLD_TOLERANCE;
    return reaches && below;
}

static int read_fields(const json_node *root, const char *source, classifier_config *config,
                       char *error)
{
    const json_node *node, *shape, *classes, *rows;
    int version, i, j, channels;
    double bytes;
    if (root->kind != JSON_OBJECT) {
        set_error(error, "%s: the top level must be an object", source);
        return -1;
    }
    if (integer_field(root, "format_version", 0, 1000000, source, error, &version) != 0) return -1;
    if (version != CONFIG_FORMAT_VERSION) {
        set_error(error, "%s: field format_version is %d; this reader knows version %d only",
                  source, version, CONFIG_FORMAT_VERSION);
        return -1;
    }
    if (string_is(root, "model.file", MODEL_FILE, source, error) != 0) return -1;
    if ((node = field(root, "model.sha256", JSON_STRING, source, error)) == NULL) return -1;
    if (!is_sha256_hex(node->text)) {
        set_error(error, "%s: field model.sha256 must be 64 lowercase hex digits", source);
        return -1;
    }
    memcpy(config->model_sha256, node->text, 65);
    if ((node = field(root, "model.bytes", JSON_NUMBER, source, error)) == NULL) return -1;
    bytes = node->number;
    if (!node->is_integer || bytes < 1 || bytes > 9007199254740992.0) {
        set_error(error, "%s: field model.bytes must be a positive integer", source);
        return -1;
    }
    config->model_bytes = (unsigned long long)bytes;

    if (string_is(root, "input.dtype", "uint8", source, error) != 0
        || string_is(root, "input.color_order", "RGB", source, error) != 0
        || string_is(root, "output.dtype", "int8", source, error) != 0)
        return -1;
    if ((shape = field(root, "input.shape", JSON_ARRAY, source, error)) == NULL) return -1;
    if (shape->count != 4) {
        set_error(error, "%s: field input.shape must have 4 entries (batch, height, width, "
                         "channels), got %lu", source, (unsigned long)shape->count);
        return -1;
    }
    for (i = 0; i < 4; ++i) {
        char where[32];
        snprintf(where, sizeof where, "input.shape[%d]", i);
        if (integer_in(&shape->items[i], 1, 1 << 16, where, source, error,
                       &config->input_shape[i]) != 0) return -1;
    }
    if (config->input_shape[0] != 1 || config->input_shape[3] != 3) {
        set_error(error, "%s: field input.shape must be [1, height, width, 3]", source);
        return -1;
    }
    if (integer_field(root, "input.height", 1, 1 << 16, source, error, &i) != 0) return -1;
    if (integer_field(root, "input.width", 1, 1 << 16, source, error, &j) != 0) return -1;
    if (i != config->input_shape[1] || j != config->input_shape[2]) {
        set_error(error, "%s: field input.shape disagrees with input.height %d and input.width %d",
                  source, i, j);
        return -1;
    }
    if (integer_field(root, "input.channels", 3, 3, source, error, &channels) != 0) return -1;
    if (number_in(root, "input.quantization.scale", 0, HUGE_VAL, 1, source, error,
                  &config->input_scale) != 0) return -1;
    if (integer_field(root, "input.quantization.zero_point", 0, 255, source, error,
                      &config->input_zero_point) != 0) return -1;
    if (field(root, "preprocessing", JSON_OBJECT, source, error) == NULL) return -1;

    if ((shape = field(root, "output.shape", JSON_ARRAY, source, error)) == NULL) return -1;
    if (shape->count != 2 || integer_in(&shape->items[0], 1, 1, "output.shape[0]", source, error, &i) != 0
        || integer_in(&shape->items[1], 1, 1 << 20, "output.shape[1]", source, error,
                      &config->num_classes) != 0) {
        if (shape->count != 2) set_error(error, "%s: field output.shape must be [1, classes]", source);
        return -1;
    }
    if (number_in(root, "output.quantization.scale", 0, HUGE_VAL, 1, source, error,
                  &config->output_scale) != 0) return -1;
    if (integer_field(root, "output.quantization.zero_point", -128, 127, source, error,
                      &config->output_zero_point) != 0) return -1;

    if (field(root, "labels", JSON_OBJECT, source, error) == NULL) return -1;
    if (member(member(root, "labels"), "file") != NULL
        && string_is(root, "labels.file", LABELS_FILE, source, error) != 0) return -1;
    if ((classes = field(root, "labels.classes", JSON_ARRAY, source, error)) == NULL) return -1;
    if (string_in(root, "thresholds.adopted", "global|per_class", source, error) != 0) return -1;
    if ((rows = field(root, "thresholds.classes", JSON_ARRAY, source, error)) == NULL) return -1;
    if ((int)classes->count != config->num_classes || (int)rows->count != config->num_classes) {
        set_error(error, "%s: output.shape says %d classes, labels.classes has %lu and "
                         "thresholds.classes %lu; each class needs a label and a threshold",
                  source, config->num_classes, (unsigned long)classes->count,
                  (unsigned long)rows->count);
        return -1;
    }
    config->classes = calloc((size_t)config->num_classes, sizeof *config->classes);
    config->int8_thresholds = calloc((size_t)config->num_classes, sizeof *config->int8_thresholds);
    if (config->classes == NULL || config->int8_thresholds == NULL) goto out_of_memory;
    for (i = 0; i < config->num_classes; ++i) {
        const json_node *row = &rows->items[i], *name = &classes->items[i], *row_class, *q, *p;
        char where[64];
        long code;
        snprintf(where, sizeof where, "thresholds.classes[%d].int8", i);
        if (name->kind != JSON_STRING || name->text[0] == '\0') {
            set_error(error, "%s: field labels.classes[%d] must be a non-empty string", source, i);
            return -1;
        }
        if ((code = forbidden_code(name->text, strlen(name->text))) >= 0) {
            set_error(error, "%s: field labels.classes[%d] holds U+%04lX, which no label may hold",
                      source, i, (unsigned long)code);
            return -1;
        }
        for (j = 0; j < i; ++j)
            if (strcmp(config->classes[j], name->text) == 0) {
                set_error(error, "%s: field labels.classes[%d] repeats labels.classes[%d]",
                          source, i, j);
                return -1;
            }
        if ((config->classes[i] = copy_text(name->text)) == NULL) goto out_of_memory;
        row_class = row->kind == JSON_OBJECT ? member(row, "class") : NULL;
        q = row->kind == JSON_OBJECT ? member(row, "int8") : NULL;
        p = row->kind == JSON_OBJECT ? member(row, "probability") : NULL;
        if (row_class == NULL || row_class->kind != JSON_STRING || q == NULL || p == NULL) {
            set_error(error, "%s: field thresholds.classes[%d] needs \"class\", \"probability\" "
                             "and \"int8\"", source, i);
            return -1;
        }
        if (strcmp(row_class->text, name->text) != 0) {
            set_error(error, "%s: field thresholds.classes[%d].class is \"%s\" but "
                             "labels.classes[%d] is \"%s\"", source, i, row_class->text, i, name->text);
            return -1;
        }
        if (p->kind != JSON_NUMBER || p->number < 0 || p->number > 1) {
            set_error(error, "%s: field thresholds.classes[%d].probability must be a number from "
                             "0 to 1", source, i);
            return -1;
        }
        /* 128: no int8 output reaches it, the class is never predicted */
        if (integer_in(q, -128, 128, where, source, error, &config->int8_thresholds[i]) != 0) return -1;
        if (!threshold_is_consistent(p->number, config->int8_thresholds[i], config->output_scale,
                                     config->output_zero_point)) {
            set_error(error, "%s: field %s is %d, which probability %.17g does not give under "
                             "output.quantization", source, where, config->int8_thresholds[i],
                      p->number);
            return -1;
        }
    }
    node = member(root, "kernels");
    if (node != NULL) {
        if (field(root, "kernels", JSON_OBJECT, source, error) == NULL) return -1;
        if (string_in(root, "kernels.tuned_and_evaluated_on", "builtin|reference|xnnpack", source,
                      error) != 0)
            return -1;
        node = field(root, "kernels.tuned_and_evaluated_on", JSON_STRING, source, error);
        if ((config->kernels = copy_text(node->text)) == NULL) goto out_of_memory;
    }
    return 0;
out_of_memory:
    set_error(error, "%s: out of memory", source);
    return -1;
}

/* labels.txt: one label per line, in output order; the last "\n" may be missing (as
 * stages/common/deployment/predictor.py accepts). Valid UTF-8, no character a label may not
 * hold (a NUL byte among them). */
static int check_labels(const char *output_dir, const classifier_config *config, char *error)
{
    char *path, *text, *line;
    size_t size, bad;
    int i;
    if ((path = join_path(output_dir, LABELS_FILE)) == NULL) {
        set_error(error, "out of memory");
        return -1;
    }
    text = read_regular_file(path, MAX_TEXT_BYTES, &size, "is this an output folder of the pipeline?",
                             error);
    if (text == NULL) { free(path); return -1; }
    if ((bad = utf8_invalid_at(text, size)) < size) {
        int number = 1;
        for (i = 0; (size_t)i < bad; ++i) number += text[i] == '\n';
        set_error(error, "%s:%d: not valid UTF-8 text", path, number);
        free(text);
        free(path);
        return -1;
    }
    line = text;
    for (i = 0; line < text + size; ++i) {
        char *end = memchr(line, '\n', size - (size_t)(line - text));
        long code;
        if (end == NULL) end = text + size; /* the last line, without its newline */
        if ((code = forbidden_code(line, (size_t)(end - line))) >= 0) {
            set_error(error, "%s:%d: U+%04lX in a label, which no label may hold", path, i + 1,
                      (unsigned long)code);
            free(text);
            free(path);
            return -1;
        }
        *end = '\0';
        if (i >= config->num_classes || strcmp(line, config->classes[i]) != 0) break;
        line = end + 1;
    }
    if (i < config->num_classes || line < text + size) {
        set_error(error, "%s: line %d disagrees with %s field labels.classes (%d classes, one per "
                         "line, in output order)", path, i + 1, CONFIG_FILE, config->num_classes);
        free(text);
        free(path);
        return -1;
    }
    free(text);
    free(path);
    return 0;
}

int config_read(const char *output_dir, classifier_config *config, char *error)
{
    json_parser parser;
    json_node root;
    char *path, *text;
    size_t size, bad;
    int status = -1;
    memset(config, 0, sizeof *config);
    memset(&root, 0, sizeof root);
    if ((path = join_path(output_dir, CONFIG_FILE)) == NULL) {
        set_error(error, "out of memory");
        return -1;
    }
    text = read_regular_file(path, MAX_TEXT_BYTES, &size, "is this an output folder of the pipeline?",
                             error);
    if (text != NULL) {
        parser.at = text;
        parser.end = text + strlen(text); /* stops at a NUL byte, which then fails to parse */
        parser.line = 1;
        parser.depth = 0;
        parser.error = error;
        parser.source = path;
        if ((bad = utf8_invalid_at(text, size)) < size) {
            for (; parser.at < text + bad; ++parser.at) parser.line += *parser.at == '\n';
            parse_failure(&parser, "not valid UTF-8 text");
        } else if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
            parse_failure(&parser, "starts with a byte order mark; write it as plain UTF-8");
        } else if (parse_value(&parser, &root) == 0) {
            skip_space(&parser);
            if (parser.at != text + size)
                parse_failure(&parser, parser.at < parser.end ? "extra data after the value"
                                                              : "a NUL byte in the file");
            else if (read_fields(&root, path, config, error) == 0
                     && check_labels(output_dir, config, error) == 0) {
                config->model_path = join_path(output_dir, MODEL_FILE);
                if (config->model_path != NULL) status = 0;
                else set_error(error, "out of memory");
            }
        }
    }
    json_free(&root);
    free(text);
    free(path);
    if (status != 0) config_free(config);
    return status;
}

unsigned char *model_read(const classifier_config *config, size_t *size, char *error)
{
    char digest[SHA256_HEX_SIZE];
    char *data = read_regular_file(config->model_path, (size_t)-1 / 2, size,
                                   "the model file of the output folder", error);
    if (data == NULL) return NULL;
    if ((unsigned long long)*size != config->model_bytes) {
        set_error(error, "%s: %lu bytes, %s field model.bytes says %llu; the files do not belong "
                         "together", config->model_path, (unsigned long)*size, CONFIG_FILE,
                  config->model_bytes);
        free(data);
        return NULL;
    }
    sha256_hex((const unsigned char *)data, *size, digest);
    if (strcmp(digest, config->model_sha256) != 0) {
        set_error(error, "%s: sha256 differs from %s; the files do not belong together",
                  config->model_path, CONFIG_FILE);
        free(data);
        return NULL;
    }
    return (unsigned char *)data;
}

void config_free(classifier_config *config)
{
    int i;
    if (config->classes != NULL)
        for (i = 0; i < config->num_classes; ++i) free(config->classes[i]);
    free(config->classes);
    free(config->int8_thresholds);
    free(config->model_path);
    free(config->kernels);
    memset(config, 0, sizeof *config);
}
