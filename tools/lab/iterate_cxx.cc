#include "lab.h"
extern "C" void lab_cxx_unordered_map_facts(size_t n, lab_cxx_facts *f) { (void)n; *f = lab_cxx_facts{}; }
