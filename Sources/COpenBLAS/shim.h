// OpenBLAS's CBLAS interface (Debian: libopenblas-dev). Used for F32 GEMM on the prefill path.
#include <cblas.h>
