/*
 * SIGINT / SIGTERM / SIGHUP noticed through flags: see os_signal.h.
 */
#include "os_signal.h"

#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>

static volatile sig_atomic_t pending;     /* first signal, sticky */
static volatile sig_atomic_t undelivered; /* not yet raised as an error */
static volatile sig_atomic_t trapped;
static void (*notify_fn)(int);

static void on_signal(int signo) {
  if (pending != 0) {
    /* A second one: whatever the cleanup is doing, stop now. */
    signal(signo, SIG_DFL);
    raise(signo);
    return;
  }
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
  trapped = 1;
  return 0;
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
