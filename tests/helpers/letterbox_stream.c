/* Test driver: reads records "int32 h, int32 w, int32 size, h*w*3 RGB bytes" from stdin until
 * EOF and writes size*size*3 letterboxed bytes per record to stdout. */
#include <stdio.h>
#include <stdlib.h>

#include "letterbox.h"

int main(void)
{
    int32_t header[3];
    while (fread(header, sizeof header, 1, stdin) == 1) {
        size_t in_bytes = (size_t)header[0] * header[1] * 3;
        size_t out_bytes = (size_t)header[2] * header[2] * 3;
        uint8_t *in = malloc(in_bytes ? in_bytes : 1), *out = malloc(out_bytes ? out_bytes : 1);
        if (!in || !out || fread(in, 1, in_bytes, stdin) != in_bytes) return 2;
        if (letterbox_rgb888(in, header[0], header[1], (size_t)header[1] * 3, out, header[2]) != 0)
            return 3;
        if (fwrite(out, 1, out_bytes, stdout) != out_bytes) return 4;
        free(in);
        free(out);
    }
    return 0;
}
