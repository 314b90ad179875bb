/*
 * HTTP transport on libcurl: one session (a multi handle plus a share handle
 * for DNS, TLS sessions and the connection cache) drives any number of
 * transfers concurrently. Request bodies come from memory, from a file range
 * (pread, never the whole file in memory) or from a reader callback;
 * response bodies go to a growing buffer, to a file at an offset (pwrite) or
 * to a writer callback. Hashes and CRCs of both bodies are computed here as
 * the bytes stream through.
 *
 * Pure C (no Lua). The binding supplies the reader and writer callbacks; they
 * run inside curl's frames, so they must never longjmp: they return -1 to
 * abort only their own transfer, after recording why with os_http_xfer_fail.
 *
 * Life cycle of a transfer: os_http_xfer_init, then the setters (which never
 * touch curl), then os_http_perform (which creates the easy handle only when
 * the transfer starts and frees it as soon as it ends), then read the result
 * fields, then os_http_xfer_cleanup. A transfer whose setup failed (x->err
 * set) is skipped by os_http_perform and keeps that error.
 */
#ifndef OBJSTORE_OS_HTTP_H
#define OBJSTORE_OS_HTTP_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "os_buf.h"
#include "os_crc.h"
#include "os_hash.h"

/* X-macro: error, code name, retryable by default. OS_HTTP_OK must stay 0. */
#define OS_HTTP_ERRORS(X)                      \
  X(OS_HTTP_OK, "OK", 0)                       \
  X(OS_HTTP_E_CONNECT, "ConnectFailed", 1)     \
  X(OS_HTTP_E_RESOLVE, "ResolveFailed", 1)     \
  X(OS_HTTP_E_TIMEOUT, "Timeout", 1)           \
  X(OS_HTTP_E_TLS, "TLSError", 0)              \
  X(OS_HTTP_E_RESET, "ConnectionReset", 1)     \
  X(OS_HTTP_E_TRUNCATED, "BodyTruncated", 1)   \
  X(OS_HTTP_E_SEND, "SendFailed", 1)           \
  X(OS_HTTP_E_RECV, "RecvFailed", 1)           \
  X(OS_HTTP_E_PROTOCOL, "ProtocolError", 1)    \
  X(OS_HTTP_E_ABORTED, "Aborted", 0)           \
  X(OS_HTTP_E_CALLBACK, "CallbackError", 0)    \
  X(OS_HTTP_E_LENGTH, "BodyLengthMismatch", 0) \
  X(OS_HTTP_E_FILE, "LocalFileError", 0)       \
  X(OS_HTTP_E_URL, "InvalidURL", 0)            \
  X(OS_HTTP_E_NOMEM, "OutOfMemory", 0)         \
  X(OS_HTTP_E_TRANSPORT, "TransportError", 0)  \
  X(OS_HTTP_E_TOO_LARGE, "ResponseTooLarge", 0)

typedef enum {
#define OS_HTTP_ENUM_(e, name, retry) e,
  OS_HTTP_ERRORS(OS_HTTP_ENUM_)
#undef OS_HTTP_ENUM_
      OS_HTTP_ERROR_COUNT
} os_http_error;

/* Code name of an error ("Timeout"); "TransportError" when out of range. */
const char *os_http_error_name(os_http_error e);
/* Whether an error is worth another attempt by default (0 when out of range). */
int os_http_error_retryable(os_http_error e);

/* Session settings. Strings are copied; NULL means "curl's default". */
typedef struct {
  long connect_timeout_ms; /* 0: curl's default (300 s) */
  long timeout_ms;         /* whole transfer; 0: none */
  long low_speed_limit;    /* bytes/s, with low_speed_time; 0: off */
  long low_speed_time;     /* s */
  long max_connections;    /* per host; also the default concurrency */
  const char *ca_file;
  const char *ca_path;
  const char *proxy; /* "" turns off the *_proxy environment variables */
  const char *user_agent;
  long tls_min_version; /* CURL_SSLVERSION_TLSv1_x; 0: curl's default (TLS 1.2 here) */
  int insecure;         /* 1: no TLS peer or host verification */
  int verbose;          /* 1: curl's trace on stderr */
} os_http_config;

typedef struct {
  CURLM *multi;
  CURLSH *share;
  long connect_timeout_ms, timeout_ms, low_speed_limit, low_speed_time, max_connections;
  long tls_min_version;
  char *ca_file, *ca_path, *proxy, *user_agent;
  int insecure, verbose;
  int busy; /* inside os_http_perform: the session cannot be re-entered or freed */
} os_http_session;

/* Once per process (pthread_once); os_http_session_init calls it. Returns 0,
 * or -1 with a reason in err. */
int os_http_global_init(char *err, size_t errlen);

/* s must be zeroed. On failure (-1, reason in err) s may be half built:
 * os_http_session_cleanup frees whatever exists. */
int os_http_session_init(os_http_session *s, const os_http_config *cfg, char *err, size_t errlen);
/* Idempotent. Must not be called while s->busy. */
void os_http_session_cleanup(os_http_session *s);

typedef enum {
  OS_HTTP_BODY_NONE = 0,
  OS_HTTP_BODY_MEM,
  OS_HTTP_BODY_FILE,
  OS_HTTP_BODY_READER
} os_http_body_kind;
typedef enum { OS_HTTP_SINK_BUFFER = 0, OS_HTTP_SINK_FILE, OS_HTTP_SINK_WRITER } os_http_sink_kind;
typedef enum {
  OS_HTTP_M_GET = 0,
  OS_HTTP_M_HEAD,
  OS_HTTP_M_PUT,
  OS_HTTP_M_POST,
  OS_HTTP_M_OTHER
} os_http_method;

struct os_http_xfer;

/* Reader: sets *data and *len to the next chunk of the request body, which
 * must stay valid until the next call; *len == 0 means the end. Returns 0, or
 * -1 to abort the transfer (after os_http_xfer_fail). */
typedef int (*os_http_read_fn)(void *ud, struct os_http_xfer *x, const char **data, size_t *len);
/* Writer: consumes len > 0 bytes of the response body. Returns 0, or -1 to
 * abort the transfer (after os_http_xfer_fail). */
typedef int (*os_http_write_fn)(void *ud, struct os_http_xfer *x, const char *data, size_t len);
/* Head callback: the final response's status line and headers are complete
 * (x->status, x->hdrs), no body byte has reached the sink yet. Called once
 * per transfer. Returns 0, or -1 to abort the transfer (after
 * os_http_xfer_fail). */
typedef int (*os_http_head_fn)(void *ud, struct os_http_xfer *x);
/* Progress callback: the request body bytes sent so far (written to the
 * connection, as curl's progress reports them, never above what was read
 * from the body) and the 2xx response body bytes received so far, both
 * absolute and for this transfer only (a new transfer for a retry starts at
 * 0 again). Called by os_http_run's loop, never from inside a curl frame,
 * at most every OS_HTTP_PROGRESS_MS per transfer and only when a count
 * changed. Returns 0, or -1 to abort the transfer (after
 * os_http_xfer_fail). */
typedef int (*os_http_progress_fn)(void *ud, struct os_http_xfer *x, int64_t sent,
                                   int64_t received);
#define OS_HTTP_PROGRESS_MS 100

/* A running hash or CRC over one body. */
typedef struct {
  const char *name; /* static */
  int is_crc;
  os_hash_alg alg;
  os_hash h;
  os_crc_kind kind;
  uint64_t crc;
  size_t outlen; /* set when finished */
  unsigned char out[OS_HASH_MAX_SIZE];
} os_http_digest;

#define OS_HTTP_MAX_DIGESTS 8
/* Error documents (status >= 300) are collected, whatever the sink, up to
 * this size (the rest is counted in bytes but dropped). */
#define OS_HTTP_ERROR_BODY_MAX (1024 * 1024)
/* Cap on the total size of one response's header block. */
#define OS_HTTP_HEADERS_MAX (1024 * 1024)

typedef struct os_http_xfer {
  /* ---- request: the pointers must stay valid until the transfer ends ---- */
  os_http_method method_kind;
  const char *method; /* sent as CURLOPT_CUSTOMREQUEST for OS_HTTP_M_OTHER */
  const char *url;
  struct curl_slist *headers;
  int has_content_type, has_expect;
  int expect_100;
  long timeout_ms;   /* -1: the session's */
  int64_t max_speed; /* bytes/s, each direction; 0: no limit */
  /* Cap on a collected (OS_HTTP_SINK_BUFFER) 2xx response body: the transfer
   * is aborted with OS_HTTP_E_TOO_LARGE as soon as the body would exceed it,
   * before the bytes are kept. 0: no cap. Error bodies (status >= 300) are
   * always kept up to OS_HTTP_ERROR_BODY_MAX, the rest counted and dropped. */
  int64_t max_body;

  os_http_body_kind body_kind;
  const char *body_mem;
  int body_fd;
  int64_t body_offset; /* file offset of byte 0 of the body */
  int64_t body_length; /* -1: unknown (chunked), reader only */
  int64_t body_pos;    /* bytes handed to curl so far */
  os_http_read_fn reader;
  void *reader_ud;
  const char *chunk; /* reader's pending chunk */
  size_t chunk_len;
  int reader_eof;

  os_http_sink_kind sink_kind;
  const char *sink_path;
  int sink_fd;
  int64_t sink_offset;
  os_http_write_fn writer;
  void *writer_ud;
  os_http_head_fn on_head; /* NULL: none */
  void *head_ud;
  int head_done;
  os_http_progress_fn on_progress; /* NULL: none */
  void *progress_ud;

  os_http_digest digests[OS_HTTP_MAX_DIGESTS]; /* over the response body */
  int ndigests;
  os_http_digest body_digests[OS_HTTP_MAX_DIGESTS]; /* over the request body */
  int nbody_digests;

  /* ---- running state ---- */
  CURL *easy;
  int started, done;
  long status;   /* from the last status line seen */
  os_buf hdrs;   /* "name\0value\0" pairs, names lower-cased */
  os_buf body;   /* collected response body */
  int64_t bytes; /* response body bytes received */
  /* max_speed pacing of the response body: the transfer's start and, while
   * on_write holds a piece back, when it may take it (monotonic ms). */
  int64_t paced_from_ms, resume_at_ms;
  int paused;
  int64_t sink_pos; /* bytes written to the file sink */
  /* Progress: curl's upload count (CURLOPT_XFERINFOFUNCTION), what was last
   * reported, and when the next report may be made (monotonic ms). */
  int64_t up_now, reported_sent, reported_recv, progress_at_ms;

  /* ---- result ---- */
  os_http_error err;
  int retryable;
  long curl_code;
  char message[CURL_ERROR_SIZE + 128];
  char curl_errbuf[CURL_ERROR_SIZE];
  long http_status;
  int64_t sent;
  double total_time;
  long connects; /* new connections this transfer made (0: reused one) */
} os_http_xfer;

/* Zeroes x and marks its descriptors unused. */
void os_http_xfer_init(os_http_xfer *x);
/* Frees everything x owns (easy handle, header list, buffers, descriptors,
 * hash contexts). Idempotent; x is initialised again afterwards. */
void os_http_xfer_cleanup(os_http_xfer *x);

/* Records the first failure of x (later ones are ignored: the first is the
 * cause). retryable < 0 takes the code's default. */
void os_http_xfer_fail(os_http_xfer *x, os_http_error e, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* method must be non-empty; "GET", "HEAD", "PUT" and "POST" get curl's own
 * handling, anything else goes out as a custom method. */
void os_http_xfer_set_method(os_http_xfer *x, const char *method);
/* Appends "name: value" (an empty value is sent as such). The caller has
 * validated both (no CR, LF or NUL; name a token). Returns 0 or -1 (memory). */
int os_http_xfer_add_header(os_http_xfer *x, const char *name, size_t nlen, const char *value,
                            size_t vlen);
/* Adds a hash ("md5", "sha1", "sha256") or CRC ("crc32", "crc32c",
 * "crc64ecma", "crc64nvme") over the response body (request_body == 0) or the
 * request body. Returns 0, -1 for an unknown name, -2 when there are already
 * OS_HTTP_MAX_DIGESTS, -3 when OpenSSL fails. Adding a name twice is a no-op. */
int os_http_xfer_add_digest(os_http_xfer *x, int request_body, const char *name);

void os_http_xfer_set_body_mem(os_http_xfer *x, const char *data, size_t len);
/* Opens path and checks that [offset, offset+length) lies inside it
 * (length < 0: to the end). Returns 0, or -1 after os_http_xfer_fail. */
int os_http_xfer_set_body_file(os_http_xfer *x, const char *path, int64_t offset, int64_t length);
/* length < 0: unknown, sent chunked. */
void os_http_xfer_set_body_reader(os_http_xfer *x, os_http_read_fn fn, void *ud, int64_t length);
/* The file is opened (O_WRONLY|O_CREAT, no O_TRUNC, so that ranged writers
 * can share it) on the first body byte of a 2xx response, or when a 2xx
 * response ends with an empty body; error responses never touch it. */
void os_http_xfer_set_sink_file(os_http_xfer *x, const char *path, int64_t offset);
void os_http_xfer_set_sink_writer(os_http_xfer *x, os_http_write_fn fn, void *ud);
/* fn is called once, when the head of the final (non-1xx) response has
 * been read, before its first body byte is handed to the sink. */
void os_http_xfer_set_head_callback(os_http_xfer *x, os_http_head_fn fn, void *ud);
/* fn gets the byte counts while the transfer runs (see os_http_progress_fn). */
void os_http_xfer_set_progress_callback(os_http_xfer *x, os_http_progress_fn fn, void *ud);

/* Runs the transfers in xs[0..n) on the session's multi handle, at most
 * max_concurrent at a time (0: the session's max_connections), and returns
 * when all have ended; each one's outcome is in its result fields. Returns 0,
 * or -1 when the multi handle itself failed (every unfinished transfer then
 * carries that error). s->busy is set for the duration. */
int os_http_perform(os_http_session *s, os_http_xfer **xs, size_t n, size_t max_concurrent);

/* Pull model of os_http_perform, for work produced as it goes (parts of a
 * large transfer, retries): pull(ud) hands out the next transfer or NULL
 * when none is ready, done(ud, x) receives each transfer once it has ended
 * (successful or not). After every completion pull is asked again, so done
 * may make more work available. Returns when nothing is running and pull
 * has nothing; 0, or -1 when the multi handle itself failed (the running
 * transfers then end with that error). */
typedef os_http_xfer *(*os_http_pull_fn)(void *ud);
typedef void (*os_http_done_fn)(void *ud, os_http_xfer *x);
int os_http_run(os_http_session *s, os_http_pull_fn pull, os_http_done_fn done, void *ud,
                size_t max_concurrent);

/* Takes one response header line as curl hands it to its header callback
 * (a status line, a header, a folded continuation or the blank end line,
 * CRLF included or not) into x->status and x->hdrs. Returns 1, or 0 after
 * os_http_xfer_fail (out of memory, over OS_HTTP_HEADERS_MAX). Needs no
 * connection, so tests and the fuzz target call it directly. */
int os_http_xfer_header_line(os_http_xfer *x, const char *p, size_t n);
/* Iterates the response headers: start with *cursor = 0; returns 1 and sets
 * name/value (NUL-terminated, name lower-case) while there are more. */
int os_http_xfer_next_header(const os_http_xfer *x, size_t *cursor, const char **name,
                             const char **value);

#endif
