/*
 * HTTP transport on libcurl; see os_http.h. No Lua here: the reader and
 * writer callbacks the binding installs are plain function pointers.
 */
#define _GNU_SOURCE /* O_CLOEXEC, posix_fadvise on older glibc */
#include "os_http.h"
#include "os_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* curl's receive buffer. Bigger than the 16 KiB default so that a writer
 * callback into Lua runs once per 256 KiB instead of once per 16 KiB, and a
 * file sink makes fewer pwrite calls: a 1 GiB GET to a file on loopback took
 * about 1.4 s and 1.1 s of CPU with it, 2.4 s and 2.0 s with 16 KiB. */
#define HTTP_RECV_BUFFER (256 * 1024)
/* curl's send buffer (64 KiB default): fewer read callbacks and preads. */
#define HTTP_SEND_BUFFER (256 * 1024)
/* Largest Content-Length for which a collected body is allocated up front. */
#define HTTP_PRESIZE_MAX ((int64_t)256 * 1024 * 1024)
/* A reader that keeps returning empty strings is broken, not slow. */
#define HTTP_MAX_EMPTY_CHUNKS 10000

static const struct {
  const char *name;
  int retryable;
} error_info[] = {
#define OS_HTTP_INFO_(e, name, retry) {name, retry},
    OS_HTTP_ERRORS(OS_HTTP_INFO_)
#undef OS_HTTP_INFO_
};

const char *os_http_error_name(os_http_error e) {
  if ((unsigned)e >= OS_HTTP_ERROR_COUNT) return "TransportError";
  return error_info[e].name;
}

int os_http_error_retryable(os_http_error e) {
  if ((unsigned)e >= OS_HTTP_ERROR_COUNT) return 0;
  return error_info[e].retryable;
}

/* ---- process-wide init ---------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void) {
  /* Not thread-safe in older libcurl and not cheap: once per process. */
  global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int os_http_global_init(char *err, size_t errlen) {
  pthread_once(&global_once, global_init_once);
  if (global_rc != CURLE_OK) {
    snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(global_rc));
    return -1;
  }
  return 0;
}

/* ---- session -------------------------------------------------------------- */

static int copy_opt(char **dst, const char *src) {
  if (src == NULL) return 0;
  *dst = strdup(src);
  return *dst == NULL ? -1 : 0;
}

int os_http_session_init(os_http_session *s, const os_http_config *cfg, char *err, size_t errlen) {
  if (os_http_global_init(err, errlen) != 0) return -1;
  s->connect_timeout_ms = cfg->connect_timeout_ms;
  s->timeout_ms = cfg->timeout_ms;
  s->low_speed_limit = cfg->low_speed_limit;
  s->low_speed_time = cfg->low_speed_time;
  s->max_connections = cfg->max_connections > 0 ? cfg->max_connections : 16;
  s->tls_min_version = cfg->tls_min_version;
  s->insecure = cfg->insecure;
  s->verbose = cfg->verbose;
  if (copy_opt(&s->ca_file, cfg->ca_file) || copy_opt(&s->ca_path, cfg->ca_path) ||
      copy_opt(&s->proxy, cfg->proxy) || copy_opt(&s->user_agent, cfg->user_agent)) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }

  /* The share handle carries DNS answers, TLS session tickets and the
   * connection cache across transfers, so a keep-alive connection opened by
   * one request is picked up by the next. Everything runs on the thread
   * that called perform, so no lock callbacks are needed. */
  s->share = curl_share_init();
  if (s->share == NULL) {
    snprintf(err, errlen, "curl_share_init failed");
    return -1;
  }
  CURLSHcode sc = curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  if (sc == CURLSHE_OK)
    sc = curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  if (sc == CURLSHE_OK) sc = curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  if (sc != CURLSHE_OK) {
    snprintf(err, errlen, "curl_share_setopt: %s", curl_share_strerror(sc));
    return -1;
  }

  s->multi = curl_multi_init();
  if (s->multi == NULL) {
    snprintf(err, errlen, "curl_multi_init failed");
    return -1;
  }
  /* Per-host cap: transfers beyond it wait inside curl for a free connection
   * instead of opening more. The cache keeps a few idle connections for more
   * hosts than one (a client may talk to a bucket endpoint and a region one). */
  CURLMcode mc = curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, s->max_connections);
  if (mc == CURLM_OK)
    mc = curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, s->max_connections * 4);
  if (mc != CURLM_OK) {
    snprintf(err, errlen, "curl_multi_setopt: %s", curl_multi_strerror(mc));
    return -1;
  }
  return 0;
}

void os_http_session_cleanup(os_http_session *s) {
  /* The multi handle goes first: it has no easy handles left (perform
   * removes them all), and the share refuses to die while referenced. */
  if (s->multi != NULL) curl_multi_cleanup(s->multi);
  s->multi = NULL;
  if (s->share != NULL) curl_share_cleanup(s->share);
  s->share = NULL;
  free(s->ca_file);
  free(s->ca_path);
  free(s->proxy);
  free(s->user_agent);
  s->ca_file = s->ca_path = s->proxy = s->user_agent = NULL;
}

/* ---- transfer setup --------------------------------------------------------- */

void os_http_xfer_init(os_http_xfer *x) {
  memset(x, 0, sizeof *x);
  x->body_fd = -1;
  x->sink_fd = -1;
  x->timeout_ms = -1;
  x->body_length = -1;
  x->method = "GET";
}

static void digest_free(os_http_digest *d) {
  if (!d->is_crc) os_hash_free(&d->h);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

void os_http_xfer_cleanup(os_http_xfer *x) {
  /* An easy handle only exists between start and finish inside perform, so
   * it is never attached to a multi handle here. */
  if (x->easy != NULL) curl_easy_cleanup(x->easy);
  if (x->headers != NULL) curl_slist_free_all(x->headers);
  for (int i = 0; i < x->ndigests; i++) digest_free(&x->digests[i]);
  for (int i = 0; i < x->nbody_digests; i++) digest_free(&x->body_digests[i]);
  os_buf_free(&x->hdrs);
  os_buf_free(&x->body);
  close_fd(&x->body_fd);
  close_fd(&x->sink_fd);
  os_http_xfer_init(x);
}

void os_http_xfer_fail(os_http_xfer *x, os_http_error e, int retryable, const char *fmt, ...) {
  if (x->err != OS_HTTP_OK) return;
  x->err = e;
  x->retryable = retryable < 0 ? error_info[e].retryable : retryable;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->message, sizeof x->message, fmt, ap);
  va_end(ap);
}

void os_http_xfer_set_method(os_http_xfer *x, const char *method) {
  x->method = method;
  if (strcmp(method, "GET") == 0) {
    x->method_kind = OS_HTTP_M_GET;
  } else if (strcmp(method, "HEAD") == 0) {
    x->method_kind = OS_HTTP_M_HEAD;
  } else if (strcmp(method, "PUT") == 0) {
    x->method_kind = OS_HTTP_M_PUT;
  } else if (strcmp(method, "POST") == 0) {
    x->method_kind = OS_HTTP_M_POST;
  } else {
    x->method_kind = OS_HTTP_M_OTHER;
  }
}

static int name_is(const char *name, size_t nlen, const char *want) {
  return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

int os_http_xfer_add_header(os_http_xfer *x, const char *name, size_t nlen, const char *value,
                            size_t vlen) {
  /* curl's own syntax: "Name:" would delete the header, "Name;" sends it
   * empty; a value is sent as given. */
  char *line = malloc(nlen + vlen + 3);
  if (line == NULL) return -1;
  memcpy(line, name, nlen);
  if (vlen == 0) {
    line[nlen] = ';';
    line[nlen + 1] = '\0';
  } else {
    line[nlen] = ':';
    line[nlen + 1] = ' ';
    memcpy(line + nlen + 2, value, vlen);
    line[nlen + 2 + vlen] = '\0';
  }
  struct curl_slist *l = curl_slist_append(x->headers, line);
  free(line);
  if (l == NULL) return -1;
  x->headers = l;
  if (name_is(name, nlen, "content-type")) x->has_content_type = 1;
  if (name_is(name, nlen, "expect")) x->has_expect = 1;
  return 0;
}

static int digest_start(os_http_digest *d) {
  if (d->is_crc) {
    d->crc = os_crc_start(d->kind);
    return 0;
  }
  return os_hash_init(&d->h, d->alg);
}

int os_http_xfer_add_digest(os_http_xfer *x, int request_body, const char *name) {
  os_http_digest *set = request_body ? x->body_digests : x->digests;
  int *n = request_body ? &x->nbody_digests : &x->ndigests;
  os_http_digest d;
  memset(&d, 0, sizeof d);
  if (os_hash_alg_from_name(name, &d.alg) == 0) {
    d.name = os_hash_alg_name(d.alg);
  } else if (os_crc_kind_from_name(name, &d.kind) == 0) {
    d.is_crc = 1;
    d.name = os_crc_params_of(d.kind)->name;
  } else {
    return -1;
  }
  for (int i = 0; i < *n; i++) {
    if (strcmp(set[i].name, d.name) == 0) return 0;
  }
  if (*n >= OS_HTTP_MAX_DIGESTS) return -2;
  set[*n] = d;
  if (digest_start(&set[*n]) != 0) return -3;
  (*n)++;
  return 0;
}

void os_http_xfer_set_body_mem(os_http_xfer *x, const char *data, size_t len) {
  x->body_kind = OS_HTTP_BODY_MEM;
  x->body_mem = data;
  x->body_length = (int64_t)len;
}

int os_http_xfer_set_body_file(os_http_xfer *x, const char *path, int64_t offset, int64_t length) {
  x->body_kind = OS_HTTP_BODY_FILE;
  x->body_length = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    os_http_xfer_fail(x, OS_HTTP_E_FILE, -1, "cannot open body file %s: %s", path, strerror(errno));
    return -1;
  }
  x->body_fd = fd;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    os_http_xfer_fail(x, OS_HTTP_E_FILE, -1, "cannot stat body file %s: %s", path, strerror(errno));
    return -1;
  }
  int64_t size = (int64_t)st.st_size;
  if (offset > size || (length >= 0 && length > size - offset)) {
    os_http_xfer_fail(x, OS_HTTP_E_FILE, -1,
                      "body file %s has %lld bytes, fewer than offset %lld + length %lld", path,
                      (long long)size, (long long)offset, (long long)(length < 0 ? 0 : length));
    return -1;
  }
  x->body_offset = offset;
  x->body_length = length >= 0 ? length : size - offset;
  /* Read-ahead matters at 1 GiB; failure is harmless. */
  (void)posix_fadvise(fd, (off_t)offset, (off_t)x->body_length, POSIX_FADV_SEQUENTIAL);
  return 0;
}

void os_http_xfer_set_body_reader(os_http_xfer *x, os_http_read_fn fn, void *ud, int64_t length) {
  x->body_kind = OS_HTTP_BODY_READER;
  x->reader = fn;
  x->reader_ud = ud;
  x->body_length = length < 0 ? -1 : length;
}

void os_http_xfer_set_sink_file(os_http_xfer *x, const char *path, int64_t offset) {
  x->sink_kind = OS_HTTP_SINK_FILE;
  x->sink_path = path;
  x->sink_offset = offset;
}

void os_http_xfer_set_head_callback(os_http_xfer *x, os_http_head_fn fn, void *ud) {
  x->on_head = fn;
  x->head_ud = ud;
}

void os_http_xfer_set_progress_callback(os_http_xfer *x, os_http_progress_fn fn, void *ud) {
  x->on_progress = fn;
  x->progress_ud = ud;
}

void os_http_xfer_set_sink_writer(os_http_xfer *x, os_http_write_fn fn, void *ud) {
  x->sink_kind = OS_HTTP_SINK_WRITER;
  x->writer = fn;
  x->writer_ud = ud;
}

int os_http_xfer_next_header(const os_http_xfer *x, size_t *cursor, const char **name,
                             const char **value) {
  size_t i = *cursor;
  if (x->hdrs.data == NULL || i >= x->hdrs.len) return 0;
  *name = x->hdrs.data + i;
  i += strlen(*name) + 1;
  *value = x->hdrs.data + i;
  i += strlen(*value) + 1;
  *cursor = i;
  return 1;
}

/* ---- curl callbacks ----------------------------------------------------- */

static void digests_update(os_http_digest *set, int n, const void *p, size_t len, os_http_xfer *x) {
  for (int i = 0; i < n; i++) {
    os_http_digest *d = &set[i];
    if (d->is_crc) {
      d->crc = os_crc_update(d->kind, d->crc, p, len);
    } else if (os_hash_update(&d->h, p, len) != 0) {
      char buf[200];
      os_hash_error(buf, sizeof buf);
      os_http_xfer_fail(x, OS_HTTP_E_TRANSPORT, 0, "%s: %s", d->name, buf);
    }
  }
}

static int digests_finish(os_http_digest *set, int n, os_http_xfer *x) {
  for (int i = 0; i < n; i++) {
    os_http_digest *d = &set[i];
    if (d->is_crc) {
      d->outlen = os_crc_to_bytes(d->kind, d->crc, d->out);
    } else {
      int rc = os_hash_final(&d->h, d->out, &d->outlen);
      if (rc != 0) {
        char buf[200];
        os_hash_error(buf, sizeof buf);
        os_http_xfer_fail(x, OS_HTTP_E_TRANSPORT, 0, "%s: %s", d->name, buf);
      }
      os_hash_free(&d->h);
      if (rc != 0) return -1;
    }
  }
  return 0;
}

static int sink_open(os_http_xfer *x) {
  /* No O_TRUNC: parallel ranged GETs write disjoint parts of one file. */
  x->sink_fd = open(x->sink_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (x->sink_fd < 0) {
    os_http_xfer_fail(x, OS_HTTP_E_FILE, -1, "cannot open sink file %s: %s", x->sink_path,
                      strerror(errno));
    return -1;
  }
  return 0;
}

static int sink_pwrite(os_http_xfer *x, const char *p, size_t n) {
  if (x->sink_fd < 0 && sink_open(x) != 0) return -1;
  while (n > 0) {
    ssize_t w = pwrite(x->sink_fd, p, n, (off_t)(x->sink_offset + x->sink_pos));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      os_http_xfer_fail(x, OS_HTTP_E_FILE, -1, "cannot write sink file %s at offset %lld: %s",
                        x->sink_path, (long long)(x->sink_offset + x->sink_pos),
                        w < 0 ? strerror(errno) : "no progress");
      return -1;
    }
    p += w;
    n -= (size_t)w;
    x->sink_pos += w;
  }
  return 0;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* max_speed on the response: curl's own receive limit lets whatever sits
 * in the socket buffers through at once (a small body is never paced), so
 * a piece that would put the body ahead of the rate is held back with
 * CURL_WRITEFUNC_PAUSE and taken when os_http_run unpauses the transfer. */
static int hold_back(os_http_xfer *x, size_t n) {
  if (x->max_speed <= 0 || x->status >= 300) return 0;
  int64_t due = x->paced_from_ms + (x->bytes + (int64_t)n) * 1000 / x->max_speed;
  if (due <= now_ms()) return 0;
  x->paused = 1;
  x->resume_at_ms = due;
  return 1;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud) {
  os_http_xfer *x = ud;
  size_t n = size * nmemb;
  if (n == 0) return 0;
  if (x->err == OS_HTTP_OK && hold_back(x, n)) return CURL_WRITEFUNC_PAUSE;
  digests_update(x->digests, x->ndigests, p, n, x);
  x->bytes += (int64_t)n;
  if (x->err != OS_HTTP_OK) return 0;
  if (x->status >= 300) {
    /* An error document must not land in the caller's file at the object's
     * offset nor be fed to a writer expecting object bytes: keep it (capped,
     * for a collected body too: a server may send an endless one) for the
     * caller to parse. */
    if (x->body.len < OS_HTTP_ERROR_BODY_MAX) {
      size_t room = OS_HTTP_ERROR_BODY_MAX - x->body.len;
      os_buf_add(&x->body, p, n < room ? n : room);
    }
  } else if (x->sink_kind == OS_HTTP_SINK_BUFFER) {
    if (x->max_body > 0 && (int64_t)x->body.len + (int64_t)n > x->max_body) {
      /* Checked before keeping the bytes: an endless body costs at most
       * max_body of memory. */
      os_http_xfer_fail(x, OS_HTTP_E_TOO_LARGE, -1,
                        "response body over the limit of %lld bytes for this request",
                        (long long)x->max_body);
      return 0;
    }
    os_buf_add(&x->body, p, n);
  } else if (x->sink_kind == OS_HTTP_SINK_FILE) {
    if (sink_pwrite(x, p, n) != 0) return 0;
  } else if (x->writer(x->writer_ud, x, p, n) != 0) {
    if (x->err == OS_HTTP_OK) os_http_xfer_fail(x, OS_HTTP_E_ABORTED, -1, "aborted by the sink");
    return 0;
  }
  if (x->body.oom) {
    os_http_xfer_fail(x, OS_HTTP_E_NOMEM, -1, "out of memory collecting the response body");
    return 0;
  }
  return n;
}

static size_t read_file(os_http_xfer *x, char *buf, size_t want) {
  for (;;) {
    ssize_t r = pread(x->body_fd, buf, want, (off_t)(x->body_offset + x->body_pos));
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) return (size_t)r;
    os_http_xfer_fail(x, OS_HTTP_E_FILE, -1, "cannot read body file at offset %lld: %s",
                      (long long)(x->body_offset + x->body_pos),
                      r < 0 ? strerror(errno) : "the file became shorter");
    return CURL_READFUNC_ABORT;
  }
}

static size_t read_reader(os_http_xfer *x, char *buf, size_t want) {
  int empties = 0;
  while (x->chunk_len == 0) {
    if (x->reader_eof) return 0;
    const char *p = NULL;
    size_t len = 0;
    if (x->reader(x->reader_ud, x, &p, &len) != 0) {
      if (x->err == OS_HTTP_OK)
        os_http_xfer_fail(x, OS_HTTP_E_ABORTED, -1, "aborted by the reader");
      return CURL_READFUNC_ABORT;
    }
    if (p == NULL) {
      x->reader_eof = 1;
      if (x->body_length >= 0 && x->body_pos != x->body_length) {
        os_http_xfer_fail(x, OS_HTTP_E_LENGTH, -1,
                          "the reader ended after %lld bytes, body_length is %lld",
                          (long long)x->body_pos, (long long)x->body_length);
        return CURL_READFUNC_ABORT;
      }
      return 0;
    }
    if (len == 0 && ++empties > HTTP_MAX_EMPTY_CHUNKS) {
      os_http_xfer_fail(x, OS_HTTP_E_ABORTED, -1, "the reader returned only empty strings");
      return CURL_READFUNC_ABORT;
    }
    x->chunk = p;
    x->chunk_len = len;
  }
  size_t n = x->chunk_len < want ? x->chunk_len : want;
  if (x->body_length >= 0 && (int64_t)n > x->body_length - x->body_pos) {
    /* Sending more than Content-Length would desynchronise the connection. */
    os_http_xfer_fail(x, OS_HTTP_E_LENGTH, -1,
                      "the reader returned more than body_length (%lld) bytes",
                      (long long)x->body_length);
    return CURL_READFUNC_ABORT;
  }
  memcpy(buf, x->chunk, n);
  x->chunk += n;
  x->chunk_len -= n;
  return n;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud) {
  os_http_xfer *x = ud;
  size_t want = size * nmemb;
  size_t n = 0;
  if (x->err != OS_HTTP_OK) return CURL_READFUNC_ABORT;
  if (x->body_kind == OS_HTTP_BODY_READER) {
    n = read_reader(x, buf, want);
  } else if (x->body_kind != OS_HTTP_BODY_NONE) {
    int64_t left = x->body_length - x->body_pos;
    if ((int64_t)want > left) want = (size_t)left;
    if (want == 0) return 0;
    if (x->body_kind == OS_HTTP_BODY_MEM) {
      memcpy(buf, x->body_mem + x->body_pos, want);
      n = want;
    } else {
      n = read_file(x, buf, want);
    }
  }
  if (n == CURL_READFUNC_ABORT || n == 0) return n;
  digests_update(x->body_digests, x->nbody_digests, buf, n, x);
  x->body_pos += (int64_t)n;
  return n;
}

/* curl rewinds the body when it resends a request on a fresh connection
 * (the reused one turned out dead). Memory and file bodies restart, with
 * their hashes; a reader cannot go back. */
static int on_seek(void *ud, curl_off_t offset, int origin) {
  os_http_xfer *x = ud;
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  if (offset == x->body_pos && offset == 0) return CURL_SEEKFUNC_OK;
  if (x->body_kind == OS_HTTP_BODY_READER || offset > x->body_length) return CURL_SEEKFUNC_CANTSEEK;
  if (offset != 0 && x->nbody_digests > 0) return CURL_SEEKFUNC_CANTSEEK;
  for (int i = 0; i < x->nbody_digests; i++) {
    if (digest_start(&x->body_digests[i]) != 0) return CURL_SEEKFUNC_FAIL;
  }
  x->body_pos = offset;
  return CURL_SEEKFUNC_OK;
}

static int has_body(const os_http_xfer *x) {
  return x->body_kind != OS_HTTP_BODY_NONE && x->body_length != 0;
}

/* A Content-Length value: 1 to 16 digits, at most 2^53 (what a Lua
 * number holds exactly; no object is larger). */
static int valid_length(const char *v, const char *end) {
  if (v == end || end - v > 16) return 0;
  int64_t n = 0;
  for (const char *q = v; q < end; q++) {
    if (*q < '0' || *q > '9') return 0;
    n = n * 10 + (*q - '0');
  }
  return n <= ((int64_t)1 << 53);
}

int os_http_xfer_header_line(os_http_xfer *x, const char *p, size_t n) {
  size_t len = n;
  while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n')) len--;
  /* x->hdrs stores "name\0value\0": a NUL inside a line would shift every
   * later pair (found by csrc/fuzz/fuzz_http_headers.c). No valid response
   * has one (curl 7.88 refuses them itself; this must not rely on that). */
  if (memchr(p, '\0', len) != NULL) {
    os_http_xfer_fail(x, OS_HTTP_E_PROTOCOL, 0, "response header line holds a NUL byte");
    return 0;
  }

  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    /* A status line starts a new header block (after 100 Continue). */
    const char *sp = memchr(p, ' ', len);
    long code = 0;
    /* Stops past three digits: a longer run is no status code and would overflow. */
    for (const char *q = sp ? sp + 1 : p + len;
         q < p + len && *q >= '0' && *q <= '9' && code < 1000; q++) {
      code = code * 10 + (*q - '0');
    }
    x->status = code;
    os_buf_reset(&x->hdrs);
    /* A server may answer an error before reading the request body (radosgw
     * does, then hangs the keep-alive connection); unread body bytes would
     * also be taken as the next request. Never reuse such a connection.
     * reuse_forbid is only read when the transfer ends, so setting it from
     * here applies to this very transfer. */
    if (code >= 300 && has_body(x) && x->easy != NULL)
      curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
    return 1;
  }
  if (len == 0) {
    /* The end of a head: the final one (not 1xx) goes to the head callback,
     * once (a blank line after trailers is not a head). */
    if (x->status >= 200 && !x->head_done && x->on_head != NULL) {
      x->head_done = 1;
      if (x->on_head(x->head_ud, x) != 0) {
        if (x->err == OS_HTTP_OK) os_http_xfer_fail(x, OS_HTTP_E_ABORTED, -1, "aborted by on_head");
        return 0;
      }
    }
    return 1;
  }

  if (p[0] == ' ' || p[0] == '\t') {
    /* Obsolete line folding: continue the previous value. */
    if (x->hdrs.len == 0) return 1;
    while (len > 0 && (*p == ' ' || *p == '\t')) p++, len--;
    x->hdrs.len--; /* drop the previous value's NUL */
    os_buf_addc(&x->hdrs, ' ');
    os_buf_add(&x->hdrs, p, len);
    os_buf_addc(&x->hdrs, '\0');
  } else {
    const char *colon = memchr(p, ':', len);
    if (colon == NULL || colon == p) return 1; /* not a header; ignore */
    size_t nlen = (size_t)(colon - p);
    while (nlen > 0 && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t')) nlen--;
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (name_is(p, nlen, "content-length") && !valid_length(v, end)) {
      /* curl 7.88 ignores a Content-Length that overflows and reads to the
       * close: the body's end would then be whatever the server says. */
      os_http_xfer_fail(x, OS_HTTP_E_PROTOCOL, 0, "invalid Content-Length in the response: '%.*s'",
                        (int)((end - v) > 40 ? 40 : (end - v)), v);
      return 0;
    }
    if (!os_buf_reserve(&x->hdrs, nlen + (size_t)(end - v) + 2)) goto nomem;
    for (size_t i = 0; i < nlen; i++) {
      char c = p[i];
      x->hdrs.data[x->hdrs.len++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    x->hdrs.data[x->hdrs.len++] = '\0';
    os_buf_add(&x->hdrs, v, (size_t)(end - v));
    os_buf_addc(&x->hdrs, '\0');
    if (x->sink_kind == OS_HTTP_SINK_BUFFER && x->method_kind != OS_HTTP_M_HEAD &&
        name_is(p, nlen, "content-length")) {
      /* Growing by doubling would peak at twice the body; size it once.
       * Capped, so a lying header cannot make us allocate gigabytes. */
      int64_t cl = 0;
      for (const char *q = v; q < end && *q >= '0' && *q <= '9' && cl <= HTTP_PRESIZE_MAX; q++) {
        cl = cl * 10 + (*q - '0');
      }
      if (cl > 0 && cl <= HTTP_PRESIZE_MAX) (void)os_buf_reserve(&x->body, (size_t)cl);
    }
  }
  if (x->hdrs.oom) goto nomem;
  if (x->hdrs.len > OS_HTTP_HEADERS_MAX) {
    os_http_xfer_fail(x, OS_HTTP_E_PROTOCOL, 0, "response headers exceed %d bytes",
                      OS_HTTP_HEADERS_MAX);
    return 0;
  }
  return 1;
nomem:
  os_http_xfer_fail(x, OS_HTTP_E_NOMEM, -1, "out of memory reading response headers");
  return 0;
}

/* curl's progress meter: only records the upload count for os_http_run's
 * loop (the callback to the caller runs there, outside curl's frames); a
 * transfer that failed meanwhile (its progress callback asked to stop) is
 * aborted. */
static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  os_http_xfer *x = ud;
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  x->up_now = (int64_t)ulnow;
  return x->err != OS_HTTP_OK;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  size_t n = size * nmemb;
  return os_http_xfer_header_line(ud, p, n) ? n : 0;
}

/* ---- start and finish ------------------------------------------------------ */

static int xfer_start(os_http_session *s, os_http_xfer *x) {
  x->started = 1;
  if (!x->has_expect) {
    /* curl adds "Expect: 100-continue" by itself to large uploads; it costs a
     * round trip (or a one-second wait on servers that ignore it). */
    struct curl_slist *l =
        curl_slist_append(x->headers, x->expect_100 ? "Expect: 100-continue" : "Expect:");
    if (l == NULL) goto nomem;
    x->headers = l;
    x->has_expect = 1;
  }
  if (x->method_kind == OS_HTTP_M_POST && !x->has_content_type) {
    /* Otherwise curl labels the body application/x-www-form-urlencoded,
     * which signed S3/OSS POSTs do not expect. */
    struct curl_slist *l = curl_slist_append(x->headers, "Content-Type:");
    if (l == NULL) goto nomem;
    x->headers = l;
    x->has_content_type = 1;
  }

  CURL *e = curl_easy_init();
  if (e == NULL) goto nomem;
  x->easy = e;
  CURLcode c = CURLE_OK;
#define SET(opt, val)                                     \
  do {                                                    \
    if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val); \
  } while (0)
  SET(CURLOPT_PRIVATE, (void *)x);
  SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for DNS timeouts: we may not own signals */
  SET(CURLOPT_SHARE, s->share);
  SET(CURLOPT_ERRORBUFFER, x->curl_errbuf);
  SET(CURLOPT_URL, x->url);
  /* Object stores speak HTTP/1.1; one connection per transfer keeps the
   * per-host cap and the error-after-upload rule simple. */
  SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  /* Keys like "a/../b" must reach the server as signed, not normalised. */
  SET(CURLOPT_PATH_AS_IS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  /* curl paces by waiting after a read or write: with large buffers a
   * whole small body would move before the first wait, so a paced transfer
   * uses 16 KiB ones. */
  SET(CURLOPT_BUFFERSIZE, x->max_speed > 0 ? 16384L : (long)HTTP_RECV_BUFFER);
  SET(CURLOPT_UPLOAD_BUFFERSIZE, x->max_speed > 0 ? 16384L : (long)HTTP_SEND_BUFFER);
  if (s->connect_timeout_ms > 0) SET(CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
  SET(CURLOPT_TIMEOUT_MS, x->timeout_ms >= 0 ? x->timeout_ms : s->timeout_ms);
  if (x->max_speed > 0) {
    /* The response is paced by on_write (hold_back). */
    SET(CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)x->max_speed);
    x->paced_from_ms = now_ms();
  }
  SET(CURLOPT_LOW_SPEED_LIMIT, s->low_speed_limit);
  SET(CURLOPT_LOW_SPEED_TIME, s->low_speed_time);
  if (s->user_agent != NULL) SET(CURLOPT_USERAGENT, s->user_agent);
  if (s->ca_file != NULL) SET(CURLOPT_CAINFO, s->ca_file);
  if (s->ca_path != NULL) SET(CURLOPT_CAPATH, s->ca_path);
  if (s->tls_min_version != 0) SET(CURLOPT_SSLVERSION, s->tls_min_version);
  if (s->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (s->proxy != NULL) SET(CURLOPT_PROXY, s->proxy);
  if (s->verbose) SET(CURLOPT_VERBOSE, 1L);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)x);
  SET(CURLOPT_WRITEFUNCTION, on_write);
  SET(CURLOPT_WRITEDATA, (void *)x);
  if (x->on_progress != NULL) {
    SET(CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    SET(CURLOPT_XFERINFODATA, (void *)x);
    SET(CURLOPT_NOPROGRESS, 0L);
  }

  /* The method is chosen in one place, each branch setting only its own
   * options: CURLOPT_POST or CURLOPT_NOBODY set after CURLOPT_UPLOAD would
   * silently turn a PUT into something else. */
  curl_off_t len = x->body_kind == OS_HTTP_BODY_NONE ? 0 : (curl_off_t)x->body_length;
  if (x->method_kind == OS_HTTP_M_HEAD) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (x->method_kind == OS_HTTP_M_POST) {
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, len); /* -1: chunked */
  } else if (x->method_kind == OS_HTTP_M_PUT || x->body_kind != OS_HTTP_BODY_NONE) {
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_INFILESIZE_LARGE, len); /* -1: chunked */
    if (x->method_kind != OS_HTTP_M_PUT) SET(CURLOPT_CUSTOMREQUEST, x->method);
  } else if (x->method_kind == OS_HTTP_M_OTHER) {
    SET(CURLOPT_CUSTOMREQUEST, x->method);
  } else {
    SET(CURLOPT_HTTPGET, 1L);
  }
  if (x->method_kind == OS_HTTP_M_POST || x->method_kind == OS_HTTP_M_PUT ||
      x->body_kind != OS_HTTP_BODY_NONE) {
    SET(CURLOPT_READFUNCTION, on_read);
    SET(CURLOPT_READDATA, (void *)x);
    SET(CURLOPT_SEEKFUNCTION, on_seek);
    SET(CURLOPT_SEEKDATA, (void *)x);
  }
  SET(CURLOPT_HTTPHEADER, x->headers);
#undef SET
  if (c != CURLE_OK) {
    os_http_xfer_fail(x, c == CURLE_OUT_OF_MEMORY ? OS_HTTP_E_NOMEM : OS_HTTP_E_TRANSPORT, 0,
                      "curl_easy_setopt: %s", curl_easy_strerror(c));
    x->curl_code = c;
    goto fail;
  }
  CURLMcode mc = curl_multi_add_handle(s->multi, e);
  if (mc != CURLM_OK) {
    os_http_xfer_fail(x, OS_HTTP_E_TRANSPORT, 0, "curl_multi_add_handle: %s",
                      curl_multi_strerror(mc));
    goto fail;
  }
  return 0;
nomem:
  os_http_xfer_fail(x, OS_HTTP_E_NOMEM, -1, "out of memory setting up the request");
fail:
  if (x->easy != NULL) curl_easy_cleanup(x->easy);
  x->easy = NULL;
  x->done = 1;
  close_fd(&x->body_fd);
  return -1;
}

static int is_reset(long os_errno, const char *msg) {
  return os_errno == ECONNRESET || os_errno == EPIPE || strstr(msg, "reset by peer") != NULL ||
         strstr(msg, "Broken pipe") != NULL;
}

/* OpenSSL's words for "no protocol version in common" (an alert from the
 * peer, or this side refusing what the peer offered). */
static int tls_version_refused(const char *msg) {
  return strstr(msg, "protocol version") != NULL || strstr(msg, "unsupported protocol") != NULL ||
         strstr(msg, "no protocols available") != NULL;
}

static void map_curl_error(os_http_xfer *x, CURLcode rc, long os_errno) {
  const char *msg = x->curl_errbuf[0] ? x->curl_errbuf : curl_easy_strerror(rc);
  os_http_error e;
  int retry = -1;
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      e = OS_HTTP_E_RESOLVE;
      break;
    case CURLE_COULDNT_CONNECT:
      e = OS_HTTP_E_CONNECT;
      break;
    case CURLE_OPERATION_TIMEDOUT:
      e = OS_HTTP_E_TIMEOUT;
      break;
    case CURLE_SSL_CONNECT_ERROR:
      /* A handshake cut short is a network failure; a certificate that does
       * not verify (below) will not verify on a retry either, nor will a
       * server that speaks no TLS version this side accepts. */
      e = OS_HTTP_E_TLS;
      retry = tls_version_refused(msg) ? 0 : 1;
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
      e = OS_HTTP_E_TLS;
      break;
    case CURLE_GOT_NOTHING:
      e = OS_HTTP_E_RESET;
      break;
    case CURLE_SEND_ERROR:
      e = is_reset(os_errno, msg) ? OS_HTTP_E_RESET : OS_HTTP_E_SEND;
      break;
    case CURLE_RECV_ERROR:
      /* curl's chunked decoder refuses a chunk-size line that is too long or
       * not hex: the server broke the framing, the network did not. */
      if (strstr(msg, "hexadecimal") != NULL || strstr(msg, "chunk") != NULL) {
        e = OS_HTTP_E_PROTOCOL;
        break;
      }
      e = is_reset(os_errno, msg) ? OS_HTTP_E_RESET : OS_HTTP_E_RECV;
      break;
    case CURLE_SEND_FAIL_REWIND:
      e = OS_HTTP_E_SEND;
      break;
    case CURLE_PARTIAL_FILE:
      e = OS_HTTP_E_TRUNCATED;
      break;
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
      e = OS_HTTP_E_ABORTED;
      break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      e = OS_HTTP_E_URL;
      break;
    case CURLE_OUT_OF_MEMORY:
      if (x->bytes == 0 && x->err == OS_HTTP_OK) {
        /* Before any body byte this is curl refusing a response header line
         * over its CURL_MAX_HTTP_HEADER (100 KiB): a line that never ends. */
        os_http_xfer_fail(x, OS_HTTP_E_PROTOCOL, -1,
                          "a response header line over curl's limit of 100 KiB (%s)", msg);
        return;
      }
      e = OS_HTTP_E_NOMEM;
      break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
      e = OS_HTTP_E_PROTOCOL;
      break;
    default:
      e = OS_HTTP_E_TRANSPORT;
      break;
  }
  os_http_xfer_fail(x, e, retry, "%s", msg);
}

static int body_expected(const os_http_xfer *x) {
  long st = x->http_status;
  return x->method_kind != OS_HTTP_M_HEAD && st >= 200 && st != 204 && st != 304;
}

static void xfer_finish(os_http_session *s, os_http_xfer *x, CURLcode rc) {
  CURL *e = x->easy;
  long status = 0, connects = 0, os_errno = 0;
  curl_off_t up = 0, total = 0, clen = -1;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &up);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
  curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
  x->http_status = status;
  /* curl's upload size counts the chunked framing of a body of unknown
   * length; the body bytes are what the reader handed over. */
  x->sent = x->body_kind == OS_HTTP_BODY_READER && x->body_length < 0 ? x->body_pos : (int64_t)up;
  x->total_time = (double)total / 1e6;
  x->connects = connects;
  x->curl_code = rc;

  if (rc != CURLE_OK) {
    map_curl_error(x, rc, os_errno);
  } else if (body_expected(x) && clen >= 0 && x->bytes < (int64_t)clen) {
    /* curl normally reports this itself (CURLE_PARTIAL_FILE); this catches
     * any path where it would not. A short body is never a success. */
    os_http_xfer_fail(x, OS_HTTP_E_TRUNCATED, -1, "response body ended after %lld of %lld bytes",
                      (long long)x->bytes, (long long)clen);
  }
  if (x->err == OS_HTTP_OK && x->sink_kind == OS_HTTP_SINK_FILE && x->sink_fd < 0 &&
      x->method_kind != OS_HTTP_M_HEAD && status >= 200 && status < 300) {
    (void)sink_open(x); /* an empty object still makes its file */
  }
  if (x->err == OS_HTTP_OK) {
    if (digests_finish(x->digests, x->ndigests, x) == 0) {
      (void)digests_finish(x->body_digests, x->nbody_digests, x);
    }
  }
  if (x->sink_fd >= 0 && close(x->sink_fd) != 0) {
    /* Delayed write errors (NFS, quota) show up at close. */
    os_http_xfer_fail(x, OS_HTTP_E_FILE, -1, "cannot close sink file %s: %s", x->sink_path,
                      strerror(errno));
  }
  x->sink_fd = -1;
  close_fd(&x->body_fd);
  curl_multi_remove_handle(s->multi, e);
  curl_easy_cleanup(e);
  x->easy = NULL;
  x->done = 1;
}

/* ---- the multi loop --------------------------------------------------------- */

/* The multi handle itself failed: every transfer not yet ended gets that
 * error, and the started ones are detached and freed. */
static void fail_all(os_http_session *s, os_http_xfer **xs, size_t n, CURLMcode mc) {
  for (size_t i = 0; i < n; i++) {
    os_http_xfer *x = xs[i];
    if (x->done) continue;
    os_http_xfer_fail(x, OS_HTTP_E_TRANSPORT, 0, "curl multi handle: %s", curl_multi_strerror(mc));
    if (x->easy != NULL) xfer_finish(s, x, CURLE_OK);
    x->done = 1;
  }
}

/* How often the run loop looks at the signal flag once core.signal.trap
 * has run: a SIGINT/SIGTERM stops the transfers within this. */
#define INTERRUPT_POLL_MS 100

/* A signal (os_signal.h) stops the run: every running transfer fails with
 * Aborted "interrupted", is detached and handed to done; nothing more is
 * pulled. The binding then raises the interrupt in Lua. */
static void interrupt_all(os_http_session *s, os_http_xfer **running, size_t maxc,
                          os_http_done_fn done, void *ud) {
  for (size_t i = 0; i < maxc; i++) {
    os_http_xfer *x = running[i];
    if (x == NULL) continue;
    running[i] = NULL;
    os_http_xfer_fail(x, OS_HTTP_E_ABORTED, -1, "interrupted");
    if (x->easy != NULL) xfer_finish(s, x, CURLE_OK);
    x->done = 1;
    done(ud, x);
  }
}

/* Reports the byte counts of the running transfers that asked for them,
 * at most every OS_HTTP_PROGRESS_MS each and only when a count moved.
 * Returns how long the loop may wait before the next report is due (ms),
 * or -1 when no running transfer wants progress. */
static int report_progress(os_http_xfer **running, size_t maxc) {
  int64_t now = now_ms();
  int wait = -1;
  for (size_t i = 0; i < maxc; i++) {
    os_http_xfer *x = running[i];
    if (x == NULL || x->on_progress == NULL || x->err != OS_HTTP_OK) continue;
    /* curl's count includes a chunked body's framing and may run ahead of
     * the body after a rewind: what was read from the body bounds it. */
    int64_t sent = x->up_now < x->body_pos ? x->up_now : x->body_pos;
    int64_t recv = x->status >= 200 && x->status < 300 ? x->bytes : 0;
    if (sent < 0) sent = 0;
    if (now >= x->progress_at_ms && (sent != x->reported_sent || recv != x->reported_recv)) {
      x->reported_sent = sent;
      x->reported_recv = recv;
      x->progress_at_ms = now + OS_HTTP_PROGRESS_MS;
      if (x->on_progress(x->progress_ud, x, sent, recv) != 0 && x->err == OS_HTTP_OK) {
        os_http_xfer_fail(x, OS_HTTP_E_ABORTED, -1, "aborted by on_progress");
      }
    }
    int left = x->progress_at_ms > now ? (int)(x->progress_at_ms - now) : OS_HTTP_PROGRESS_MS;
    if (wait < 0 || left < wait) wait = left;
  }
  return wait;
}

/* os_http_perform is os_http_run pulling from an array. */
struct array_source {
  os_http_xfer **xs;
  size_t n, next;
};

static os_http_xfer *array_pull(void *ud) {
  struct array_source *a = ud;
  return a->next < a->n ? a->xs[a->next++] : NULL;
}

static void array_done(void *ud, os_http_xfer *x) {
  (void)ud;
  (void)x; /* the caller reads each transfer's result fields afterwards */
}

int os_http_perform(os_http_session *s, os_http_xfer **xs, size_t n, size_t max_concurrent) {
  struct array_source a = {xs, n, 0};
  if (os_http_run(s, array_pull, array_done, &a, max_concurrent) == 0) {
    /* A signal stopped the run before these started. */
    for (size_t i = 0; i < n; i++) {
      if (xs[i]->done || xs[i]->err != OS_HTTP_OK) continue;
      os_http_xfer_fail(xs[i], OS_HTTP_E_ABORTED, -1, "interrupted");
      xs[i]->done = 1;
    }
    return 0;
  }
  /* The multi handle failed: the transfers never started carry that too. */
  fail_all(s, xs, n, CURLM_INTERNAL_ERROR);
  return -1;
}

int os_http_run(os_http_session *s, os_http_pull_fn pull, os_http_done_fn done, void *ud,
                size_t max_concurrent) {
  size_t maxc = max_concurrent ? max_concurrent : (size_t)s->max_connections;
  /* The running transfers, so a failing multi handle can end each of them. */
  os_http_xfer **running = calloc(maxc, sizeof *running);
  if (running == NULL) return -1;
  size_t active = 0;
  int exhausted = 0;
  CURLMcode mc = CURLM_OK;
  s->busy = 1;
  for (;;) {
    if (os_signal_undelivered() != 0) {
      interrupt_all(s, running, maxc, done, ud);
      break;
    }
    while (!exhausted && active < maxc) {
      os_http_xfer *x = pull(ud);
      if (x == NULL) {
        exhausted = 1;
        break;
      }
      if (x->err != OS_HTTP_OK || x->done || xfer_start(s, x) != 0) {
        x->done = 1;
        done(ud, x);
        continue;
      }
      for (size_t i = 0; i < maxc; i++) {
        if (running[i] == NULL) {
          running[i] = x;
          break;
        }
      }
      active++;
    }
    if (active == 0 && exhausted) break;

    int nrunning = 0;
    mc = curl_multi_perform(s->multi, &nrunning);
    if (mc != CURLM_OK) break;
    int finished = 0, queued = 0;
    CURLMsg *m;
    while ((m = curl_multi_info_read(s->multi, &queued)) != NULL) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL *e = m->easy_handle;
      CURLcode result = m->data.result; /* m is invalid once e is removed */
      char *priv = NULL;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
      os_http_xfer *x = (os_http_xfer *)(void *)priv;
      xfer_finish(s, x, result);
      for (size_t i = 0; i < maxc; i++) {
        if (running[i] == x) running[i] = NULL;
      }
      active--;
      finished++;
      done(ud, x);
      exhausted = 0; /* done may have queued more work */
    }
    /* Paced transfers whose time has come go on; the others bound the wait,
     * and so does a trapped signal (noticed within INTERRUPT_POLL_MS). */
    int wait_ms = os_signal_trapped() ? INTERRUPT_POLL_MS : 1000;
    int progress_wait = report_progress(running, maxc);
    if (progress_wait >= 0 && progress_wait < wait_ms) wait_ms = progress_wait;
    int64_t now = now_ms();
    for (size_t i = 0; i < maxc; i++) {
      os_http_xfer *x = running[i];
      if (x == NULL || !x->paused) continue;
      if (x->resume_at_ms <= now) {
        x->paused = 0;
        curl_easy_pause(x->easy, CURLPAUSE_CONT); /* may call on_write, which may pause again */
        finished++;                               /* perform again before waiting */
      } else if (x->resume_at_ms - now < wait_ms) {
        wait_ms = (int)(x->resume_at_ms - now);
      }
    }
    if (finished == 0 && active > 0) {
      mc = curl_multi_poll(s->multi, NULL, 0, wait_ms, NULL);
      if (mc != CURLM_OK) break;
    }
  }
  if (mc != CURLM_OK) {
    for (size_t i = 0; i < maxc; i++) {
      os_http_xfer *x = running[i];
      if (x == NULL) continue;
      os_http_xfer_fail(x, OS_HTTP_E_TRANSPORT, 0, "curl multi handle: %s",
                        curl_multi_strerror(mc));
      if (x->easy != NULL) xfer_finish(s, x, CURLE_OK);
      x->done = 1;
      done(ud, x);
    }
  }
  free(running);
  s->busy = 0;
  return mc == CURLM_OK ? 0 : -1;
}
