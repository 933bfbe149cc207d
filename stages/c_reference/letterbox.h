/*
 * Letterbox reference for the phone: RGB uint8 in, S x S x 3 RGB uint8 out.
 *
 * Byte-identical to stages/common/preprocessing.py (the tests compile this file and compare
 * both on random images). The arithmetic is documented there and in inference_config.json.
 * C99, no allocation, no floating point.
 */
#ifndef LETTERBOX_H
#define LETTERBOX_H

#include <stddef.h>
#include <stdint.h>

/* Size of the content box inside the S x S canvas and its top-left corner.
 * Returns 0 on success, -1 if a dimension is not positive. */
int letterbox_geometry(int src_h, int src_w, int size,
                       int *new_h, int *new_w, int *top, int *left);

/* src: src_h rows of src_w RGB pixels, rows src_stride bytes apart (>= 3 * src_w).
 * dst: size * size * 3 bytes, written completely (black borders included).
 * Returns 0 on success, -1 on invalid arguments. */
int letterbox_rgb888(const uint8_t *src, int src_h, int src_w, size_t src_stride,
                     uint8_t *dst, int size);

#endif
