/*
 * Reading the pipeline's output folder in C: inference_config.json and labels.txt.
 *
 * Everything the classifier needs comes from these two files (the model file's name too);
 * nothing is assumed. A small strict JSON parser (RFC 8259, UTF-8) reads the config; each
 * problem is reported with the file and the field, as stages/common/inference_config.py does.
 * C99, no dependencies.
 */
#ifndef CONFIG_READER_H
#define CONFIG_READER_H

#include <stddef.h>

#define CONFIG_ERROR_SIZE 512
#define CONFIG_FORMAT_VERSION 1

typedef struct {
    char *model_file;          /* model.file, relative to the output folder */
    char *model_path;          /* the output folder joined with model.file */
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

/* Reads <output_dir>/inference_config.json and checks <output_dir>/labels.txt against it.
 * Returns 0 on success; otherwise -1 with a message in error (CONFIG_ERROR_SIZE bytes). */
int config_read(const char *output_dir, classifier_config *config, char *error);

void config_free(classifier_config *config);

#endif
