/* The CPU's fp32 FMA peak, measured: what "100% of the matmul rate" is bounded by.
 *
 *   gcc -O3 -mavx512f -fopenmp experiments/benchmarks/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak [threads]
 *
 * Each thread runs 16 independent chains of 512-bit fused multiply-adds on registers only (no
 * memory traffic; 16 chains hide the FMA latency on two ports; -O3 keeps them in registers, -O2 did
 * not: 88 GFLOP/s), so FLOPs / time is the rate at which the cores can multiply-add at all, at
 * whatever clock they hold under AVX-512 load. A convolution counted as direct multiply-adds cannot
 * pass it; only fewer multiplications (Winograd) can.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHAINS 16
#define ITERATIONS 50000000L

static double run(int threads) {
    float sink = 0.0f;
    double start = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
        __m512 acc[CHAINS];
        const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
        for (long i = 0; i < ITERATIONS; i++)
            for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
        for (int c = 0; c < CHAINS; c++) sink += _mm512_reduce_add_ps(acc[c]);
    }
    double seconds = omp_get_wtime() - start;
    if (sink == 12345.0f) printf(" ");  /* keeps the chains from being optimized away */
    return (double)threads * ITERATIONS * CHAINS * 16 * 2 / seconds / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    double best = 0.0;
    for (int round = 0; round < 3; round++) {
        double rate = run(threads);
        printf("round %d: %.1f GFLOP/s fp32 FMA, %d threads\n", round + 1, rate, threads);
        if (rate > best) best = rate;
    }
    printf("best: %.1f GFLOP/s (%.2f GHz at 2 FMA ports x 16 lanes x 2 FLOPs per core)\n", best,
           best / threads / 64.0);
    return 0;
}
