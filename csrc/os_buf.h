/*
 * A growable byte buffer for the pure-C core. Buffers live inside objects
 * whose __gc frees them, so a raising Lua call in a binding never leaks one.
 * Appends never fail silently: they set buf->oom and later checks see it.
 */
#ifndef OBJSTORE_OS_BUF_H
#define OBJSTORE_OS_BUF_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct os_buf {
  char *data;
  size_t len;
  size_t cap;
  int oom; /* set once an allocation failed; all later appends are no-ops */
} os_buf;

void os_buf_reset(os_buf *b);
void os_buf_free(os_buf *b);
/* Slow path of os_buf_reserve: grows the allocation. */
int os_buf_grow(os_buf *b, size_t extra);

/* Inline because signing appends byte by byte on its hot path. */
static inline int os_buf_reserve(os_buf *b, size_t extra) {
  /* +1 keeps room for the terminator os_buf_cstr writes. */
  if (!b->oom && b->len + extra + 1 <= b->cap) return 1;
  return os_buf_grow(b, extra);
}

static inline void os_buf_addc(os_buf *b, char c) {
  if (os_buf_reserve(b, 1)) b->data[b->len++] = c;
}

static inline void os_buf_add(os_buf *b, const void *p, size_t n) {
  if (n == 0 || !os_buf_reserve(b, n)) return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
}
static inline void os_buf_adds(os_buf *b, const char *s) {
  os_buf_add(b, s, strlen(s));
}
/* Reads from f until the buffer holds `want` bytes or f ends, growing the
 * allocation to `want` at most once (a reused buffer keeps its size). Sets
 * *eof when f ended. Returns 0, or -1 on a read error or allocation failure
 * (errno-style message in err). */
int os_buf_fill_file(os_buf *b, FILE *f, size_t want, int *eof, char *err, size_t errlen);

/* Returns a NUL-terminated view of the contents (the NUL is not counted). */
const char *os_buf_cstr(os_buf *b);

#endif
