/*
 * SHA-256 (FIPS 180-4) of a byte buffer, as lowercase hex: the C app checks the model file
 * against inference_config.json's model.sha256 before the runtime sees a byte of it.
 * C99, no dependencies.
 */
#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>

#define SHA256_HEX_SIZE 65 /* 64 hex digits and the NUL */

void sha256_hex(const unsigned char *data, size_t size, char hex[SHA256_HEX_SIZE]);

#endif
