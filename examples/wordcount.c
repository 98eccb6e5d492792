/* SPDX-License-Identifier: MIT */
/*
 * wordcount.c — counts the words of a text and prints the ten most frequent.
 *
 *   wordcount [FILE]      (reads stdin without FILE; --help says so)
 *
 * Shows how to keep strings in a map that owns them. The key stored in the map is a `char *` (key_size =
 * sizeof(char *)); hmap_hash_cstr / hmap_equal_cstr hash and compare the strings it points to, and
 * key_drop frees the string when the key leaves the map — on delete, on hmap_free, and when hmap_assign
 * finds the word already present: then the map keeps its own copy and drops the one we passed. So every
 * word is strdup'ed before hmap_assign and never freed by us, except when hmap_assign fails (then we
 * still own it).
 *
 * A word is a run of ASCII letters, digits and apostrophes, lowercased. Output: the ten most frequent
 * words (ties by alphabetical order), then a total line "words: N distinct: M".
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <hmap.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP 10

static void drop_word(void *key) { free(*(char **)key); }

static const hmap_type word_counts = {
    .key_size = sizeof(char *),
    .val_size = sizeof(uint64_t),
    .hash = hmap_hash_cstr,
    .equal = hmap_equal_cstr,
    .key_drop = drop_word,
};

/* A growable buffer holding the word being read. */
typedef struct {
    char *text;
    size_t len, cap;
} word_buf;

static int word_buf_push(word_buf *w, char c) {
    if (w->len + 1 >= w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        char *text = realloc(w->text, cap);
        if (text == NULL)
            return -ENOMEM;
        w->text = text;
        w->cap = cap;
    }
    w->text[w->len++] = c;
    w->text[w->len] = '\0';
    return 0;
}

static int is_word_char(int c) { return isalnum(c) || c == '\''; }

/* Adds one to the word's count. The map takes the strdup'ed copy (or drops it if the word is known). */
static int count_word(hmap *counts, const char *word) {
    char *key = strdup(word);
    if (key == NULL)
        return -ENOMEM;
    uint64_t *count = hmap_assign(counts, &key, NULL);
    if (count == NULL) {
        free(key); /* on failure the key is still ours */
        return -ENOMEM;
    }
    ++*count;
    return 0;
}

/* Reads every word of `in` into `counts`; returns the number of words, or -errno. */
static long long count_words(FILE *in, hmap *counts) {
    word_buf w = {0};
    long long words = 0;
    int c, err = 0;
    do {
        c = getc(in);
        if (c != EOF && is_word_char(c)) {
            err = word_buf_push(&w, (char)tolower(c));
        } else if (w.len > 0) {
            err = count_word(counts, w.text);
            words++;
            w.len = 0;
        }
    } while (c != EOF && err == 0);
    free(w.text);
    if (err == 0 && ferror(in))
        err = -EIO;
    return err ? err : words;
}

typedef struct {
    const char *word; /* owned by the map */
    uint64_t count;
} word_count;

static int by_count_then_word(const void *a, const void *b) {
    const word_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->word, y->word);
}

/* Prints the TOP most frequent words. The map is not written meanwhile, so the string pointers found
 * by iteration stay valid. */
static int print_top(hmap *counts) {
    size_t n = hmap_len(counts), i = 0;
    word_count *all = malloc((n ? n : 1) * sizeof *all);
    if (all == NULL)
        return -ENOMEM;
    hmap_iter it;
    void *key, *val;
    for (hmap_iter_init(&it, counts); hmap_iter_next(&it, &key, &val) && i < n; i++) {
        all[i].word = *(char **)key;
        all[i].count = *(uint64_t *)val;
    }
    hmap_iter_done(&it);
    qsort(all, i, sizeof *all, by_count_then_word);
    for (size_t j = 0; j < i && j < TOP; j++)
        printf("%8" PRIu64 " %s\n", all[j].count, all[j].word);
    free(all);
    return 0;
}

static const char USAGE[] = "usage: wordcount [FILE]\n"
                            "Counts the words of FILE (default: standard input) and prints the ten most\n"
                            "frequent, then the number of words and of distinct words.\n";

int main(int argc, char **argv) {
    FILE *in = stdin;
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (argc == 2 && argv[1][0] == '-') {
        fprintf(stderr, "wordcount: unknown option '%s'\n%s", argv[1], USAGE);
        return 2;
    }
    if (argc > 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (argc == 2 && (in = fopen(argv[1], "r")) == NULL) {
        perror(argv[1]);
        return 1;
    }
    hmap *counts = hmap_new(&word_counts, 0);
    if (counts == NULL) {
        perror("hmap_new");
        return 1;
    }
    long long words = count_words(in, counts);
    if (in != stdin)
        fclose(in);
    int rc = words < 0 ? (int)words : print_top(counts);
    if (rc == 0)
        printf("words: %lld distinct: %zu\n", words, hmap_len(counts));
    else
        fprintf(stderr, "wordcount: %s\n", strerror(-rc));
    hmap_free(counts); /* frees every string through drop_word */
    return rc == 0 ? 0 : 1;
}
