/* SWD's descriptor loops: the band-pass values of a Laplacian level at the patches only, and the
 * normalisation.
 *
 * Why C: the numpy formulation builds every full level (pyr_up, subtraction) and gathers with fancy
 * indexing, several passes over memory per level; here each patch is read once from the Gaussian levels and
 * the column statistics for the normalisation come along, so the descriptors cost about as much as reading
 * the images (tools/bench_metrics.py).
 */
#include <stddef.h>
#include <stdint.h>

#define PATCH 7
#define RADIUS 3
#define WINDOW 6 /* coarse rows (or columns) under a 7-wide fine patch */

/* The official borders of pyr_up on the coarse level: coarse[-1] = coarse[1], coarse[size] = coarse[size-1]
 * (scipy's mirror border on the zero-inserted array). */
static inline int coarse_index(int index, int size) {
    return index < 0 ? 1 : (index >= size ? size - 1 : index);
}

/* Descriptors of one Laplacian level at `count` patch centres, without building the level:
 * out[k, c, i, j] = fine[k / per_image, c, y_k + j - 3, x_k + i - 3] - up(coarse)[same pixel]
 * (the official transposed layout: i runs along the width). `coarse` (size / 2) may be NULL for the
 * low-pass level (no subtraction). `fine` is float32, or uint8 images for the finest level (4x less memory
 * traffic than converting them first). pyr_up is evaluated on the 6 x 6 coarse window as two small
 * fixed-size products (rows x window x columns^T) in double: the products of these integer weights and
 * float32 values, and their sums, are exact as in scipy's double convolution, so the order does not matter;
 * the result is rounded to float32 before the float32 subtraction, as the official code stores its levels.
 * `weights` is [2 (parity of the patch's first fine row or column)][7 (fine offset)][6 (coarse sample from
 * (first >> 1) - 1)], x 8: pgmetrics.swd.descriptors' _UP_MATRICES, the one definition both paths use.
 * Column sums and sums of squares of the written descriptors are added (double) to sums[0 .. 146] and
 * squares[0 .. 146] for the normalisation. */
void pg_patch_descriptors(const void *fine, int fine_is_uint8, const float *coarse, int channels, int size,
                          const int64_t *x, const int64_t *y, int64_t count, int per_image,
                          const double weights[2][PATCH][WINDOW], float *out, double *sums, double *squares) {
    const int coarse_size = size / 2;
    const int64_t plane = (int64_t)size * size, coarse_plane = (int64_t)coarse_size * coarse_size;
    const int width = channels * PATCH * PATCH;
    for (int64_t k = 0; k < count; k++) {
        const int64_t image = k / per_image;
        const int left = (int)x[k] - RADIUS, top = (int)y[k] - RADIUS;
        const int row_base = (top >> 1) - 1, column_base = (left >> 1) - 1;
        const double (*row_weights)[WINDOW] = weights[top & 1];
        const double (*column_weights)[WINDOW] = weights[left & 1];
        int columns[WINDOW];
        for (int t = 0; t < WINDOW; t++) columns[t] = coarse_index(column_base + t, coarse_size);
        float *target = out + k * width;
        for (int c = 0; c < channels; c++) {
            double up[PATCH][PATCH]; /* [width offset][height offset], x 64 */
            if (coarse != NULL) {
                const float *low = coarse + (image * channels + c) * coarse_plane;
                double across[WINDOW][PATCH]; /* window rows x fine columns */
                for (int s = 0; s < WINDOW; s++) {
                    const float *row = low + (int64_t)coarse_index(row_base + s, coarse_size) * coarse_size;
                    double window[WINDOW];
                    for (int t = 0; t < WINDOW; t++) window[t] = row[columns[t]];
                    for (int i = 0; i < PATCH; i++) {
                        double total = 0.0;
                        for (int t = 0; t < WINDOW; t++) total += column_weights[i][t] * window[t];
                        across[s][i] = total;
                    }
                }
                for (int j = 0; j < PATCH; j++) {
                    for (int i = 0; i < PATCH; i++) {
                        double total = 0.0;
                        for (int s = 0; s < WINDOW; s++) total += row_weights[j][s] * across[s][i];
                        up[i][j] = total;
                    }
                }
            }
            const int64_t source = (image * channels + c) * plane;
            for (int i = 0; i < PATCH; i++) {          /* width offset */
                for (int j = 0; j < PATCH; j++) {      /* height offset */
                    const int64_t pixel = source + (int64_t)(top + j) * size + left + i;
                    float value = fine_is_uint8 ? (float)((const uint8_t *)fine)[pixel] : ((const float *)fine)[pixel];
                    if (coarse != NULL) value = value - (float)(up[i][j] * (1.0 / 64.0));
                    const int column = (c * PATCH + i) * PATCH + j;
                    target[column] = value;
                    sums[column] += value;
                    squares[column] += (double)value * value;
                }
            }
        }
    }
}

/* out[r, col] = (values[r, col] - mean[col]) / std[col] in float32 (the official finalize order). */
void pg_normalize(const float *values, int64_t rows, int width, const float *mean, const float *std, float *out) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = values + r * width;
        float *target = out + r * width;
        for (int col = 0; col < width; col++) target[col] = (row[col] - mean[col]) / std[col];
    }
}
