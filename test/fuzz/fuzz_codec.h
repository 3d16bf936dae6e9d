/* fuzz_codec.h - what the codec fuzz target and its corpus generator share:
 * the cluster id the seed frames carry and the key of the keyed re-encode. */
#ifndef ZRAFT_TEST_FUZZ_CODEC_H
#define ZRAFT_TEST_FUZZ_CODEC_H

#define FUZZ_CLUSTER 0x00000000005a5246ull /* "FRZ" */
#define FUZZ_KEY     "fuzz-cluster-secret"

#endif /* ZRAFT_TEST_FUZZ_CODEC_H */
