/* fuzz_codec.h - what the codec fuzz target and its corpus generator share:
 * the cluster id the seed frames carry. */
#ifndef ZRAFT_TEST_FUZZ_CODEC_H
#define ZRAFT_TEST_FUZZ_CODEC_H

#define FUZZ_CLUSTER 0x00000000005a5246ull /* "FRZ" */

#endif /* ZRAFT_TEST_FUZZ_CODEC_H */
