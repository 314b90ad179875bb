/*
 * SIGINT, SIGTERM and SIGHUP (a closed terminal) for the command line:
 * noticed, not acted on at once; SIGPIPE is ignored (a write to a closed
 * pipe fails with EPIPE instead).
 * The handler records the signal (and calls the hook the binding gave it,
 * which only arms a Lua hook), so the code running when it arrives ends
 * its transfers, removes its temporary files and aborts its multipart
 * uploads itself. A second signal while one is pending takes the default
 * action (ends the process) for a cleanup that hangs; one within 500 ms of
 * the first is taken as the same interrupt delivered twice (timeout(1)
 * signals the command and then its process group) and ignored.
 * Never installed inside OpenResty: nginx owns the signals there.
 */
#ifndef OBJSTORE_OS_SIGNAL_H
#define OBJSTORE_OS_SIGNAL_H

/* Installs the handlers for SIGINT, SIGTERM and SIGHUP, ignores SIGPIPE; notify(signo) is called
 * from the handler (it must be async-signal-safe). 0 | -1 with errno. */
int os_signal_trap(void (*notify)(int signo));

/* Gives SIGINT, SIGTERM and SIGHUP their default actions again (no notify
 * after it returns); the Lua state that trapped them is closing. */
void os_signal_untrap(void);
/* Whether os_signal_trap has run. */
int os_signal_trapped(void);

/* The first signal received (SIGINT, SIGTERM or SIGHUP), or 0; it stays. */
int os_signal_pending(void);

/* The signal not yet turned into an error (see os_signal_take), or 0: the
 * run loop stops its transfers while this is set. */
int os_signal_undelivered(void);

/* Returns os_signal_undelivered() and clears it: the caller raises the
 * error now, and requests made while cleaning up run normally. */
int os_signal_take(void);

/* The width in columns of the terminal on fd (ioctl TIOCGWINSZ), or 0 when
 * fd is not a terminal or does not know its size. Cheap enough to ask on
 * every redraw of a progress line, so a resized window (SIGWINCH) is
 * followed without trapping the signal. */
int os_term_columns(int fd);

#endif
