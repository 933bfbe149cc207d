/* See letterbox.h. Every division below is between non-negative integers. */
#include "letterbox.h"

#include <string.h>

#define FRACTION_BITS 11
#define FRACTION_ONE (1 << FRACTION_BITS) /* 2048 */
#define ROUND_SHIFT (2 * FRACTION_BITS)
#define ROUND_HALF ((int64_t)1 << (ROUND_SHIFT - 1))

int letterbox_geometry(int src_h, int src_w, int size,
                       int *new_h, int *new_w, int *top, int *left)
{
    int64_t longest, h, w;
    if (src_h < 1 || src_w < 1 || size < 1) return -1;
    longest = src_h > src_w ? src_h : src_w;
    /* round half away from zero of src * size / longest, exactly, in integers */
    h = (2 * (int64_t)src_h * size + longest) / (2 * longest);
    w = (2 * (int64_t)src_w * size + longest) / (2 * longest);
    if (h < 1) h = 1;
    if (w < 1) w = 1;
    *new_h = (int)h;
    *new_w = (int)w;
    *top = (size - *new_h) / 2; /* an odd leftover pixel goes to the bottom */
    *left = (size - *new_w) / 2; /* ... and to the right */
    return 0;
}

/* Source indices and 11-bit fraction sampled by destination index i on one axis. */
static void axis_sample(int64_t i, int64_t src_len, int64_t dst_len,
                        int64_t *i0, int64_t *i1, int64_t *frac)
{
    int64_t den = 2 * dst_len;
    int64_t num = (2 * i + 1) * src_len - dst_len;
    int64_t a, f;
    if (num < 0) num = 0;
    a = num / den;
    f = ((num - a * den) * FRACTION_ONE + dst_len) / den;
    if (f == FRACTION_ONE) {
        a += 1;
        f = 0;
    }
    if (a >= src_len - 1) {
        a = src_len - 1;
        f = 0;
    }
    *i0 = a;
    *i1 = a + 1 < src_len ? a + 1 : src_len - 1;
    *frac = f;
}

int letterbox_rgb888(const uint8_t *src, int src_h, int src_w, size_t src_stride,
                     uint8_t *dst, int size)
{
    int new_h, new_w, top, left, y, x, c;
    if (src == NULL || dst == NULL || src_stride < (size_t)src_w * 3) return -1;
    if (letterbox_geometry(src_h, src_w, size, &new_h, &new_w, &top, &left) != 0) return -1;
    memset(dst, 0, (size_t)size * size * 3);
    for (y = 0; y < new_h; ++y) {
        int64_t y0, y1, fy;
        const uint8_t *row0, *row1;
        uint8_t *out = dst + ((size_t)(top + y) * size + left) * 3;
        axis_sample(y, src_h, new_h, &y0, &y1, &fy);
        row0 = src + (size_t)y0 * src_stride;
        row1 = src + (size_t)y1 * src_stride;
        for (x = 0; x < new_w; ++x) {
            int64_t x0, x1, fx;
            axis_sample(x, src_w, new_w, &x0, &x1, &fx);
            for (c = 0; c < 3; ++c) {
                int64_t upper = row0[x0 * 3 + c] * (FRACTION_ONE - fx) + row0[x1 * 3 + c] * fx;
                int64_t lower = row1[x0 * 3 + c] * (FRACTION_ONE - fx) + row1[x1 * 3 + c] * fx;
                int64_t value = (upper * (FRACTION_ONE - fy) + lower * fy + ROUND_HALF) >> ROUND_SHIFT;
                out[x * 3 + c] = (uint8_t)value;
            }
        }
    }
    return 0;
}
