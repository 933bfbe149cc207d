/*
 * classify: the phone's side of the pipeline, in C99, from the five outputs alone.
 *
 *   classify [--threads N] [--kernels xnnpack|builtin] [--int8] [--raw WxH] [--repeat N]
 *            OUTPUT_DIR IMAGE...
 *
 * Each IMAGE is decoded, upright RGB: binary PPM (P6, maxval 255), or with --raw WxH the bare
 * W*H*3 bytes. Decoding belongs to the platform (tools/decode_to_ppm.py writes what the
 * pipeline's own decoder gives, EXIF orientation applied). For each image: letterbox it with
 * letterbox.c, run model_qat_int8.tflite through the LiteRT C API, and predict class i when
 * its int8 output q[i] >= thresholds.classes[i].int8 of inference_config.json. It prints
 * "IMAGE: label (p), ..." like tools/predict.py, and with --int8 the line "  int8: q0 q1 ...".
 *
 * The LiteRT calls, in the order a phone's C layer makes them: environment -> model from file
 * -> options (CPU accelerator, CPU settings) -> compiled model -> buffer requirements ->
 * tensor buffers over 64-byte-aligned memory -> per image: lock, write, unlock, run, lock,
 * read, unlock.
 *
 * --repeat N times N more runs of the model on each image and prints their median to stderr
 * (the benchmark compares it with the Python interpreter's).
 *
 * Exit status: 0 all images classified; 1 some image could not be (its own "IMAGE: error:"
 * line, the others still classified); 2 bad arguments, config, labels or model.
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign, clock_gettime, fdopen */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config_reader.h"
#include "letterbox.h"
#include "litert_c_api.h"

#define MAX_IMAGE_PIXELS 50000000L /* as stages/common/preprocessing.py DEFAULT_MAX_IMAGE_PIXELS */
#define MESSAGE_SIZE 512

static const char *status_name(LiteRtStatus status)
{
    switch (status) {
    case kLiteRtStatusOk: return "ok";
    case kLiteRtStatusErrorInvalidArgument: return "invalid argument";
    case kLiteRtStatusErrorMemoryAllocationFailure: return "memory allocation failure";
    case kLiteRtStatusErrorRuntimeFailure: return "runtime failure";
    case kLiteRtStatusErrorMissingInputTensor: return "missing input tensor";
    case kLiteRtStatusErrorUnsupported: return "unsupported";
    case kLiteRtStatusErrorNotFound: return "not found";
    case kLiteRtStatusErrorFileIO: return "file I/O error";
    case kLiteRtStatusErrorInvalidFlatbuffer: return "not a valid TFLite flatbuffer";
    case kLiteRtStatusErrorCompilation: return "compilation failed";
    default: return "error";
    }
}

#define LITERT_CALL(call)                                                                      \
    do {                                                                                       \
        LiteRtStatus status_ = (call);                                                         \
        if (status_ != kLiteRtStatusOk) {                                                      \
            snprintf(error, MESSAGE_SIZE, "%s: %s failed: %s (LiteRT status %d)", model_path, \
                     #call, status_name(status_), (int)status_);                               \
            goto fail;                                                                         \
        }                                                                                      \
    } while (0)

typedef struct {
    LiteRtEnvironment environment;
    unsigned char *model_bytes; /* the checked file's bytes, which the model reads in place */
    LiteRtModel model;
    LiteRtCompiledModel compiled;
    LiteRtTensorBuffer input, output;
    void *input_memory, *output_memory;
    int size, num_classes;
} classifier;

/* A tensor of the model's signature against what the config says about it. */
static int check_tensor(LiteRtTensor tensor, const char *which, LiteRtElementType element,
                        const int *dims, int rank, double scale, int zero_point,
                        const char *model_path, char *error)
{
    LiteRtRankedTensorType type;
    LiteRtQuantizationTypeId quantization;
    LiteRtQuantizationPerTensor per_tensor;
    int i;
    LITERT_CALL(LiteRtGetRankedTensorType(tensor, &type));
    if (type.element_type != element) {
        snprintf(error, MESSAGE_SIZE, "%s: the %s is not %s (inference_config.json says it is)",
                 model_path, which, element == kLiteRtElementTypeUInt8 ? "uint8" : "int8");
        return -1;
    }
    if ((int)type.layout.rank != rank) {
        snprintf(error, MESSAGE_SIZE, "%s: the %s has rank %d, inference_config.json says %d",
                 model_path, which, (int)type.layout.rank, rank);
        return -1;
    }
    for (i = 0; i < rank; ++i)
        if (type.layout.dimensions[i] != dims[i]) {
            snprintf(error, MESSAGE_SIZE, "%s: the %s's dimension %d is %d (-1: dynamic), "
                     "inference_config.json says %d", model_path, which, i,
                     (int)type.layout.dimensions[i], dims[i]);
            return -1;
        }
    LITERT_CALL(LiteRtGetQuantizationTypeId(tensor, &quantization));
    if (quantization != kLiteRtQuantizationPerTensor) {
        snprintf(error, MESSAGE_SIZE, "%s: the %s is not quantised per tensor", model_path, which);
        return -1;
    }
    LITERT_CALL(LiteRtGetPerTensorQuantization(tensor, &per_tensor));
    if (per_tensor.scale != (float)scale || per_tensor.zero_point != zero_point) {
        snprintf(error, MESSAGE_SIZE, "%s: the %s's quantisation is scale %.9g, zero point %ld; "
                 "inference_config.json says %.9g and %d", model_path, which,
                 (double)per_tensor.scale, (long)per_tensor.zero_point, scale, zero_point);
        return -1;
    }
    return 0;
fail:
    return -1;
}

static void classifier_close(classifier *c)
{
    if (c->input) LiteRtDestroyTensorBuffer(c->input);
    if (c->output) LiteRtDestroyTensorBuffer(c->output);
    free(c->input_memory);
    free(c->output_memory);
    if (c->compiled) LiteRtDestroyCompiledModel(c->compiled);
    if (c->model) LiteRtDestroyModel(c->model);
    free(c->model_bytes);
    if (c->environment) LiteRtDestroyEnvironment(c->environment);
    memset(c, 0, sizeof *c);
}

/* A host-memory tensor buffer for one tensor of the signature, as large as the compiled model
 * requires and 64-byte aligned. */
static int make_buffer(LiteRtTensor tensor, LiteRtTensorBufferRequirements requirements,
                       size_t needed, void **memory, LiteRtTensorBuffer *buffer,
                       const char *model_path, char *error)
{
    LiteRtRankedTensorType type;
    size_t size;
    LITERT_CALL(LiteRtGetRankedTensorType(tensor, &type));
    LITERT_CALL(LiteRtGetTensorBufferRequirementsBufferSize(requirements, &size));
    if (size < needed) {
        snprintf(error, MESSAGE_SIZE, "%s: the runtime asks for a %lu-byte buffer where the "
                 "tensor needs %lu", model_path, (unsigned long)size, (unsigned long)needed);
        return -1;
    }
    size = (size + LITERT_HOST_MEMORY_BUFFER_ALIGNMENT - 1) / LITERT_HOST_MEMORY_BUFFER_ALIGNMENT
           * LITERT_HOST_MEMORY_BUFFER_ALIGNMENT;
    if (posix_memalign(memory, LITERT_HOST_MEMORY_BUFFER_ALIGNMENT, size) != 0) {
        *memory = NULL;
        snprintf(error, MESSAGE_SIZE, "out of memory");
        return -1;
    }
    memset(*memory, 0, size);
    LITERT_CALL(LiteRtCreateTensorBufferFromHostMemory(&type, *memory, size, NULL, buffer));
    return 0;
fail:
    return -1;
}

/* The "reference" kernel mode is left out on purpose: the 2.3.0 runtime accepts it, but its
 * outputs equal the builtin optimised kernels', not those of TFLite's reference kernels (the
 * Python interpreter's BUILTIN_REF), so it would measure something other than its name. */
static const char *kernel_mode(const char *kernels)
{
    if (strcmp(kernels, "xnnpack") == 0) return "delegate";
    if (strcmp(kernels, "builtin") == 0) return "builtin";
    return NULL;
}

static int classifier_open(classifier *c, const char *model_path, const classifier_config *config,
                           int threads, const char *kernels, char *error)
{
    LiteRtOptions options = NULL;
    LiteRtOpaqueOptions cpu_options = NULL;
    LiteRtSignature signature;
    LiteRtTensor input_tensor, output_tensor;
    LiteRtTensorBufferRequirements requirements;
    LiteRtParamIndex count;
    const int output_dims[2] = {1, config->num_classes};
    char *cpu_settings;
    size_t model_size;
    memset(c, 0, sizeof *c);
    c->size = config->input_shape[1];
    c->num_classes = config->num_classes;
    if (config->input_shape[1] != config->input_shape[2]) {
        snprintf(error, MESSAGE_SIZE, "inference_config.json: input.shape %dx%d is not square; "
                 "the letterbox makes square images", config->input_shape[1], config->input_shape[2]);
        return -1;
    }

    /* size and sha256 checked on the very bytes the runtime then reads: a cut or altered copy
     * of the model never reaches it */
    if ((c->model_bytes = model_read(config, &model_size, error)) == NULL) return -1;
    LITERT_CALL(LiteRtCreateEnvironment(0, NULL, &c->environment));
    LITERT_CALL(LiteRtCreateModelFromBuffer(c->environment, c->model_bytes, model_size, &c->model));
    LITERT_CALL(LiteRtGetNumModelSignatures(c->model, &count));
    if (count < 1) {
        snprintf(error, MESSAGE_SIZE, "%s: the model has no signature", model_path);
        goto fail;
    }
    LITERT_CALL(LiteRtGetModelSignature(c->model, 0, &signature));
    LITERT_CALL(LiteRtGetNumSignatureInputs(signature, &count));
    if (count != 1) {
        snprintf(error, MESSAGE_SIZE, "%s: the model takes %lu inputs, not one image",
                 model_path, (unsigned long)count);
        goto fail;
    }
    LITERT_CALL(LiteRtGetNumSignatureOutputs(signature, &count));
    if (count != 1) {
        snprintf(error, MESSAGE_SIZE, "%s: the model has %lu outputs, not one", model_path,
                 (unsigned long)count);
        goto fail;
    }
    LITERT_CALL(LiteRtGetSignatureInputTensorByIndex(signature, 0, &input_tensor));
    LITERT_CALL(LiteRtGetSignatureOutputTensorByIndex(signature, 0, &output_tensor));
    if (check_tensor(input_tensor, "input", kLiteRtElementTypeUInt8, config->input_shape, 4,
                     config->input_scale, config->input_zero_point, model_path, error) != 0
        || check_tensor(output_tensor, "output", kLiteRtElementTypeInt8, output_dims, 2,
                        config->output_scale, config->output_zero_point, model_path, error) != 0)
        goto fail;

    LITERT_CALL(LiteRtCreateOptions(&options));
    LITERT_CALL(LiteRtSetOptionsHardwareAccelerators(options, kLiteRtHwAcceleratorCpu));
    /* The runtime frees the payload with the destructor given here. */
    if ((cpu_settings = malloc(96)) == NULL) {
        snprintf(error, MESSAGE_SIZE, "out of memory");
        goto fail;
    }
    snprintf(cpu_settings, 96, "num_threads = %d\nkernel_mode = \"%s\"\n", threads,
             kernel_mode(kernels));
    if (LiteRtCreateOpaqueOptions("xnnpack", cpu_settings, free, &cpu_options) != kLiteRtStatusOk) {
        free(cpu_settings);
        snprintf(error, MESSAGE_SIZE, "%s: the CPU options cannot be created", model_path);
        goto fail;
    }
    LITERT_CALL(LiteRtAddOpaqueOptions(options, cpu_options));
    cpu_options = NULL; /* owned by options now */
    LITERT_CALL(LiteRtCreateCompiledModel(c->environment, c->model, options, &c->compiled));
    LiteRtDestroyOptions(options);
    options = NULL;

    LITERT_CALL(LiteRtGetCompiledModelInputBufferRequirements(c->compiled, 0, 0, &requirements));
    if (make_buffer(input_tensor, requirements, (size_t)c->size * c->size * 3, &c->input_memory,
                    &c->input, model_path, error) != 0) goto fail;
    LITERT_CALL(LiteRtGetCompiledModelOutputBufferRequirements(c->compiled, 0, 0, &requirements));
    if (make_buffer(output_tensor, requirements, (size_t)c->num_classes, &c->output_memory,
                    &c->output, model_path, error) != 0) goto fail;
    return 0;
fail:
    if (cpu_options) LiteRtDestroyOpaqueOptions(cpu_options);
    if (options) LiteRtDestroyOptions(options);
    classifier_close(c);
    return -1;
}

/* int8 outputs of one upright RGB image (rows of 3 * width bytes). */
static int classify(classifier *c, const uint8_t *rgb, int height, int width, int8_t *outputs,
                    const char *model_path, char *error)
{
    void *pixels, *result;
    int boxed;
    LITERT_CALL(LiteRtLockTensorBuffer(c->input, &pixels, kLiteRtTensorBufferLockModeWrite));
    boxed = letterbox_rgb888(rgb, height, width, (size_t)width * 3, pixels, c->size);
    LITERT_CALL(LiteRtUnlockTensorBuffer(c->input));
    if (boxed != 0) {
        snprintf(error, MESSAGE_SIZE, "the image cannot be letterboxed (%dx%d)", width, height);
        return -1;
    }
    LITERT_CALL(LiteRtRunCompiledModel(c->compiled, 0, 1, &c->input, 1, &c->output));
    LITERT_CALL(LiteRtLockTensorBuffer(c->output, &result, kLiteRtTensorBufferLockModeRead));
    memcpy(outputs, result, (size_t)c->num_classes);
    LITERT_CALL(LiteRtUnlockTensorBuffer(c->output));
    return 0;
fail:
    return -1;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median milliseconds of `runs` more runs on the input already in the buffer; -1 on error. */
static double median_run_ms(classifier *c, int runs, const char *model_path, char *error)
{
    double *times = malloc((size_t)runs * sizeof *times), median;
    int i;
    if (times == NULL) {
        snprintf(error, MESSAGE_SIZE, "out of memory");
        return -1;
    }
    for (i = 0; i < runs; ++i) {
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        LITERT_CALL(LiteRtRunCompiledModel(c->compiled, 0, 1, &c->input, 1, &c->output));
        clock_gettime(CLOCK_MONOTONIC, &end);
        times[i] = (double)(end.tv_sec - start.tv_sec) * 1e3 + (double)(end.tv_nsec - start.tv_nsec) / 1e6;
    }
    qsort(times, (size_t)runs, sizeof *times, compare_doubles);
    median = runs % 2 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
    free(times);
    return median;
fail:
    free(times);
    return -1;
}

/* ---- decoded images ------------------------------------------------------------------------ */

static int ppm_number(FILE *file, long *value)
{
    int ch = fgetc(file);
    for (;;) { /* whitespace and "#" comments may sit between the header's fields */
        while (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f')
            ch = fgetc(file);
        if (ch != '#') break;
        while (ch != '\n' && ch != EOF) ch = fgetc(file);
    }
    if (ch < '0' || ch > '9') return -1;
    *value = 0;
    while (ch >= '0' && ch <= '9') {
        if (*value > 100000000L) return -1;
        *value = *value * 10 + (ch - '0');
        ch = fgetc(file);
    }
    /* exactly one whitespace byte ends a field (and, after maxval, the header) */
    return (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f') ? 0 : -1;
}

/* A regular file opened for reading; a FIFO, device or folder is refused before it is opened
 * (reading one could block for ever or never end). NULL and a message otherwise. */
static FILE *open_regular(const char *path, char *error)
{
    int descriptor = open_regular_file(path);
    FILE *file;
    if (descriptor == REGULAR_FILE_NOT_REGULAR) {
        snprintf(error, MESSAGE_SIZE, "cannot be read: %s", NOT_REGULAR_FILE);
        return NULL;
    }
    if (descriptor == REGULAR_FILE_ERRNO) {
        snprintf(error, MESSAGE_SIZE, "%s", errno == ENOENT ? "file not found" : strerror(errno));
        return NULL;
    }
    if ((file = fdopen(descriptor, "rb")) == NULL) {
        snprintf(error, MESSAGE_SIZE, "cannot be read: %s", strerror(errno));
        close(descriptor);
    }
    return file;
}

/* Reads an image into *rgb (malloc'd). raw_width > 0: the file is raw_width x raw_height RGB. */
static int read_image(const char *path, int raw_width, int raw_height, uint8_t **rgb,
                      int *height, int *width, char *error)
{
    FILE *file = open_regular(path, error);
    long w = raw_width, h = raw_height, maxval = 255;
    size_t bytes;
    *rgb = NULL;
    if (file == NULL) return -1;
    if (raw_width <= 0) {
        char magic[2];
        if (fread(magic, 1, 2, file) != 2 || magic[0] != 'P' || magic[1] != '6') {
            snprintf(error, MESSAGE_SIZE, "not a binary PPM (P6); decode it first "
                     "(python -m tools.decode_to_ppm), or give --raw WxH for raw RGB");
            fclose(file);
            return -1;
        }
        if (ppm_number(file, &w) != 0 || ppm_number(file, &h) != 0 || ppm_number(file, &maxval) != 0) {
            snprintf(error, MESSAGE_SIZE, "the PPM header is damaged (P6, width, height, maxval)");
            fclose(file);
            return -1;
        }
        if (maxval != 255) {
            snprintf(error, MESSAGE_SIZE, "PPM maxval is %ld; only 8-bit PPM (255) is accepted", maxval);
            fclose(file);
            return -1;
        }
    }
    if (w < 1 || h < 1 || w > MAX_IMAGE_PIXELS / h) { /* w * h could overflow a 32-bit long */
        snprintf(error, MESSAGE_SIZE, "%ldx%ld pixels: each side must be at least 1 and the "
                 "total at most %ld", w, h, MAX_IMAGE_PIXELS);
        fclose(file);
        return -1;
    }
    bytes = (size_t)w * (size_t)h * 3;
    if ((*rgb = malloc(bytes)) == NULL) {
        snprintf(error, MESSAGE_SIZE, "out of memory for %ldx%ld pixels", w, h);
        fclose(file);
        return -1;
    }
    if (fread(*rgb, 1, bytes, file) != bytes || fgetc(file) != EOF) {
        snprintf(error, MESSAGE_SIZE, "holds %s than %ldx%ld RGB pixels", feof(file) ? "fewer" : "more", w, h);
        free(*rgb);
        *rgb = NULL;
        fclose(file);
        return -1;
    }
    fclose(file);
    *height = (int)h;
    *width = (int)w;
    return 0;
}

/* ---- the command ---------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: classify [--threads N] [--kernels xnnpack|builtin] [--int8] "
            "[--raw WxH] [--repeat N] OUTPUT_DIR IMAGE...\n"
            "  OUTPUT_DIR  the five outputs of the pipeline (inference_config.json, labels.txt, "
            "the model, ...)\n"
            "  IMAGE       decoded upright RGB: binary PPM (P6), or raw bytes with --raw WxH\n"
            "  --threads   CPU threads (default 1)\n"
            "  --kernels   CPU kernels: xnnpack (default; the path the thresholds were tuned on)\n"
            "              or builtin (TFLite's builtin optimised kernels, no delegate)\n"
            "  --int8      also print each image's int8 outputs\n"
            "  --repeat N  time N more model runs per image; the median goes to stderr\n");
}

/* Decimal digits only (no sign, no spaces) from *text up to the first non-digit, as a value
 * from 1 to high; -1 for none, an overflow or a value out of range. */
static long parse_digits(const char **text, long high)
{
    long value = 0;
    const char *start = *text;
    for (; **text >= '0' && **text <= '9'; ++*text) {
        if (value > (high - (**text - '0')) / 10) return -1; /* checked before it can overflow */
        value = value * 10 + (**text - '0');
    }
    return *text == start || value < 1 ? -1 : value;
}

/* --raw's WIDTHxHEIGHT, each side from 1 to MAX_IMAGE_PIXELS; -1 otherwise. */
static int parse_size(const char *text, int *width, int *height)
{
    long w = parse_digits(&text, MAX_IMAGE_PIXELS), h;
    if (w < 0 || *text++ != 'x') return -1;
    h = parse_digits(&text, MAX_IMAGE_PIXELS);
    if (h < 0 || *text != '\0') return -1;
    *width = (int)w;
    *height = (int)h;
    return 0;
}

/* An option's integer value from 1 to high; a message and -1 otherwise. */
static int integer_option(const char *option, const char *text, long high, int *value)
{
    const char *end = text;
    long parsed = parse_digits(&end, high);
    if (parsed < 0 || *end != '\0') {
        fprintf(stderr, "classify: %s must be an integer from 1 to %ld, got %s\n", option, high, text);
        return -1;
    }
    *value = (int)parsed;
    return 0;
}

int main(int argc, char **argv)
{
    classifier_config config;
    classifier model;
    char error[MESSAGE_SIZE > CONFIG_ERROR_SIZE ? MESSAGE_SIZE : CONFIG_ERROR_SIZE];
    const char *kernels = "xnnpack", *output_dir;
    const char *model_path;
    int threads = 1, print_int8 = 0, raw_width = 0, raw_height = 0, repeat = 0, first, i;
    int failures = 0;
    int8_t *outputs;

    for (first = 1; first < argc && strncmp(argv[first], "--", 2) == 0; ++first) {
        const char *option = argv[first];
        if (strcmp(option, "--") == 0) { ++first; break; }
        if (strcmp(option, "--int8") == 0) { print_int8 = 1; continue; }
        if (first + 1 >= argc) { fprintf(stderr, "classify: %s needs a value\n", option); usage(); return 2; }
        if (strcmp(option, "--threads") == 0) {
            if (integer_option(option, argv[++first], 64, &threads) != 0) return 2;
        } else if (strcmp(option, "--repeat") == 0) {
            if (integer_option(option, argv[++first], 100000, &repeat) != 0) return 2;
        } else if (strcmp(option, "--kernels") == 0) {
            kernels = argv[++first];
            if (kernel_mode(kernels) == NULL) {
                fprintf(stderr, "classify: --kernels must be xnnpack or builtin, got %s\n", kernels);
                return 2;
            }
        } else if (strcmp(option, "--raw") == 0) {
            if (parse_size(argv[++first], &raw_width, &raw_height) != 0) {
                fprintf(stderr, "classify: --raw must be WIDTHxHEIGHT, e.g. 640x480, got %s\n", argv[first]);
                return 2;
            }
        } else {
            fprintf(stderr, "classify: unknown option %s\n", option);
            usage();
            return 2;
        }
    }
    if (argc - first < 2) {
        usage();
        return 2;
    }
    output_dir = argv[first++];
    if (config_read(output_dir, &config, error) != 0) {
        fprintf(stderr, "classify: %s\n", error);
        return 2;
    }
    if (config.kernels != NULL && strcmp(config.kernels, kernels) != 0)
        fprintf(stderr, "classify: warning: the thresholds were tuned on %s kernels, this run uses "
                "%s; decisions may differ from the measured ones\n", config.kernels, kernels);
    model_path = config.model_path;
    outputs = malloc((size_t)config.num_classes);
    if (outputs == NULL) {
        fprintf(stderr, "classify: out of memory\n");
        config_free(&config);
        return 2;
    }
    if (classifier_open(&model, model_path, &config, threads, kernels, error) != 0) {
        fprintf(stderr, "classify: %s\n", error);
        free(outputs);
        config_free(&config);
        return 2;
    }

    for (i = first; i < argc; ++i) {
        uint8_t *rgb;
        int height, width, c, found = 0;
        if (read_image(argv[i], raw_width, raw_height, &rgb, &height, &width, error) != 0
            || classify(&model, rgb, height, width, outputs, model_path, error) != 0) {
            if (rgb != NULL) free(rgb);
            printf("%s: error: %s\n", argv[i], error);
            ++failures;
            continue;
        }
        free(rgb);
        if (repeat > 0) {
            double median = median_run_ms(&model, repeat, model_path, error);
            if (median < 0) {
                printf("%s: error: %s\n", argv[i], error);
                ++failures;
                continue;
            }
            fprintf(stderr, "classify: %s: model run median %.3f ms over %d runs, %d thread(s), "
                    "%s kernels\n", argv[i], median, repeat, threads, kernels);
        }
        printf("%s: ", argv[i]);
        for (c = 0; c < config.num_classes; ++c) {
            if (outputs[c] < config.int8_thresholds[c]) continue;
            printf("%s%s (%.2f)", found++ ? ", " : "", config.classes[c],
                   1.0 / (1.0 + exp(-(outputs[c] - config.output_zero_point) * config.output_scale)));
        }
        printf("%s\n", found ? "" : "(no label)");
        if (print_int8) {
            printf("  int8:");
            for (c = 0; c < config.num_classes; ++c) printf(" %d", outputs[c]);
            printf("\n");
        }
    }
    classifier_close(&model);
    free(outputs);
    config_free(&config);
    return failures ? 1 : 0;
}
