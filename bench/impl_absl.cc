/* SPDX-License-Identifier: MIT */
/*
 * impl_absl.cc — abseil's absl::flat_hash_map (SwissTable: 16-slot groups of control bytes matched with
 * SSE2), with absl::Hash. The adapter itself is impl_flat.h, shared with boost's map.
 */
#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <string_view>

template <class A>
using flat_u64_map =
    absl::flat_hash_map<uint64_t, uint64_t, absl::Hash<uint64_t>, std::equal_to<uint64_t>, A>;
template <class A>
using flat_str_map = absl::flat_hash_map<std::string_view, uint64_t, absl::Hash<std::string_view>,
                                         std::equal_to<std::string_view>, A>;
#include "impl_flat.h"

FLAT_DEFINE_ADAPTER(adapter_absl, "abseil")
