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
 *      "@uigniter {"event":"exit",...}" on the console and powers the VM off;
 *   7. answers the host's guest agent on a virtio-serial port (src/guest/agent-protocol.ts):
 *      freeze the app before a snapshot, thaw it after, and renew a restored clone's
 *      identity (entropy, clock, hostname, network) before the app runs again. A Node app
 *      gets our clone hooks (guest/runtime/node-clone-hooks.cjs) and a socket to them, so
 *      its own random generators are renewed too.
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
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/random.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
  int node_hooks; /* "app-hooks node": preload our Node clone hooks when the layer has them */
  int root_readonly; /* "root ro": the app's root mount is read-only (EROFS); submounts are not */
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
    else if (!strcmp(key, "app-hooks")) cfg.node_hooks = !strcmp(a, "node");
    else if (!strcmp(key, "root")) cfg.root_readonly = !strcmp(a, "ro");
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

/* /etc/hosts and /etc/hostname, written at boot and again when a clone is renamed. */
/* A read-only root: the mount the app sees as / is flagged read-only (a bind remount
 * changes this mount only, not the overlay's superblock nor the mounts under it: /tmp,
 * /run, /dev/shm and volumes stay as they are). The tmpfs upper layer stays, holding only
 * the /etc files the init writes; the init makes the mount writable again for the moment
 * it rewrites them (a clone's renewal, while the app is frozen). */
static int set_root_readonly(int ro) {
  return mount(NULL, NEWROOT, NULL, MS_REMOUNT | MS_BIND | (ro ? MS_RDONLY : 0), NULL);
}

static int write_host_files(void) {
  static char buf[65536];
  size_t o = (size_t)snprintf(buf, sizeof buf, "127.0.0.1 localhost\n");
  if (cfg.hostname) o += (size_t)snprintf(buf + o, sizeof buf - o, "127.0.1.1 %s\n", cfg.hostname);
  for (int i = 0; i < cfg.nhosts && o < sizeof buf; i++)
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\n", cfg.hosts[i]);
  int rc = write_file(NEWROOT "/etc/hosts", buf);
  if (cfg.hostname) {
    snprintf(buf, sizeof buf, "%s\n", cfg.hostname);
    if (write_file(NEWROOT "/etc/hostname", buf) < 0) rc = -1;
  }
  return rc;
}

static void write_etc(void) {
  mkdirs(NEWROOT "/etc", 0755);
  write_host_files();
  static char buf[65536];
  size_t o = 0;
  buf[0] = 0;
  for (int i = 0; i < cfg.ndns; i++)
    o += (size_t)snprintf(buf + o, sizeof buf - o, "nameserver %s\n", cfg.dns[i]);
  if (cfg.search) o += (size_t)snprintf(buf + o, sizeof buf - o, "search %s\n", cfg.search);
  snprintf(buf + o, sizeof buf - o, "options timeout:1 attempts:2\n");
  write_file(NEWROOT "/etc/resolv.conf", buf);
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

/* Inside the app's root; the Node runtime layer carries it (src/images/runtime-layer.ts). */
#define NODE_HOOKS "/usr/lib/uigniter/node-clone-hooks.cjs"
#define HOOKS_FD 3
/* How the init asks the hooks to quiesce: SIGURG, once they have announced with a "U"
 * line at load that they listen to it. Ignored by default (an app whose hooks went away is
 * not hurt) and never listened to by Node itself, unlike SIGWINCH, which hooks built
 * before the announcement listen to and still get: Node adds a SIGWINCH listener for each
 * stdio stream on a TTY (the console here), after the hooks', and a listener after theirs
 * runs once they return, i.e. after the thaw, in every clone (which then compiled and ran
 * Node's terminal-size refresh). */
#define FREEZE_SIGNAL SIGURG
#define OLD_FREEZE_SIGNAL SIGWINCH

/* The app channel: our end of a socket pair whose other end the app's Node hooks hold as
 * fd 3. The hooks write "U\n" at load (see FREEZE_SIGNAL), and "F\n" when the signal asks
 * them to quiesce, then block until we answer one line: "T\n" (go on) or "R\n" (renewed:
 * reseed). Every F gets exactly one answer, whenever it comes: a late F (after the 1 s
 * freeze wait) or one nobody asked for must not leave the app's main thread blocked for
 * ever. */
static struct {
  int fd;        /* -1: the app has no hooks (or they went away) */
  int waiting;   /* F lines read and not answered yet: the hooks block meanwhile */
  int renew_due; /* renewed since the hooks last heard: their next answer is R */
  int signal;    /* what asks them to quiesce: OLD_FREEZE_SIGNAL until they announce "U" */
} hooks = {.fd = -1};

static pid_t start_app(const sigset_t *oldmask) {
  if (cfg.nargv == 0) {
    errno = EINVAL;
    fatal("the config names no program to run");
  }
  int sv[2] = {-1, -1};
  if (cfg.node_hooks && access(NEWROOT NODE_HOOKS, R_OK) == 0 &&
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    logmsg("app channel: socketpair: %s (the app runs without clone hooks)", strerror(errno));
    sv[0] = sv[1] = -1;
  }
  pid_t pid = fork();
  if (pid < 0) fatal("fork");
  if (pid > 0) {
    if (sv[0] >= 0) {
      close(sv[1]);
      /* Our end never blocks PID 1; the app's end stays blocking (the hooks wait on it). */
      fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
      hooks.fd = sv[0];
      hooks.signal = OLD_FREEZE_SIGNAL;
    }
    return pid;
  }
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
  /* The app's end becomes fd 3 and survives exec (dup2 clears close-on-exec). */
  if (sv[1] >= 0) {
    if (sv[1] == HOOKS_FD) fcntl(HOOKS_FD, F_SETFD, 0);
    else if (dup2(sv[1], HOOKS_FD) < 0) sv[1] = -1;
  }
  clearenv();
  setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  setenv("HOME", "/root", 1);
  if (cfg.hostname) setenv("HOSTNAME", cfg.hostname, 1);
  for (int i = 0; i < cfg.nenv; i++) putenv(cfg.env[i]);
  if (sv[1] >= 0) {
    /* After the VM's env, which must not override these; its NODE_OPTIONS are kept. */
    setenv("UIGNITER_HOOKS_FD", "3", 1);
    const char *old = getenv("NODE_OPTIONS");
    char *opts = NULL;
    if (asprintf(&opts, "--require " NODE_HOOKS "%s%s", old && *old ? " " : "", old ? old : "") > 0)
      setenv("NODE_OPTIONS", opts, 1);
  }
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

/* ---------- the app channel (Node clone hooks) ---------- */

static int frozen;          /* the app's group is stopped by a freeze */
static int stop_requested;  /* the host asked the VM to stop: no more freezes */
static int frozen_quiesced; /* and the hooks acknowledged before it was */

static void hooks_close(void) {
  if (hooks.fd >= 0) close(hooks.fd);
  hooks.fd = -1;
  hooks.waiting = 0;
}

/* Answers every waiting F: R if a renewal happened since the hooks last heard, else T. */
static void hooks_answer(void) {
  while (hooks.fd >= 0 && hooks.waiting > 0) {
    const char *line = hooks.renew_due ? "R\n" : "T\n";
    ssize_t w = send(hooks.fd, line, 2, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w != 2) {
      /* The hooks read before they write again, so the buffer cannot be full: the app's
       * end is gone. */
      hooks_close();
      return;
    }
    if (line[0] == 'R') hooks.renew_due = 0;
    hooks.waiting--;
  }
}

/* Reads what the hooks sent (non-blocking): each F is a waiting app, answered at once
 * unless the app is frozen (then thaw or renew answers it). */
static void hooks_drain(void) {
  char buf[64];
  while (hooks.fd >= 0) {
    ssize_t r = recv(hooks.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (r <= 0) {
      hooks_close(); /* the app and every child holding its end are gone */
      return;
    }
    for (ssize_t i = 0; i < r; i++) {
      if (buf[i] == 'F') hooks.waiting++;
      if (buf[i] == 'U') hooks.signal = FREEZE_SIGNAL;
    }
  }
  if (!frozen) hooks_answer();
}

/* ---------- the guest agent ---------- */

#define AGENT_PORT_NAME "org.uigniter.agent"
#define AGENT_LINE_MAX 4096 /* newline included: src/guest/agent-protocol.ts MAX_LINE */
#define FREEZE_WAIT_MS 1000

/* The port is polled only while a host is connected: without one the virtio console
 * driver reports POLLHUP continuously. It sends SIGIO (O_ASYNC, owner PID 1) when the host
 * connects or disconnects, and on incoming data; each SIGIO re-checks. */
static struct {
  int fd; /* -1: no port (yet) */
  int connected;
  int possible; /* a virtio console device exists: the port may still appear */
  char line[AGENT_LINE_MAX];
  size_t len;
  int overlong; /* dropping the rest of a line that did not fit */
} agent = {.fd = -1};

static int virtio_console_present(void) {
  DIR *d = opendir("/sys/bus/virtio/drivers/virtio_console");
  if (!d) return 0;
  struct dirent *e;
  int found = 0;
  while (!found && (e = readdir(d))) found = !strncmp(e->d_name, "virtio", 6);
  closedir(d);
  return found;
}

static void agent_reset_line(void) {
  agent.len = 0;
  agent.overlong = 0;
}

static void agent_recheck(void) {
  if (agent.fd < 0) return;
  struct pollfd p = {.fd = agent.fd, .events = POLLIN};
  if (poll(&p, 1, 0) < 0) return;
  int up = !((p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLIN));
  if (!up) agent_reset_line(); /* a new connection starts with a new line */
  agent.connected = up;
}

/* Finds /dev/vportNpM named org.uigniter.agent and opens it; 0 when it is not there (yet). */
static int agent_open(void) {
  if (agent.fd >= 0) return 1;
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return 0;
  struct dirent *e;
  char dev[300] = "";
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[512];
    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
    size_t len = 0;
    char *name = read_prefix(path, 64, &len);
    if (!name) continue;
    name[strcspn(name, "\n")] = 0;
    if (!strcmp(name, AGENT_PORT_NAME)) snprintf(dev, sizeof dev, "/dev/%s", e->d_name);
    free(name);
    if (dev[0]) break;
  }
  closedir(d);
  if (!dev[0]) return 0;
  int fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    logmsg("agent: open %s: %s", dev, strerror(errno));
    agent.possible = 0; /* do not retry in a loop */
    return 0;
  }
  if (fcntl(fd, F_SETOWN, getpid()) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) < 0)
    logmsg("agent: O_ASYNC on %s: %s", dev, strerror(errno));
  agent.fd = fd;
  agent_reset_line();
  agent_recheck(); /* the host may have connected before we asked for SIGIO */
  return 1;
}

static void pct_encode(const char *in, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        strchr("._~/:=@+,-", *p)) {
      out[o++] = (char)*p;
    } else {
      out[o++] = '%';
      out[o++] = hex[*p >> 4];
      out[o++] = hex[*p & 15];
    }
  }
  out[o] = 0;
}

/*
 * Writes one reply line; drops it when the host went away (nobody to read it).
 *
 * POLLHUP here does not mean the host is gone yet: the driver learns that the host
 * connected from a message on the control queue, which a kernel worker handles, while the
 * host's command comes on the port's own queue. A host that connects and writes at once
 * (every hand-out and restore does) can have its command read, run and answered before
 * that worker has run: the write then finds "no host" and would drop the reply the host
 * is waiting for (1 in 20-40 pool hand-outs stalled the agent's full timeout). So on
 * POLLHUP we sleep a millisecond, which lets the worker run, and try again until the
 * deadline.
 */
static void agent_write(const char *line) {
  size_t len = strlen(line), off = 0;
  double started = uptime_ms(), deadline = started + 1000;
  int waited = 0;
  while (off < len && agent.fd >= 0) {
    ssize_t w = write(agent.fd, line + off, len - off);
    if (w > 0) {
      off += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) break;
    struct pollfd p = {.fd = agent.fd, .events = POLLOUT};
    int left = (int)(deadline - uptime_ms());
    if (left <= 0) break;
    int r = poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || (p.revents & (POLLERR | POLLNVAL))) break;
    if (p.revents & POLLHUP) {
      waited = 1;
      usleep(1000);
    }
  }
  if (off < len) logmsg("agent: reply dropped (host gone)");
  else if (waited) logmsg("agent: reply sent once the host's connect reached the driver (%.1f ms)", uptime_ms() - started);
}

static void agent_ok(const char *words) {
  char line[128];
  snprintf(line, sizeof line, "ok %s\n", words);
  agent_write(line);
}

static void agent_err(const char *fmt, ...) {
  char msg[256], enc[800], line[820];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pct_encode(msg, enc, sizeof enc);
  snprintf(line, sizeof line, "err %s\n", enc);
  agent_write(line);
}

/* freeze: quiesce the app for a snapshot. The hooks get their signal (even if an earlier one is
 * still unanswered: a signal sent before Node installed its handler is lost, and each F is
 * answered on its own, so an extra one costs one round trip); we wait up to 1 s for their F,
 * then stop the whole group and flush the disks. */
static void agent_freeze(pid_t app) {
  if (stop_requested) {
    /* Stopping it would hold SIGTERM back until the stop timeout kills it. */
    agent_err("freeze: the app is stopping");
    return;
  }
  if (frozen) {
    agent_ok(frozen_quiesced ? "frozen 1" : "frozen 0");
    return;
  }
  double t0 = uptime_ms();
  frozen = 1; /* from here an F is held for thaw/renew, not answered */
  int already = 0;
  if (hooks.fd >= 0) {
    hooks_drain();
    already = hooks.waiting > 0; /* an F nobody answered yet: the hooks already wait */
    if (!already) kill(app, hooks.signal);
    while (hooks.fd >= 0 && !hooks.waiting) {
      int left = (int)(t0 + FREEZE_WAIT_MS - uptime_ms());
      if (left <= 0) break;
      struct pollfd p = {.fd = hooks.fd, .events = POLLIN};
      if (poll(&p, 1, left) < 0 && errno != EINTR) break;
      hooks_drain();
    }
  }
  frozen_quiesced = hooks.waiting > 0;
  double t1 = uptime_ms();
  signal_app(app, SIGSTOP);
  sync();
  logmsg("agent: frozen (hooks %s in %.1f ms, stop+sync %.1f ms)",
         already ? "were waiting" : frozen_quiesced ? "acknowledged" : hooks.fd >= 0 ? "silent" : "absent",
         t1 - t0, uptime_ms() - t1);
  agent_ok(frozen_quiesced ? "frozen 1" : "frozen 0");
}

/* Lets a frozen app go on: the hooks hear T (or R if a renewal is due), then SIGCONT. */
static void unfreeze(pid_t app) {
  if (!frozen) return;
  hooks_drain();
  frozen = 0;
  hooks_answer();
  signal_app(app, SIGCONT);
}

/* ---- renew ---- */

struct identity {
  struct in_addr ip, mask, gateway;
  int prefix;
  unsigned char mac[6];
  char hostname[64];
  long long time_ms;
  unsigned char entropy[256];
  size_t nentropy;
};

static int parse_uint(const char *s, long long max, long long *out) {
  if (!*s || strlen(s) > 18) return -1;
  long long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
  }
  if (v > max) return -1;
  *out = v;
  return 0;
}

/* Checks every argument before anything changes: a bad renew leaves the machine as it was. */
static const char *parse_identity(char **t, struct identity *id) {
  long long v;
  memset(id, 0, sizeof *id);
  if (inet_pton(AF_INET, t[0], &id->ip) != 1) return "bad ip";
  if (parse_uint(t[1], 32, &v) < 0 || v < 1) return "bad prefix";
  id->prefix = (int)v;
  id->mask.s_addr = htonl(v == 32 ? 0xffffffffu : ~(0xffffffffu >> v));
  if (inet_pton(AF_INET, t[2], &id->gateway) != 1) return "bad gateway";
  if ((id->gateway.s_addr & id->mask.s_addr) != (id->ip.s_addr & id->mask.s_addr) ||
      id->gateway.s_addr == id->ip.s_addr)
    return "gateway outside the subnet";
  const char *m = t[3];
  if (strlen(m) != 17) return "bad mac";
  for (int i = 0; i < 6; i++) {
    int hi = hexval(m[3 * i]), lo = hexval(m[3 * i + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && m[3 * i + 2] != ':')) return "bad mac";
    id->mac[i] = (unsigned char)(hi * 16 + lo);
  }
  if (id->mac[0] & 1) return "multicast mac";
  size_t hl = strlen(t[4]);
  if (hl < 1 || hl > 63 || t[4][0] == '-' || t[4][0] == '.' || t[4][hl - 1] == '-' || t[4][hl - 1] == '.')
    return "bad hostname";
  for (const char *p = t[4]; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
      return "bad hostname";
  memcpy(id->hostname, t[4], hl + 1);
  /* Up to the year 9999: settimeofday takes it and nothing overflows. */
  if (parse_uint(t[5], 253402300799999LL, &id->time_ms) < 0 || id->time_ms < 1) return "bad time";
  size_t el = strlen(t[6]);
  if (el % 2 || el < 64 || el > 512) return "entropy must be 32-256 bytes in hex";
  for (size_t i = 0; i < el / 2; i++) {
    int hi = hexval(t[6][2 * i]), lo = hexval(t[6][2 * i + 1]);
    if (hi < 0 || lo < 0) return "bad entropy hex";
    id->entropy[i] = (unsigned char)(hi * 16 + lo);
  }
  id->nentropy = el / 2;
  return NULL;
}

/* Mixes the host's bytes into the kernel's pool, credits them, and makes the CRNG reseed
 * now: every clone restored from one snapshot holds the same CRNG state until then. */
static int renew_entropy(const struct identity *id) {
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct {
    int entropy_count; /* bits */
    int buf_size;
    unsigned char buf[256];
  } info;
  info.entropy_count = (int)id->nentropy * 8;
  info.buf_size = (int)id->nentropy;
  memcpy(info.buf, id->entropy, id->nentropy);
  int rc = ioctl(fd, RNDADDENTROPY, &info);
  if (rc == 0) rc = ioctl(fd, RNDRESEEDCRNG);
  int saved = errno;
  explicit_bzero(&info, sizeof info);
  close(fd);
  errno = saved;
  return rc;
}

static void set_sin(struct sockaddr *sa, struct in_addr a) {
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = a};
  memcpy(sa, &sin, sizeof sin);
}

/* True when eth0 is up with exactly this MAC, address and netmask already (a warm pool's
 * spare renewed for the VM that takes it): nothing names another machine, so the link
 * need not go down. */
static int net_unchanged(int s, const struct identity *id, short flags) {
  if (!(flags & IFF_UP)) return 0;
  struct ifreq q;
  memset(&q, 0, sizeof q);
  snprintf(q.ifr_name, IFNAMSIZ, "eth0");
  if (ioctl(s, SIOCGIFHWADDR, &q) < 0 || memcmp(q.ifr_hwaddr.sa_data, id->mac, 6) != 0) return 0;
  if (ioctl(s, SIOCGIFADDR, &q) < 0 || ((struct sockaddr_in *)&q.ifr_addr)->sin_addr.s_addr != id->ip.s_addr) return 0;
  if (ioctl(s, SIOCGIFNETMASK, &q) < 0 || ((struct sockaddr_in *)&q.ifr_netmask)->sin_addr.s_addr != id->mask.s_addr) return 0;
  return 1;
}

/* eth0 gets the clone's MAC, address and default route. Taking it down first drops its
 * neighbour entries and routes, which name the snapshot's machine. *kept says the link
 * already had this identity and was left as it was. */
static const char *renew_network(const struct identity *id, int *kept) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return "socket";
  const char *failed = NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "eth0");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
    failed = "eth0";
    goto out;
  }
  short flags = ifr.ifr_flags;
  if (net_unchanged(s, id, flags)) {
    *kept = 1; /* a pool's spare keeps its own address: no link flap, warm neighbour entries */
    goto out;
  }
  ifr.ifr_flags = flags & ~IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
    failed = "eth0 down";
    goto out;
  }
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, id->mac, 6);
  if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0) {
    failed = "set mac";
    goto out;
  }
  set_sin(&ifr.ifr_addr, id->ip);
  if (ioctl(s, SIOCSIFADDR, &ifr) < 0) {
    failed = "set address";
    goto out;
  }
  set_sin(&ifr.ifr_netmask, id->mask);
  if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
    failed = "set netmask";
    goto out;
  }
  if (id->prefix < 31) {
    struct in_addr bcast = {.s_addr = id->ip.s_addr | ~id->mask.s_addr};
    set_sin(&ifr.ifr_broadaddr, bcast);
    ioctl(s, SIOCSIFBRDADDR, &ifr); /* cosmetic: the kernel derived one already */
  }
  /* With arp_notify the kernel announces the new address and MAC (gratuitous ARP) when
   * eth0 comes up: neighbours, QEMU's user-mode network and bridges forget the snapshot's
   * MAC at once instead of sending to it until their entries expire. */
  write_file("/proc/sys/net/ipv4/conf/eth0/arp_notify", "1\n");
  ifr.ifr_flags = flags | IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
    failed = "eth0 up";
    goto out;
  }
  struct rtentry rt;
  memset(&rt, 0, sizeof rt);
  struct in_addr any = {.s_addr = INADDR_ANY};
  set_sin(&rt.rt_dst, any);
  set_sin(&rt.rt_genmask, any);
  set_sin(&rt.rt_gateway, id->gateway);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  rt.rt_dev = ifr.ifr_name;
  if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST) failed = "default route";
out:;
  int saved = errno;
  close(s);
  errno = saved;
  return failed;
}

/* Aborts the TCP connections the snapshot held (every one but listeners and loopback, or
 * with `keep` only those from another address than `keep`): in a clone they belong to the
 * snapshot's machine. Their peers answer the snapshot's address (or closed them long ago),
 * so a request on one would wait for its timeout. Aborted, the app sees ECONNABORTED at
 * once and opens a new connection from its own address. Returns how many, or -1 (errno
 * set). */
static int abort_snapshot_connections(const struct in_addr *keep) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  struct timeval tmo = {.tv_sec = 1};
  setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
  } req;
  memset(&req, 0, sizeof req);
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.r.sdiag_family = AF_INET;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = 0xfff & ~(1u << TCP_LISTEN) & ~1u;
  enum { MAX_STALE = 512 };
  static struct inet_diag_sockid stale[MAX_STALE];
  int n = 0, done = 0, rc = 0;
  if (send(nl, &req, sizeof req, 0) < 0) {
    rc = -1;
    goto out;
  }
  static char buf[16384];
  while (!done) {
    ssize_t len = recv(nl, buf, sizeof buf, 0);
    if (len < 0 && errno == EINTR) continue;
    if (len <= 0) {
      rc = -1;
      goto out;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = 1;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        rc = -1;
        goto out;
      }
      struct inet_diag_msg *m = NLMSG_DATA(h);
      int loopback = (ntohl(m->id.idiag_src[0]) >> 24) == 127;
      int mine = keep && m->id.idiag_src[0] == keep->s_addr;
      if (!loopback && !mine && n < MAX_STALE) stale[n++] = m->id;
    }
  }
  for (int i = 0; i < n; i++) {
    req.nlh.nlmsg_type = SOCK_DESTROY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.r.idiag_states = 0xfff;
    req.r.id = stale[i];
    if (send(nl, &req, sizeof req, 0) < 0) {
      rc = -1;
      goto out;
    }
    ssize_t len = recv(nl, buf, sizeof buf, 0);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    /* ENOENT: it closed meanwhile; anything else is a failure to report. */
    if (len > 0 && NLMSG_OK(h, (size_t)len) && h->nlmsg_type == NLMSG_ERROR) {
      int err = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
      if (err != 0 && err != ENOENT) {
        errno = err;
        rc = -1;
        goto out;
      }
    }
  }
  rc = n;
out:;
  int saved = errno;
  close(nl);
  errno = saved;
  return rc;
}

static void agent_renew(pid_t app, char **t, int keep_connections) {
  struct identity id;
  const char *bad = parse_identity(t, &id);
  if (bad) {
    agent_err("renew: %s", bad);
    return;
  }
  double t0 = uptime_ms();
  if (renew_entropy(&id) < 0) {
    agent_err("renew: entropy: %s", strerror(errno));
    explicit_bzero(&id, sizeof id);
    return;
  }
  explicit_bzero(id.entropy, sizeof id.entropy);
  struct timeval tv = {.tv_sec = (time_t)(id.time_ms / 1000), .tv_usec = (suseconds_t)(id.time_ms % 1000) * 1000};
  if (settimeofday(&tv, NULL) < 0) {
    agent_err("renew: clock: %s", strerror(errno));
    return;
  }
  static char hostname[64];
  if (sethostname(id.hostname, strlen(id.hostname)) < 0) {
    agent_err("renew: hostname: %s", strerror(errno));
    return;
  }
  memcpy(hostname, id.hostname, sizeof hostname);
  cfg.hostname = hostname;
  if (cfg.root_readonly) set_root_readonly(0);
  if (write_host_files() < 0) logmsg("agent: rewriting /etc/hosts: %s", strerror(errno));
  if (cfg.root_readonly && set_root_readonly(1) < 0) logmsg("agent: root read-only again: %s", strerror(errno));
  int kept = 0;
  const char *failed = renew_network(&id, &kept);
  if (failed) {
    /* The app stays frozen: a clone that is not distinct must not run it. */
    agent_err("renew: %s: %s", failed, strerror(errno));
    return;
  }
  int aborted = abort_snapshot_connections(keep_connections ? &id.ip : NULL);
  if (aborted < 0) {
    /* Not fatal: the app's requests on them time out and it reconnects, as before. */
    logmsg("agent: aborting the snapshot's connections: %s", strerror(errno));
    aborted = 0;
  }
  /* The hooks hear R: as the answer to the F they wait with, or else to a freeze signal sent
   * now (a renew without freeze, or one whose freeze signal came before Node listened:
   * their generators need the new entropy all the same). */
  if (hooks.fd >= 0) hooks.renew_due = 1;
  int was_frozen = frozen;
  if (was_frozen) unfreeze(app);
  else hooks_drain();
  if (hooks.fd >= 0 && hooks.renew_due) kill(app, hooks.signal);
  logmsg("agent: renewed as %s %s in %.0f ms%s%s%s", id.hostname, t[0], uptime_ms() - t0, kept ? ", network kept" : "",
         keep_connections ? ", own connections kept" : "", was_frozen ? ", app continued" : "");
  logmsg("agent: %d connection(s) of the snapshot aborted", aborted);
  agent_ok("renewed");
}

/* A paused VM's clock stood still while its vCPUs did (no kvmclock under TCG): the host
 * sets it again on resume. */
static void agent_clock(const char *ms) {
  long long time_ms;
  if (parse_uint(ms, 253402300799999LL, &time_ms) < 0 || time_ms < 1) {
    agent_err("clock: bad time");
    return;
  }
  struct timeval tv = {.tv_sec = (time_t)(time_ms / 1000), .tv_usec = (suseconds_t)(time_ms % 1000) * 1000};
  if (settimeofday(&tv, NULL) < 0) {
    agent_err("clock: %s", strerror(errno));
    return;
  }
  agent_ok("clock");
}

static void agent_command(pid_t app, char *line, size_t len) {
  if (memchr(line, 0, len)) {
    agent_err("NUL byte in line");
    return;
  }
  char *t[9];
  int n = 0;
  for (char *p = line;;) {
    char *sp = strchr(p, ' ');
    if (sp) *sp = 0;
    if (n == 9 || !*p || pct_decode(p) < 0) {
      agent_err(n == 9 ? "too many tokens" : "bad token");
      return;
    }
    t[n++] = p;
    if (!sp) break;
    p = sp + 1;
  }
  if (!strcmp(t[0], "ping") && n == 1) agent_ok("pong");
  else if (!strcmp(t[0], "freeze") && n == 1) agent_freeze(app);
  else if (!strcmp(t[0], "thaw") && n == 1) {
    unfreeze(app);
    logmsg("agent: thawed");
    agent_ok("thawed");
  } else if (!strcmp(t[0], "renew") && (n == 8 || (n == 9 && !strcmp(t[8], "keep-connections"))))
    agent_renew(app, t + 1, n == 9);
  else if (!strcmp(t[0], "clock") && n == 2) agent_clock(t[1]);
  else if (!strcmp(t[0], "ping") || !strcmp(t[0], "freeze") || !strcmp(t[0], "thaw") || !strcmp(t[0], "renew") ||
           !strcmp(t[0], "clock"))
    agent_err("%s: wrong number of arguments", t[0]);
  else agent_err("unknown command");
}

/* Reads what the host sent and runs each complete line. */
static void agent_read(pid_t app) {
  char chunk[1024];
  while (agent.fd >= 0 && agent.connected) {
    ssize_t r = read(agent.fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    if (r <= 0) {
      /* End of file: the host disconnected. SIGIO will say when one comes back. */
      agent.connected = 0;
      agent_reset_line();
      return;
    }
    for (ssize_t i = 0; i < r; i++) {
      char c = chunk[i];
      if (c == '\n') {
        if (agent.overlong) agent_err("line longer than %d bytes", AGENT_LINE_MAX);
        else {
          agent.line[agent.len] = 0;
          agent_command(app, agent.line, agent.len);
        }
        agent_reset_line();
      } else if (!agent.overlong) {
        if (agent.len + 1 >= AGENT_LINE_MAX) agent.overlong = 1;
        else agent.line[agent.len++] = c;
      }
    }
  }
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
  sigaddset(&mask, SIGIO); /* the agent port: host connected, disconnected, or sent data */
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
  if (cfg.root_readonly && set_root_readonly(1) < 0) fatal("remount the root read-only");

  /* The port is announced by the host in control messages after the device probed; it is
   * usually there by now, else give it a moment (and look again while the app starts). */
  agent.possible = virtio_console_present();
  for (int i = 0; agent.possible && i < 40 && !agent_open(); i++) usleep(5000);

  pid_t app = start_app(&oldmask);
  event("\"event\":\"started\",\"pid\":%d", (int)app);

  int ready = 0, stopping = 0;
  double stop_deadline = 0;
  for (;;) {
    int timeout = -1;
    if (agent.fd < 0 && agent.possible && !ready) agent_open();
    /* A frozen app cannot answer, and an HTTP probe would wait 500 ms for it. */
    if (!ready && !frozen) {
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
    struct pollfd pfd[3];
    int n = 0, ai = -1, hi = -1;
    pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
    /* The agent port only while a host is connected (else it reports POLLHUP without end). */
    if (agent.fd >= 0 && agent.connected) {
      ai = n;
      pfd[n++] = (struct pollfd){.fd = agent.fd, .events = POLLIN};
    }
    if (hooks.fd >= 0) {
      hi = n;
      pfd[n++] = (struct pollfd){.fd = hooks.fd, .events = POLLIN};
    }
    int r = poll(pfd, (nfds_t)n, timeout);
    if (r <= 0) continue;
    if (ai >= 0 && pfd[ai].revents) {
      if (pfd[ai].revents & (POLLERR | POLLNVAL)) {
        /* Not something the driver does today: give the port up rather than spin on it. */
        logmsg("agent: port error, closing it");
        close(agent.fd);
        agent.fd = -1;
        agent.possible = 0;
      } else if (pfd[ai].revents & POLLIN) {
        agent_read(app);
      } else {
        agent_recheck();
      }
    }
    if (hi >= 0 && pfd[hi].revents) hooks_drain();
    if (!(pfd[0].revents & POLLIN)) continue;
    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) != sizeof si) continue;
    if (si.ssi_signo == SIGCHLD) {
      int status;
      pid_t p;
      while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p == app) finish(status);
      }
    } else if (si.ssi_signo == SIGIO) {
      agent_recheck();
    } else if (!stopping) {
      /* SIGINT (Ctrl-Alt-Del), SIGTERM, SIGPWR or SIGHUP: a stop request. A frozen app
       * is continued first, or SIGTERM would wait for a SIGCONT that never comes. */
      event("\"event\":\"stopping\"");
      stop_requested = 1;
      unfreeze(app);
      signal_app(app, SIGTERM);
      stopping = 1;
      stop_deadline = uptime_ms() + (double)cfg.stop_timeout_ms;
    }
  }
}
