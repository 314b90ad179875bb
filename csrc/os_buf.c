#include "os_buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void os_buf_reset(os_buf *b) {
  b->len = 0;
  b->oom = 0;
}

void os_buf_free(os_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}

int os_buf_grow(os_buf *b, size_t extra) {
  if (b->oom) return 0;
  if (b->len + extra + 1 <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) {
    if (cap > ((size_t)-1) / 2) {
      b->oom = 1;
      return 0;
    }
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) {
    b->oom = 1;
    return 0;
  }
  b->data = p;
  b->cap = cap;
  return 1;
}

const char *os_buf_cstr(os_buf *b) {
  if (!os_buf_reserve(b, 0)) return "";
  b->data[b->len] = '\0';
  return b->data;
}

int os_buf_fill_file(os_buf *b, FILE *f, size_t want, int *eof, char *err, size_t errlen) {
  *eof = 0;
  if (b->len >= want) return 0;
  /* Exactly the room asked for: os_buf_grow would round up to a power of 2. */
  if (b->cap < want + 1) {
    char *p = realloc(b->data, want + 1);
    if (p == NULL) {
      snprintf(err, errlen, "out of memory for a %zu-byte buffer", want);
      return -1;
    }
    b->data = p;
    b->cap = want + 1;
  }
  while (b->len < want) {
    size_t n = fread(b->data + b->len, 1, want - b->len, f);
    b->len += n;
    if (n == 0) {
      if (ferror(f)) {
        snprintf(err, errlen, "read failed: %s", strerror(errno));
        clearerr(f);
        return -1;
      }
      *eof = 1;
      break;
    }
  }
  return 0;
}
