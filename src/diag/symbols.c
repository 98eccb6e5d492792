/* SPDX-License-Identifier: MIT */
/*
 * diag/symbols.c — what a profile needs to know about the code that is loaded (see diag.h).
 *
 * Objects. dl_iterate_phdr lists the program and every shared object with their load bias and segments;
 * from those come each object's address range and its GNU build id (the NT_GNU_BUILD_ID note of a PT_NOTE
 * segment, already in memory), which pprof uses to check that it symbolizes against the same binary.
 *
 * Symbols. Each object's ELF file is mapped read-only when a frame first falls into it, and its function
 * symbols (.symtab, else .dynsym) are sorted by address. They serve two purposes:
 *  - the function names written into the profile, so that it reads well even where pprof cannot open the
 *    binary (pprof replaces them with its own file:line symbolization when it can, see pprof.c);
 *  - the library's public API, where stacks are cut: a frame is the API's when its function is one of this
 *    library's global functions of default visibility named hmap_ (internal functions shared between
 *    files carry hmap__; with hidden visibility the linker makes them local anyway), or a part the
 *    compiler split off one (hmap_put.cold, hmap_put.part.0: a C function's name cannot contain a dot).
 *    Only symbols of the object that holds this library's code count, so another object's hmap_ names
 *    (a plugin with its own copy) are left alone. That is exact where the old rule was not: it needs no
 *    list of the library's files, and a program's own map.c is the program's.
 * When a file has no symbol table at all (stripped), dladdr's answer (exported symbols only) is used.
 *
 * Mappings are the executable file mappings of /proc/self/maps, each with its object's build id.
 * Everything here is read once per profile written, on the C heap, and freed with objects_free.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, dl_iterate_phdr */
#endif
#include "diag.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct symbol {
    uintptr_t start;
    size_t size;
    const char *name; /* inside the mapped file */
    bool is_public;   /* see public_symbol */
} symbol;

typedef struct object {
    char path[512];
    uintptr_t bias;    /* load bias: runtime address = file address + bias */
    uintptr_t lo, hi;  /* range of its loaded segments */
    char build_id[81]; /* hex, or "" */
    bool symbols_loaded;
    symbol *syms;
    size_t nsyms;
    void *file_map; /* the mapped ELF file the names point into */
    size_t file_bytes;
} object;

struct objects {
    object *v;
    size_t n;
    bool failed;
    const object *library; /* the object holding this library's code */
};

/* ---- objects ------------------------------------------------------------------------------------------- */

static void hex_encode(const unsigned char *p, size_t n, char *out, size_t out_size) {
    static const char digits[] = "0123456789abcdef";
    size_t k = 0;
    for (size_t i = 0; i < n && k + 2 < out_size; i++) {
        out[k++] = digits[p[i] >> 4];
        out[k++] = digits[p[i] & 15];
    }
    out[k] = '\0';
}

/* Finds NT_GNU_BUILD_ID in one PT_NOTE segment, already in memory. */
static void read_build_id(const unsigned char *notes, size_t len, char *out, size_t out_size) {
    size_t off = 0;
    while (off + sizeof(ElfW(Nhdr)) <= len) {
        const ElfW(Nhdr) *nh = (const void *)(notes + off);
        size_t name_at = off + sizeof *nh;
        size_t desc_at = name_at + ((nh->n_namesz + 3) & ~(size_t)3);
        size_t next = desc_at + ((nh->n_descsz + 3) & ~(size_t)3);
        if (next > len)
            return;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(notes + name_at, "GNU", 4) == 0) {
            hex_encode(notes + desc_at, nh->n_descsz, out, out_size);
            return;
        }
        off = next;
    }
}

static int note_object(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    objects *objs = arg;
    object *grown = realloc(objs->v, (objs->n + 1) * sizeof *grown);
    if (grown == NULL) {
        objs->failed = true;
        return 1;
    }
    objs->v = grown;
    object *o = &objs->v[objs->n];
    memset(o, 0, sizeof *o);
    o->bias = info->dlpi_addr;
    o->lo = UINTPTR_MAX;
    bool is_main = objs->n == 0; /* dl_iterate_phdr reports the program first */
    if (is_main || info->dlpi_name == NULL || info->dlpi_name[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", o->path, sizeof o->path - 1);
        o->path[n > 0 ? n : 0] = '\0';
    } else {
        snprintf(o->path, sizeof o->path, "%s", info->dlpi_name);
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD) {
            if (start < o->lo)
                o->lo = start;
            if (start + ph->p_memsz > o->hi)
                o->hi = start + ph->p_memsz;
        } else if (ph->p_type == PT_NOTE && o->build_id[0] == '\0') {
            read_build_id((const unsigned char *)start, ph->p_memsz, o->build_id, sizeof o->build_id);
        }
    }
    objs->n++;
    return 0;
}

static object *object_of(objects *objs, uintptr_t addr) {
    for (size_t i = 0; i < objs->n; i++)
        if (addr >= objs->v[i].lo && addr < objs->v[i].hi)
            return &objs->v[i];
    return NULL;
}

objects *objects_load(void) {
    objects *objs = calloc(1, sizeof *objs);
    if (objs == NULL)
        return NULL;
    dl_iterate_phdr(note_object, objs);
    objs->library = object_of(objs, (uintptr_t)&objects_load);
    return objs;
}

void objects_free(objects *objs) {
    if (objs == NULL)
        return;
    for (size_t i = 0; i < objs->n; i++) {
        free(objs->v[i].syms);
        if (objs->v[i].file_map)
            munmap(objs->v[i].file_map, objs->v[i].file_bytes);
    }
    free(objs->v);
    free(objs);
}

/* ---- symbols ------------------------------------------------------------------------------------------- */

static bool has_public_prefix(const char *name) {
    return strncmp(name, "hmap_", 5) == 0 && name[5] != '_' && name[5] != '\0';
}

static bool public_symbol(const char *name, unsigned bind, unsigned visibility) {
    if (!has_public_prefix(name))
        return false;
    if (strchr(name, '.') != NULL) /* hmap_put.cold: split off a public function by the compiler */
        return true;
    return (bind == STB_GLOBAL || bind == STB_WEAK) && visibility == STV_DEFAULT;
}

static int compare_symbols(const void *a, const void *b) {
    const symbol *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Maps the object's file read-only; false when it cannot be read as an ELF file. */
static bool map_file(object *o) {
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(ElfW(Ehdr)))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return false;
    o->file_map = map;
    o->file_bytes = (size_t)st.st_size;
    return memcmp(((const ElfW(Ehdr) *)map)->e_ident, ELFMAG, SELFMAG) == 0;
}

/* The symbol table section (.symtab, else .dynsym) and its string section, checked to lie in the file. */
static bool find_symtab(const object *o, const ElfW(Shdr) * *symtab, const ElfW(Shdr) * *strsec) {
    const unsigned char *base = o->file_map;
    const ElfW(Ehdr) *eh = o->file_map;
    if (eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > o->file_bytes)
        return false;
    const ElfW(Shdr) *sh = (const void *)(base + eh->e_shoff);
    *symtab = NULL;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_SYMTAB || (sh[i].sh_type == SHT_DYNSYM && *symtab == NULL))
            *symtab = &sh[i];
    if (*symtab == NULL || (*symtab)->sh_link >= eh->e_shnum)
        return false;
    *strsec = &sh[(*symtab)->sh_link];
    return (*symtab)->sh_offset + (*symtab)->sh_size <= o->file_bytes &&
           (*strsec)->sh_offset + (*strsec)->sh_size <= o->file_bytes;
}

/* Keeps the defined function symbols of the table, sorted by address. */
static void read_symbols(object *o, const ElfW(Shdr) * symtab, const ElfW(Shdr) * strsec, bool library) {
    const unsigned char *base = o->file_map;
    const ElfW(Sym) *syms = (const void *)(base + symtab->sh_offset);
    size_t n = symtab->sh_size / sizeof(ElfW(Sym));
    const char *strs = (const char *)(base + strsec->sh_offset);
    o->syms = malloc((n ? n : 1) * sizeof *o->syms);
    if (o->syms == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (ELF64_ST_TYPE(syms[i].st_info) != STT_FUNC || syms[i].st_shndx == SHN_UNDEF ||
            syms[i].st_value == 0 || syms[i].st_name >= strsec->sh_size)
            continue;
        symbol *s = &o->syms[o->nsyms++];
        s->start = o->bias + syms[i].st_value;
        s->size = syms[i].st_size;
        s->name = strs + syms[i].st_name;
        s->is_public = library && public_symbol(s->name, ELF64_ST_BIND(syms[i].st_info),
                                                ELF64_ST_VISIBILITY(syms[i].st_other));
    }
    qsort(o->syms, o->nsyms, sizeof *o->syms, compare_symbols);
}

static void load_symbols(objects *objs, object *o) {
    o->symbols_loaded = true;
    const ElfW(Shdr) * symtab, *strsec;
    if (map_file(o) && find_symtab(o, &symtab, &strsec))
        read_symbols(o, symtab, strsec, o == objs->library);
}

/* The function symbol holding addr, or NULL. */
static const symbol *symbol_of(objects *objs, uintptr_t addr) {
    object *o = object_of(objs, addr);
    if (o == NULL)
        return NULL;
    if (!o->symbols_loaded)
        load_symbols(objs, o);
    size_t lo = 0, hi = o->nsyms; /* the last symbol starting at or below addr */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->syms[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const symbol *s = &o->syms[lo - 1];
    if (s->size != 0 && addr >= s->start + s->size)
        return NULL;
    return s;
}

static const char *dladdr_name(uintptr_t pc) {
    Dl_info info;
    if (dladdr((void *)pc, &info) != 0 && info.dli_sname != NULL)
        return info.dli_sname;
    return NULL;
}

const char *objects_function(objects *objs, uintptr_t pc) {
    const symbol *s = symbol_of(objs, pc);
    return s != NULL ? s->name : dladdr_name(pc);
}

bool objects_in_public_api(objects *objs, uintptr_t pc) {
    object *o = object_of(objs, pc);
    if (o == NULL || o != objs->library)
        return false;
    const symbol *s = symbol_of(objs, pc);
    if (s != NULL)
        return s->is_public;
    if (o->nsyms != 0)
        return false; /* between the symbols of a file that has them: not a function of the API */
    const char *name = dladdr_name(pc); /* a stripped file: only its exported symbols are known */
    return name != NULL && has_public_prefix(name);
}

/* ---- mappings ------------------------------------------------------------------------------------------ */

int objects_mappings(objects *objs, mapping **out, size_t *count) {
    *out = NULL;
    *count = 0;
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return 0; /* no mappings: pprof then knows nothing of the binaries, the profile is still valid */
    mapping *maps = NULL;
    size_t n = 0;
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long start, end, offset;
        char perms[8], path[512] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511[^\n]", &start, &end, perms, &offset, path) < 4)
            continue;
        if (strchr(perms, 'x') == NULL || path[0] != '/')
            continue;
        mapping *grown = realloc(maps, (n + 1) * sizeof *grown);
        if (grown == NULL) {
            fclose(f);
            free(maps);
            return -ENOMEM;
        }
        maps = grown;
        mapping *m = &maps[n++];
        m->start = start;
        m->limit = end;
        m->offset = offset;
        snprintf(m->path, sizeof m->path, "%s", path);
        const object *o = object_of(objs, start);
        m->build_id = o != NULL ? o->build_id : "";
    }
    fclose(f);
    *out = maps;
    *count = n;
    return 0;
}
