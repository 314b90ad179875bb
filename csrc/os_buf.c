#include "os_buf.h"

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
