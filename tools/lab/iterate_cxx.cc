/* SPDX-License-Identifier: MIT */
/*
 * iterate_cxx.cc — what a real std::unordered_map does when elements are erased during an iteration, for
 * the iterate experiment. Only defined behaviour is exercised: erasing through the iterator erase returns,
 * reading an iterator to an element that was not erased (the standard keeps it valid), and watching
 * bucket_count() for the rehash that inserts cause (after which no old iterator is used).
 */
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <unordered_map>

extern "C" {
#include "lab.h"
}

extern "C" void lab_cxx_unordered_map_facts(size_t n, lab_cxx_facts *f) {
    std::unordered_map<uint64_t, uint64_t> m;
    for (uint64_t i = 0; i < n; i++)
        m.emplace(lab_key(i), i);
    *f = lab_cxx_facts{};
    f->max_load_factor = m.max_load_factor();
    f->buckets_before_erase = m.bucket_count();
    auto held = m.find(lab_key(0)); /* index 0 is even: it is kept */
    for (auto it = m.begin(); it != m.end();) {
        f->erase_returned_next++;
        if (it->second % 2 == 1)
            it = m.erase(it); /* the iterator to the next element */
        else
            ++it;
    }
    f->buckets_after_erase = m.bucket_count();
    f->held_iterator_valid = held != m.end() && held->first == lab_key(0) && held->second == 0;
    f->buckets_before_rehash = m.bucket_count();
    for (uint64_t i = n; m.bucket_count() == f->buckets_before_rehash; i++) {
        m.emplace(lab_key(i), i);
        f->inserts_until_rehash++;
    }
    f->buckets_after_rehash = m.bucket_count();
    using category =
        std::iterator_traits<std::unordered_map<uint64_t, uint64_t>::iterator>::iterator_category;
    f->iterator_bidirectional = std::is_base_of<std::bidirectional_iterator_tag, category>::value;
}
