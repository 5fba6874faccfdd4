/*
 * uigniter guest init: PID 1 of every uigniter microVM.
 *
 * It lives in the initramfs next to a static busybox (the "base" layer) and:
 *   1. mounts /proc, /sys, /dev and finds the config drive (a raw virtio-blk disk
 *      that starts with the line "UIGNITER-CONFIG 1");
 *   2. mounts the image's read-only layers (squashfs disks carrying a
 *      /.uigniter-layer marker) and stacks them with overlayfs over a tmpfs, so the
 *      app sees one writable root, like a container;
 *   3. mounts volumes (ext4 disks found by their superblock UUID);
 *   4. runs the app chrooted in that root with the environment and arguments from
 *      the config, and reports readiness once its port answers;
 *   5. turns a stop request into SIGTERM for the app: the host presses
 *      Ctrl-Alt-Del (QMP send-key, Firecracker's SendCtrlAltDel); with CAD disabled
 *      the kernel delivers it to PID 1 as SIGINT;
 *   6. reaps every zombie, and when the app exits prints one line
 *      "@uigniter {"event":"exit",...}" on the console and powers the VM off.
 *
 * Disks are identified by content, never by /dev/vdX order: QEMU and Firecracker
 * attach virtio-mmio devices in different orders, and Firecracker cannot set a
 * virtio-blk serial.
 *
 * Written in C rather than a busybox script because PID 1 must reap orphans,
 * multiplex signals and probes in one loop, and parse untrusted config bytes
 * exactly; a shell makes each of those fragile.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ITEMS 256
#define MAX_LAYERS 8
#define MAX_VOLUMES 8
#define CONFIG_MAGIC "UIGNITER-CONFIG 1\n"
#define CONFIG_MAX (1024 * 1024)
#define NEWROOT "/newroot"

struct volume {
  char uuid[33]; /* 32 lowercase hex digits, no dashes */
  char *mountpoint;
  int readonly;
  int mounted;
};

struct config {
  char *hostname;
  char *workdir;
  char *env[MAX_ITEMS];
  int nenv;
  char *argv[MAX_ITEMS + 1];
  int nargv;
  char *layers[MAX_LAYERS]; /* layer ids, top first */
  int nlayers;
  struct volume volumes[MAX_VOLUMES];
  int nvolumes;
  char *hosts[MAX_ITEMS]; /* "ip name" */
  int nhosts;
  char *dns[4];
  int ndns;
  char *search;
  char ready_kind[8]; /* none | tcp | http */
  int ready_port;
  char *ready_path;
  long stop_timeout_ms;
  long long wall_time;
};

static struct config cfg;
static char layer_mounts[MAX_LAYERS][64];

/* ---------- console output ---------- */

static double uptime_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* One machine-readable line; the leading newline keeps it at the start of a
 * line even when the app left a partial line on the console. */
static void event(const char *fmt, ...) {
  char body[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  dprintf(1, "\n@uigniter {%s,\"uptimeMs\":%.0f}\n", body, uptime_ms());
}

static void logmsg(const char *fmt, ...) {
  char body[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  dprintf(2, "uigniter-init: %s\n", body);
}

static void json_escape(const char *in, char *out, size_t cap) {
  size_t o = 0;
  for (; *in && o + 7 < cap; in++) {
    unsigned char c = (unsigned char)*in;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = c;
    } else if (c < 0x20) {
      o += snprintf(out + o, cap - o, "\\u%04x", c);
    } else {
      out[o++] = c;
    }
  }
  out[o] = 0;
}

static void power_off(void) {
  sync();
  /* reboot=k on the command line plus -no-reboot (QEMU) or Firecracker's i8042
   * reset handling turns this into a clean exit of the VMM. */
  reboot(RB_AUTOBOOT);
  for (;;) pause();
}

static void fatal(const char *what) {
  char esc[300];
  json_escape(what, esc, sizeof esc);
  logmsg("fatal: %s (%s)", what, strerror(errno));
  event("\"event\":\"exit\",\"code\":255,\"error\":\"%s\"", esc);
  power_off();
}

/* ---------- small helpers ---------- */

static int mkdirs(const char *path, mode_t mode) {
  char buf[1024];
  size_t n = strlen(path);
  if (n >= sizeof buf) return -1;
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  }
  if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
  return 0;
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags,
                       const char *data) {
  mkdirs(dst, 0755);
  if (mount(src, dst, type, flags, data) < 0) {
    char what[256];
    snprintf(what, sizeof what, "mount %s on %s", type ? type : src, dst);
    fatal(what);
  }
}

static int write_file(const char *path, const char *content) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(content), off = 0;
  while (off < len) {
    ssize_t w = write(fd, content + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return -1;
    }
    off += (size_t)w;
  }
  return close(fd);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes %XX escapes in place; the host escapes every byte outside a safe set,
 * including space, '%' and newline, so a token never contains a separator. */
static int pct_decode(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (*p == '%') {
      int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
      if (hi < 0 || lo < 0) return -1;
      int c = hi * 16 + lo;
      if (c == 0) return -1;
      *o++ = (char)c;
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = 0;
  return 0;
}

/* ---------- config drive ---------- */

static char *read_prefix(const char *dev, size_t cap, size_t *len) {
  int fd = open(dev, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  char *buf = malloc(cap + 1);
  if (!buf) {
    close(fd);
    return NULL;
  }
  size_t off = 0;
  while (off < cap) {
    ssize_t r = read(fd, buf + off, cap - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    off += (size_t)r;
  }
  close(fd);
  buf[off] = 0;
  *len = off;
  return buf;
}

static char *next_token(char **cursor) {
  char *p = *cursor;
  while (*p == ' ') p++;
  if (!*p) return NULL;
  char *start = p;
  while (*p && *p != ' ') p++;
  if (*p) *p++ = 0;
  *cursor = p;
  if (pct_decode(start) < 0) return NULL;
  return start;
}

static void parse_config(char *text) {
  memset(&cfg, 0, sizeof cfg);
  strcpy(cfg.ready_kind, "none");
  cfg.stop_timeout_ms = 10000;
  char *save = NULL;
  char *line = strtok_r(text + strlen(CONFIG_MAGIC), "\n", &save);
  for (; line; line = strtok_r(NULL, "\n", &save)) {
    char *cur = line;
    char *key = next_token(&cur);
    if (!key) continue;
    char *a = next_token(&cur);
    if (!strcmp(key, "end")) break;
    if (!a) continue;
    if (!strcmp(key, "hostname")) cfg.hostname = a;
    else if (!strcmp(key, "workdir")) cfg.workdir = a;
    else if (!strcmp(key, "env") && cfg.nenv < MAX_ITEMS) cfg.env[cfg.nenv++] = a;
    else if (!strcmp(key, "arg") && cfg.nargv < MAX_ITEMS) cfg.argv[cfg.nargv++] = a;
    else if (!strcmp(key, "layer") && cfg.nlayers < MAX_LAYERS) cfg.layers[cfg.nlayers++] = a;
    else if (!strcmp(key, "volume") && cfg.nvolumes < MAX_VOLUMES) {
      char *mp = next_token(&cur), *mode = next_token(&cur);
      if (!mp || strlen(a) != 32) continue;
      struct volume *v = &cfg.volumes[cfg.nvolumes++];
      memcpy(v->uuid, a, 33);
      v->mountpoint = mp;
      v->readonly = mode && !strcmp(mode, "ro");
    } else if (!strcmp(key, "host") && cfg.nhosts < MAX_ITEMS) {
      char *name = next_token(&cur);
      if (!name) continue;
      size_t n = strlen(a) + strlen(name) + 2;
      char *h = malloc(n);
      if (!h) continue;
      snprintf(h, n, "%s %s", a, name);
      cfg.hosts[cfg.nhosts++] = h;
    } else if (!strcmp(key, "dns") && cfg.ndns < 4) cfg.dns[cfg.ndns++] = a;
    else if (!strcmp(key, "search")) cfg.search = a;
    else if (!strcmp(key, "ready")) {
      snprintf(cfg.ready_kind, sizeof cfg.ready_kind, "%s", a);
      char *port = next_token(&cur);
      cfg.ready_port = port ? atoi(port) : 0;
      cfg.ready_path = next_token(&cur);
    } else if (!strcmp(key, "stop-timeout")) cfg.stop_timeout_ms = atol(a);
    else if (!strcmp(key, "time")) cfg.wall_time = atoll(a);
  }
  cfg.argv[cfg.nargv] = NULL;
}

/* ---------- disks ---------- */

enum disk_kind { DISK_UNKNOWN, DISK_CONFIG, DISK_SQUASHFS, DISK_EXT4 };

static enum disk_kind classify(const char *dev, char *uuid_hex) {
  size_t len = 0;
  char *buf = read_prefix(dev, 2048, &len);
  if (!buf) return DISK_UNKNOWN;
  enum disk_kind kind = DISK_UNKNOWN;
  if (len >= strlen(CONFIG_MAGIC) && !memcmp(buf, CONFIG_MAGIC, strlen(CONFIG_MAGIC))) {
    kind = DISK_CONFIG;
  } else if (len >= 4 && !memcmp(buf, "hsqs", 4)) {
    kind = DISK_SQUASHFS;
  } else if (len >= 1024 + 0x78) {
    const unsigned char *sb = (const unsigned char *)buf + 1024;
    if (sb[0x38] == 0x53 && sb[0x39] == 0xEF) {
      kind = DISK_EXT4;
      for (int i = 0; i < 16; i++) sprintf(uuid_hex + 2 * i, "%02x", sb[0x68 + i]);
      uuid_hex[32] = 0;
    }
  }
  free(buf);
  return kind;
}

static int list_disks(char names[][16], int cap) {
  DIR *d = opendir("/sys/block");
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < cap) {
    if (strncmp(e->d_name, "vd", 2) || strlen(e->d_name) >= 16) continue;
    snprintf(names[n++], 16, "%s", e->d_name);
  }
  closedir(d);
  return n;
}

static char *load_config(void) {
  char names[32][16];
  /* virtio-blk probes before init runs, but allow a short grace period. */
  for (int attempt = 0; attempt < 200; attempt++) {
    int n = list_disks(names, 32);
    for (int i = 0; i < n; i++) {
      char dev[64], uuid[33];
      snprintf(dev, sizeof dev, "/dev/%s", names[i]);
      if (classify(dev, uuid) != DISK_CONFIG) continue;
      size_t len = 0;
      char *text = read_prefix(dev, CONFIG_MAX, &len);
      if (text) return text;
    }
    usleep(10000);
  }
  return NULL;
}

static int layer_mounted_at(const char *mnt) {
  for (int l = 0; l < cfg.nlayers; l++)
    if (!strcmp(layer_mounts[l], mnt)) return 1;
  return 0;
}

/* Mounts the squashfs disk at mnt if its marker names a layer we still need. */
static int try_layer(const char *dev, const char *mnt) {
  if (layer_mounted_at(mnt)) return 0;
  mkdirs(mnt, 0755);
  if (mount(dev, mnt, "squashfs", MS_RDONLY | MS_NODEV, NULL) < 0) return 0;
  char marker[512];
  snprintf(marker, sizeof marker, "%s/.uigniter-layer", mnt);
  size_t len = 0;
  char *id = read_prefix(marker, 255, &len);
  if (id) {
    id[strcspn(id, "\r\n")] = 0;
    for (int l = 0; l < cfg.nlayers; l++) {
      if (!layer_mounts[l][0] && !strcmp(cfg.layers[l], id)) {
        snprintf(layer_mounts[l], sizeof layer_mounts[l], "%s", mnt);
        free(id);
        return 1;
      }
    }
    free(id);
  }
  umount(mnt);
  return 0;
}

/* Mounts the ext4 disk inside the new root if its UUID names a volume. */
static int try_volume(const char *dev, const char *uuid) {
  for (int v = 0; v < cfg.nvolumes; v++) {
    struct volume *vol = &cfg.volumes[v];
    if (vol->mounted || strcmp(vol->uuid, uuid)) continue;
    char target[1024];
    snprintf(target, sizeof target, "%s%s", NEWROOT, vol->mountpoint);
    mkdirs(target, 0755);
    unsigned long flags = MS_NODEV | (vol->readonly ? MS_RDONLY : 0);
    if (mount(dev, target, "ext4", flags, NULL) < 0) fatal("mount volume");
    vol->mounted = 1;
    return 1;
  }
  return 0;
}

/* Layers go first (the overlay needs them), volumes after the overlay exists. */
static void mount_disks(int want_layers) {
  char names[32][16];
  int wanted = want_layers ? cfg.nlayers : cfg.nvolumes, found = 0;
  for (int attempt = 0; attempt < 200 && found < wanted; attempt++) {
    if (attempt) usleep(10000);
    int n = list_disks(names, 32);
    for (int i = 0; i < n; i++) {
      char dev[64], uuid[33] = "", mnt[64];
      snprintf(dev, sizeof dev, "/dev/%s", names[i]);
      snprintf(mnt, sizeof mnt, "/layers/%s", names[i]);
      enum disk_kind kind = classify(dev, uuid);
      if (want_layers && kind == DISK_SQUASHFS) found += try_layer(dev, mnt);
      if (!want_layers && kind == DISK_EXT4) found += try_volume(dev, uuid);
    }
  }
  if (found < wanted) {
    errno = ENODEV;
    fatal(want_layers ? "a layer disk of the image is missing" : "a volume disk is missing");
  }
}

/* ---------- root filesystem ---------- */

static void build_root(void) {
  must_mount("tmpfs", "/rw", "tmpfs", MS_NODEV, "mode=0755");
  mkdirs("/rw/upper", 0755);
  mkdirs("/rw/work", 0755);
  char opts[2048];
  size_t o = (size_t)snprintf(opts, sizeof opts, "lowerdir=");
  for (int l = 0; l < cfg.nlayers; l++)
    o += (size_t)snprintf(opts + o, sizeof opts - o, "%s:", layer_mounts[l]);
  snprintf(opts + o, sizeof opts - o, "/base,upperdir=/rw/upper,workdir=/rw/work");
  must_mount("overlay", NEWROOT, "overlay", 0, opts);
  must_mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  must_mount("sysfs", NEWROOT "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  must_mount("/dev", NEWROOT "/dev", NULL, MS_BIND, NULL);
  must_mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666");
  must_mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  must_mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  must_mount("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
}

static void write_etc(void) {
  mkdirs(NEWROOT "/etc", 0755);
  char buf[65536];
  size_t o = (size_t)snprintf(buf, sizeof buf, "127.0.0.1 localhost\n");
  if (cfg.hostname) o += (size_t)snprintf(buf + o, sizeof buf - o, "127.0.1.1 %s\n", cfg.hostname);
  for (int i = 0; i < cfg.nhosts && o < sizeof buf; i++)
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\n", cfg.hosts[i]);
  write_file(NEWROOT "/etc/hosts", buf);
  o = 0;
  buf[0] = 0;
  for (int i = 0; i < cfg.ndns; i++)
    o += (size_t)snprintf(buf + o, sizeof buf - o, "nameserver %s\n", cfg.dns[i]);
  if (cfg.search) o += (size_t)snprintf(buf + o, sizeof buf - o, "search %s\n", cfg.search);
  snprintf(buf + o, sizeof buf - o, "options timeout:1 attempts:2\n");
  write_file(NEWROOT "/etc/resolv.conf", buf);
  if (cfg.hostname) {
    snprintf(buf, sizeof buf, "%s\n", cfg.hostname);
    write_file(NEWROOT "/etc/hostname", buf);
  }
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
}

/* ---------- the app ---------- */

static pid_t start_app(const sigset_t *oldmask) {
  if (cfg.nargv == 0) {
    errno = EINVAL;
    fatal("the config names no program to run");
  }
  pid_t pid = fork();
  if (pid < 0) fatal("fork");
  if (pid > 0) return pid;
  /* child */
  setsid();
  sigprocmask(SIG_SETMASK, oldmask, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  if (chroot(NEWROOT) < 0 || chdir("/") < 0) {
    dprintf(2, "uigniter-init: chroot: %s\n", strerror(errno));
    _exit(127);
  }
  if (cfg.workdir && chdir(cfg.workdir) < 0) {
    dprintf(2, "uigniter-init: workdir %s: %s\n", cfg.workdir, strerror(errno));
    _exit(127);
  }
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    dup2(devnull, 0);
    if (devnull > 2) close(devnull);
  }
  clearenv();
  setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  setenv("HOME", "/root", 1);
  if (cfg.hostname) setenv("HOSTNAME", cfg.hostname, 1);
  for (int i = 0; i < cfg.nenv; i++) putenv(cfg.env[i]);
  execvp(cfg.argv[0], cfg.argv);
  dprintf(2, "uigniter-init: exec %s: %s\n", cfg.argv[0], strerror(errno));
  _exit(127);
}

/* Returns 1 once the app answers its readiness check. */
static int probe_ready(void) {
  if (!strcmp(cfg.ready_kind, "none")) return 1;
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.ready_port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = 0;
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) {
    if (!strcmp(cfg.ready_kind, "tcp")) {
      ok = 1;
    } else {
      char req[1200], resp[64];
      int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n",
                       cfg.ready_path ? cfg.ready_path : "/");
      if (n > 0 && n < (int)sizeof req && write(s, req, (size_t)n) == n) {
        ssize_t r = read(s, resp, sizeof resp - 1);
        if (r >= 12) {
          resp[r] = 0;
          /* "HTTP/1.x 2xx" or 3xx */
          ok = !strncmp(resp, "HTTP/1.", 7) && (resp[9] == '2' || resp[9] == '3');
        }
      }
    }
  }
  close(s);
  return ok;
}

/* The app leads its own process group (setsid): one kill reaches it and its children.
 * Signalling the group and then the app again would deliver the signal twice, which many
 * runtimes take as "stop now" (Node's convention: a second SIGTERM exits with 1). */
static void signal_app(pid_t app, int sig) {
  if (kill(-app, sig) < 0) kill(app, sig);
}

static void finish(int status) {
  /* Everything left belongs to the app: end it, then flush and detach volumes so
   * their ext4 journals are clean before the VM disappears. */
  kill(-1, SIGKILL);
  while (waitpid(-1, NULL, 0) > 0) {
  }
  sync();
  for (int v = cfg.nvolumes - 1; v >= 0; v--) {
    if (!cfg.volumes[v].mounted) continue;
    char target[1024];
    snprintf(target, sizeof target, "%s%s", NEWROOT, cfg.volumes[v].mountpoint);
    if (umount(target) < 0) umount2(target, MNT_DETACH);
  }
  if (WIFEXITED(status)) {
    event("\"event\":\"exit\",\"code\":%d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    event("\"event\":\"exit\",\"code\":%d,\"signal\":%d", 128 + sig, sig);
  } else {
    event("\"event\":\"exit\",\"code\":255");
  }
  power_off();
}

int main(void) {
  if (getpid() != 1) {
    fprintf(stderr, "uigniter-init must run as PID 1 inside a uigniter microVM\n");
    return 2;
  }
  mkdirs("/dev", 0755);
  mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  int con = open("/dev/console", O_RDWR | O_NOCTTY);
  if (con >= 0) {
    dup2(con, 0);
    dup2(con, 1);
    dup2(con, 2);
    if (con > 2) close(con);
  }
  must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  /* Ctrl-Alt-Del becomes SIGINT to us instead of an immediate reboot. */
  reboot(RB_DISABLE_CAD);

  sigset_t mask, oldmask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGPWR);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, &oldmask);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) fatal("signalfd");

  char *text = load_config();
  if (!text) {
    errno = ENOENT;
    fatal("no config drive found");
  }
  parse_config(text);

  if (cfg.wall_time > 0 && time(NULL) < cfg.wall_time - 5) {
    /* No usable RTC (Firecracker on x86 has none): take the host's time. */
    struct timeval tv = {.tv_sec = (time_t)cfg.wall_time, .tv_usec = 0};
    settimeofday(&tv, NULL);
  }
  if (cfg.hostname) sethostname(cfg.hostname, strlen(cfg.hostname));
  loopback_up();

  mkdirs(NEWROOT, 0755);
  mount_disks(1);
  build_root();
  mount_disks(0);
  write_etc();

  pid_t app = start_app(&oldmask);
  event("\"event\":\"started\",\"pid\":%d", (int)app);

  int ready = 0, stopping = 0;
  double stop_deadline = 0;
  for (;;) {
    int timeout = -1;
    if (!ready) {
      if (probe_ready()) {
        ready = 1;
        event("\"event\":\"ready\"");
      } else {
        timeout = 10;
      }
    }
    if (stopping) {
      double left = stop_deadline - uptime_ms();
      if (left <= 0) {
        logmsg("app ignored SIGTERM for %ld ms: killing it", cfg.stop_timeout_ms);
        signal_app(app, SIGKILL);
        stopping = 0;
      } else if (timeout < 0 || left < timeout) {
        timeout = (int)left + 1;
      }
    }
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout);
    if (r <= 0) continue;
    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) != sizeof si) continue;
    if (si.ssi_signo == SIGCHLD) {
      int status;
      pid_t p;
      while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p == app) finish(status);
      }
    } else if (!stopping) {
      /* SIGINT (Ctrl-Alt-Del), SIGTERM, SIGPWR or SIGHUP: a stop request. */
      event("\"event\":\"stopping\"");
      signal_app(app, SIGTERM);
      stopping = 1;
      stop_deadline = uptime_ms() + (double)cfg.stop_timeout_ms;
    }
  }
}
