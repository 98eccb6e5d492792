/* SPDX-License-Identifier: MIT */
/*
 * impl_boost.cc — boost::unordered_flat_map (Boost 1.81, header-only: 15-slot groups with one metadata
 * word each, SIMD matching), with boost::hash, which the map post-mixes for integers. The adapter itself is
 * impl_flat.h, shared with abseil's map.
 */
#include <boost/unordered/unordered_flat_map.hpp>

#include <cstdint>
#include <string_view>

template <class A>
using flat_u64_map =
    boost::unordered_flat_map<uint64_t, uint64_t, boost::hash<uint64_t>, std::equal_to<uint64_t>, A>;
template <class A>
using flat_str_map = boost::unordered_flat_map<std::string_view, uint64_t, boost::hash<std::string_view>,
                                               std::equal_to<std::string_view>, A>;
#include "impl_flat.h"

FLAT_DEFINE_ADAPTER(adapter_boost, "boost")
