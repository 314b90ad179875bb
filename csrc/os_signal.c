/*
 * SIGINT / SIGTERM / SIGHUP noticed through flags: see os_signal.h.
 */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#include "os_signal.h"

#include <dlfcn.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

static volatile sig_atomic_t pending;     /* first signal, sticky */
static volatile sig_atomic_t undelivered; /* not yet raised as an error */
static volatile sig_atomic_t trapped;
static void (*notify_fn)(int);

static void keep_loaded(void);

static struct timespec first_at; /* when `pending` was set */

/* Milliseconds since first_at (clock_gettime is async-signal-safe). */
static long since_first_ms(void) {
  struct timespec now;
  if (clock_gettime(CLOCK_MONOTONIC, &now) != 0) return 1000000;
  return (long)(now.tv_sec - first_at.tv_sec) * 1000 + (now.tv_nsec - first_at.tv_nsec) / 1000000;
}

/* A repeat within this many ms is the same interrupt delivered twice, not
 * a user insisting: timeout(1) signals the command, then its whole process
 * group (the command again), so a cron job's `timeout 1h objstore sync`
 * was sometimes killed in the middle of its cleanup (temporary files and
 * the multipart upload left behind, no message). */
#define REPEAT_MS 500

static void on_signal(int signo) {
  if (pending != 0) {
    if (since_first_ms() < REPEAT_MS) return;
    /* A second one: whatever the cleanup is doing, stop now. */
    signal(signo, SIG_DFL);
    raise(signo);
    return;
  }
  clock_gettime(CLOCK_MONOTONIC, &first_at);
  pending = signo;
  undelivered = signo;
  if (notify_fn != NULL) notify_fn(signo);
}

int os_signal_trap(void (*notify)(int signo)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART; /* reads and writes go on; poll returns EINTR anyway */
  notify_fn = notify;
  if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
      sigaction(SIGHUP, &sa, NULL) != 0)
    return -1;
  /* A closed pipe on stdout (`objstore sync --json ... | head`) is a write
   * that fails with EPIPE, reported and cleaned up after like any other,
   * not a death that leaves temporary files behind. */
  signal(SIGPIPE, SIG_IGN);
  keep_loaded();
  trapped = 1;
  return 0;
}

/* The handler's code must outlive the Lua state that loaded it: lua_close
 * unloads this module (dlclose), and a signal arriving after that (a
 * second Ctrl-C while the command exits; `timeout` sends its signal to the
 * process group as well) jumped into unmapped memory: SIGSEGV, exit 139.
 * Once trapped, the module stays loaded until the process ends. */
static void keep_loaded(void) {
#ifdef RTLD_NODELETE
  Dl_info info;
  if (dladdr((void *)on_signal, &info) != 0 && info.dli_fname != NULL) {
    void *self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    (void)self; /* never closed: that is the point */
  }
#endif
}

void os_signal_untrap(void) {
  if (!trapped) return;
  notify_fn = NULL;
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  trapped = 0;
}

int os_signal_trapped(void) {
  return trapped;
}

int os_signal_pending(void) {
  return pending;
}

int os_signal_undelivered(void) {
  return undelivered;
}

int os_signal_take(void) {
  int s = undelivered;
  undelivered = 0;
  return s;
}

int os_term_columns(int fd) {
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0;
  return (int)ws.ws_col;
}
