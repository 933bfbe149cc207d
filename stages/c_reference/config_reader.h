/*
 * Reading the pipeline's output folder in C: inference_config.json, labels.txt and the model's
 * bytes.
 *
 * Everything the classifier needs comes from these files; nothing is assumed. The rules are
 * docs/output_folder_rules.md, the same that stages/common/deployment/inference_config.py and
 * predictor.py apply: a small strict JSON parser (RFC 8259, UTF-8, no duplicate member names,
 * at most 64 levels) reads the config, each field is checked as the schema there checks it,
 * and each problem is reported with the file and the field. C99 and POSIX, no dependencies.
 */
#ifndef CONFIG_READER_H
#define CONFIG_READER_H

#include <stddef.h>

#define CONFIG_ERROR_SIZE 512
#define CONFIG_FORMAT_VERSION 1
#define CONFIG_FILE "inference_config.json"
#define LABELS_FILE "labels.txt"
#define MODEL_FILE "model_qat_int8.tflite"

typedef struct {
    char *model_path;          /* the output folder joined with MODEL_FILE (= model.file) */
    unsigned long long model_bytes; /* model.bytes */
    char model_sha256[65];     /* model.sha256, 64 lowercase hex digits */
    int input_shape[4];        /* input.shape: 1, height, width, 3 */
    double input_scale;        /* input.quantization */
    int input_zero_point;
    int num_classes;           /* output.shape[1] */
    double output_scale;       /* output.quantization */
    int output_zero_point;
    char **classes;            /* labels.classes, in output order */
    int *int8_thresholds;      /* thresholds.classes[i].int8: predict i when q[i] >= it */
    char *kernels;             /* kernels.tuned_and_evaluated_on, or NULL if absent */
} classifier_config;

/* Reads <output_dir>/inference_config.json and checks <output_dir>/labels.txt against it, under
 * the rules of docs/output_folder_rules.md. Returns 0 on success; otherwise -1 with a message
 * in error (CONFIG_ERROR_SIZE bytes). */
int config_read(const char *output_dir, classifier_config *config, char *error);

/* The model file's bytes (malloc'd), once they are a regular file of model.bytes bytes whose
 * sha256 is model.sha256: checked before the runtime sees them. NULL and a message otherwise. */
unsigned char *model_read(const classifier_config *config, size_t *size, char *error);

/* A descriptor of a regular file opened for reading (a symbolic link to one is fine). FIFOs,
 * devices, sockets and folders are refused before they are opened, and again on the opened
 * descriptor: REGULAR_FILE_NOT_REGULAR. REGULAR_FILE_ERRNO: stat or open failed (errno). */
#define REGULAR_FILE_ERRNO (-1)
#define REGULAR_FILE_NOT_REGULAR (-2)
#define NOT_REGULAR_FILE "not a regular file (a FIFO, device, socket or folder)"
int open_regular_file(const char *path);

/* A regular file's bytes (malloc'd, NUL-terminated) of at most max_bytes (see
 * open_regular_file). NULL and a message otherwise; `what` says what the file is for when it is
 * missing. */
char *read_regular_file(const char *path, size_t max_bytes, size_t *size, const char *what,
                        char *error);

void config_free(classifier_config *config);

#endif
