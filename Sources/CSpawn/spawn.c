#include "CSpawn.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

int slipway_spawn(const char *cwd, char *const argv[], char *const envp[],
                  int stdin_fd, int stdout_fd, int stderr_fd, int fd3, pid_t *pid) {
    int listeners[1] = {fd3};
    return slipway_spawn_listeners(cwd, argv, envp, stdin_fd, stdout_fd, stderr_fd, listeners, fd3 >= 0 ? 1 : 0, pid);
}

int slipway_spawn_listeners(const char *cwd, char *const argv[], char *const envp[],
                            int stdin_fd, int stdout_fd, int stderr_fd,
                            const int *listeners, int listener_count, pid_t *pid) {
    if (listener_count < 0 || listener_count > SLIPWAY_MAX_LISTENERS) return EINVAL;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&actions); return rc; }

    /* Move the wanted fds above the standard range first, so the dup2 sequence below
       never clobbers a source fd that happens to be 0..3+N. */
    int count = 3 + listener_count;
    int fds[3 + SLIPWAY_MAX_LISTENERS] = {stdin_fd, stdout_fd, stderr_fd};
    for (int i = 0; i < listener_count; i++) fds[3 + i] = listeners[i];
    for (int i = 0; i < count && rc == 0; i++) {
        if (fds[i] >= 0) rc = posix_spawn_file_actions_adddup2(&actions, fds[i], 100 + i);
    }
    for (int i = 0; i < count && rc == 0; i++) {
        if (fds[i] >= 0) rc = posix_spawn_file_actions_adddup2(&actions, 100 + i, i);
        else if (i < 3) rc = posix_spawn_file_actions_addopen(&actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, count);
    if (rc == 0 && cwd != NULL) rc = posix_spawn_file_actions_addchdir_np(&actions, cwd);

    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (rc == 0) rc = posix_spawn(pid, argv[0], &actions, &attr, argv, envp);

    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    return rc;
}

int slipway_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}
