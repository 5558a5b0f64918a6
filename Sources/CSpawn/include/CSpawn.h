#ifndef SLIPWAY_CSPAWN_H
#define SLIPWAY_CSPAWN_H
#include <sys/types.h>

/// Spawns `argv[0]` (an absolute path) in a new session, so the whole process group can be
/// signalled, with `cwd` as its working directory, stdin/stdout/stderr from the given fds,
/// an optional `fd3` handed over as fd 3, and every other fd closed. Signal dispositions and
/// the signal mask are reset to defaults. Returns 0 and sets `*pid`, or an errno value.
int slipway_spawn(const char *cwd,
                  char *const argv[],
                  char *const envp[],
                  int stdin_fd, int stdout_fd, int stderr_fd,
                  int fd3,
                  pid_t *pid);

/// The most sockets `slipway_spawn_listeners` hands over (fd 3 and up).
#define SLIPWAY_MAX_LISTENERS 2

/// As `slipway_spawn`, with `listener_count` sockets handed over as fd 3, 4, ... in order
/// (systemd's LISTEN_FDS numbering): the app's shared socket, then the worker's own.
int slipway_spawn_listeners(const char *cwd,
                            char *const argv[],
                            char *const envp[],
                            int stdin_fd, int stdout_fd, int stderr_fd,
                            const int *listeners, int listener_count,
                            pid_t *pid);

/// pidfd_open(2): a file descriptor that becomes readable when `pid` exits, for poll(2).
/// Returns the fd, or -1 with errno set (ENOSYS before Linux 5.3).
int slipway_pidfd_open(pid_t pid);

/// Containment where there is no writable cgroup v2: forks a reaper (`*pid`), a session leader
/// that makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), then starts `argv` as its own
/// child (in a process group of its own, stdio and cwd as `slipway_spawn`, every other fd closed,
/// signals reset). Whatever that child leaves behind (a `setsid` + double fork included) is
/// reparented to the reaper, not to init. When the child exits, or `grace_seconds` after the
/// reaper got SIGTERM/SIGINT/SIGHUP (which it forwards to the child's group as SIGTERM), the
/// reaper SIGKILLs every process left below it, reaps them all, and then ends as the child did
/// (its exit status, or its signal). The reaper itself runs only system calls (it is forked from
/// a multithreaded process and never execs). Returns 0, or an errno value.
int slipway_spawn_reaped(const char *cwd, char *const argv[], char *const envp[],
                         int stdin_fd, int stdout_fd, int stderr_fd, int grace_seconds, pid_t *pid);

#endif
