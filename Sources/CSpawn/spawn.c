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

/* ---- The subreaper (see CSpawn.h). Everything below runs in a child forked from a
   multithreaded process: system calls only, no malloc, no stdio. ---- */
#include <sys/prctl.h>
#include <time.h>
#include <sys/wait.h>

static int reaper_children(pid_t self, pid_t *out, int max) {
    char path[64] = "/proc/self/task/";
    /* /proc/self/task/<self>/children, built by hand (no snprintf). */
    char digits[16];
    int n = 0;
    pid_t v = self;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v > 0 && n < 15);
    int len = 16;
    while (n > 0) path[len++] = digits[--n];
    const char *tail = "/children";
    for (int i = 0; tail[i]; i++) path[len++] = tail[i];
    path[len] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buffer[4096];
    ssize_t got = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    if (got <= 0) return 0;
    int count = 0;
    pid_t current = 0;
    int in_number = 0;
    for (ssize_t i = 0; i < got && count < max; i++) {
        char c = buffer[i];
        if (c >= '0' && c <= '9') { current = current * 10 + (c - '0'); in_number = 1; }
        else if (in_number) { out[count++] = current; current = 0; in_number = 0; }
    }
    if (in_number && count < max) out[count++] = current;
    return count;
}

static void reaper_sweep(pid_t self, pid_t child) {
    kill(-child, SIGKILL);
    for (;;) {
        pid_t left[512];
        int count = reaper_children(self, left, 512);
        for (int i = 0; i < count; i++) kill(left[i], SIGKILL);
        int status;
        pid_t reaped = waitpid(-1, &status, count > 0 ? 0 : WNOHANG);
        if (reaped < 0 && errno == ECHILD) return;
        if (reaped < 0 && errno == EINTR) continue;
        if (reaped == 0) {
            /* Children exist but the list was empty (a race with a fork): look again. */
            struct timespec pause = {0, 5 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
}

/* The reaper is forked and never execs, so O_CLOEXEC closes nothing in it: it would hold every
   fd of the agent (the flock on agent.lock, the apps' listening sockets, the API's) for as long
   as the step runs, and on after the agent died, so that a restarted agent found its lock
   taken. It keeps its own 0-2 and the step's three fds, moved above every one of those (and
   above 100-102, where the step's child puts them), and closes the rest. */
static void reaper_keep_only(int fds[3]) {
    int base = 103;
    for (int i = 0; i < 3; i++) if (fds[i] >= base) base = fds[i] + 1;
    int kept[3], count = 0;
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0) continue;
        int moved = fcntl(fds[i], F_DUPFD, base);
        if (moved < 0) _exit(125);
        fds[i] = moved;
        kept[count++] = moved;
    }
    /* Ascending, to close the gaps between them. */
    for (int i = 1; i < count; i++) {
        for (int j = i; j > 0 && kept[j - 1] > kept[j]; j--) { int t = kept[j]; kept[j] = kept[j - 1]; kept[j - 1] = t; }
    }
    unsigned int from = 3;
    for (int i = 0; i < count; i++) {
        if ((unsigned int)kept[i] > from) syscall(SYS_close_range, from, (unsigned int)kept[i] - 1, 0);
        from = (unsigned int)kept[i] + 1;
    }
    syscall(SYS_close_range, from, ~0U, 0);
}

static void reaper_main(const char *cwd, char *const argv[], char *const envp[],
                        int stdin_fd, int stdout_fd, int stderr_fd, int grace_seconds) {
    int step_fds[3] = {stdin_fd, stdout_fd, stderr_fd};
    reaper_keep_only(step_fds);
    stdin_fd = step_fds[0];
    stdout_fd = step_fds[1];
    stderr_fd = step_fds[2];
    setsid();
    pid_t self = getpid();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) _exit(125);
    sigset_t handled, none;
    sigemptyset(&handled);
    sigemptyset(&none);
    int signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGALRM};
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaddset(&handled, signals[i]);
    sigprocmask(SIG_SETMASK, &handled, NULL);

    pid_t child = fork();
    if (child < 0) _exit(126);
    if (child == 0) {
        setpgid(0, 0);
        int fds[3] = {stdin_fd, stdout_fd, stderr_fd};
        for (int i = 0; i < 3; i++) {
            if (fds[i] >= 0) { if (dup2(fds[i], 100 + i) < 0) _exit(127); }
        }
        for (int i = 0; i < 3; i++) {
            if (fds[i] >= 0) dup2(100 + i, i);
            else {
                int null = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
                if (null >= 0 && null != i) { dup2(null, i); close(null); }
            }
        }
        syscall(SYS_close_range, 3, ~0U, 0);
        if (cwd != NULL && chdir(cwd) != 0) _exit(127);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < 65; sig++) sigaction(sig, &dfl, NULL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(argv[0], argv, envp);
        _exit(127);
    }

    int child_status = 0;
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&handled, &info);
        if (sig < 0) continue;
        if (sig == SIGCHLD) {
            int status, done = 0;
            pid_t reaped;
            while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
                if (reaped == child) { child_status = status; done = 1; }
            }
            if (done) break;
        } else if (sig == SIGALRM) {
            break;
        } else {
            kill(-child, SIGTERM);
            alarm(grace_seconds > 0 ? (unsigned)grace_seconds : 1);
        }
    }
    alarm(0);
    reaper_sweep(self, child);
    if (WIFEXITED(child_status)) _exit(WEXITSTATUS(child_status));
    int sig = WIFSIGNALED(child_status) ? WTERMSIG(child_status) : SIGKILL;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    sigset_t just;
    sigemptyset(&just);
    sigaddset(&just, sig);
    sigprocmask(SIG_UNBLOCK, &just, NULL);
    kill(self, sig);
    _exit(128 + sig);
}

int slipway_spawn_reaped(const char *cwd, char *const argv[], char *const envp[],
                         int stdin_fd, int stdout_fd, int stderr_fd, int grace_seconds, pid_t *pid) {
    pid_t reaper = fork();
    if (reaper < 0) return errno;
    if (reaper == 0) reaper_main(cwd, argv, envp, stdin_fd, stdout_fd, stderr_fd, grace_seconds);
    *pid = reaper;
    return 0;
}
