/*
 * libFuzzer target: response header parsing (os_http_xfer_header_line, the
 * body of curl's header callback in os_http.c) fed line by line as curl
 * would, without a connection. Checks that every stored header iterates
 * back, with a non-empty lower-case name without trailing blanks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../os_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  os_http_xfer x;
  os_http_xfer_init(&x);
  /* The first byte picks the sink and the method, as the binding would. */
  if (size > 0) {
    x.sink_kind = (data[0] & 1) ? OS_HTTP_SINK_BUFFER : OS_HTTP_SINK_WRITER;
    x.method_kind = (data[0] & 2) ? OS_HTTP_M_HEAD : OS_HTTP_M_GET;
    data++, size--;
  }
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
    /* curl hands over a copy that is not NUL-terminated */
    char *line = malloc(n ? n : 1);
    if (line == NULL) break;
    memcpy(line, p, n);
    int ok = os_http_xfer_header_line(&x, line, n);
    free(line);
    if (!ok) break;
    p += n;
  }
  size_t cursor = 0;
  const char *name, *value;
  while (os_http_xfer_next_header(&x, &cursor, &name, &value)) {
    if (cursor > x.hdrs.len) abort();
    size_t nl = strlen(name);
    if (nl == 0) abort(); /* a line starting with a blank or ':' is no header */
    for (size_t i = 0; i < nl; i++) {
      if (name[i] >= 'A' && name[i] <= 'Z') abort();
    }
    if (nl > 0 && (name[nl - 1] == ' ' || name[nl - 1] == '\t')) abort();
    if (value + strlen(value) + 1 != x.hdrs.data + cursor) abort();
  }
  os_http_xfer_cleanup(&x);
  return 0;
}
