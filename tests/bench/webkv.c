// webkv: a lean, bounded closed-loop load generator for Momento's HTTP API on Cellar's API
// port (the web front-end, HTTP/1.1 keep-alive), the counterpart of ../shared/tools/kvbench
// (RESP) and h2load (gRPC) in tests/bench/web.sh. 127.0.0.1 only, one thread, epoll.
//
//   webkv -p PORT [-o get|set] [-c CONNS] [-d PIPELINE] [-t SECS] [-w WARMUP] [-r KEYSPACE]
//         [-v VALSIZE] [-n CACHE] [-a TOKEN] [-T TTL_SECONDS] [-C SERVER_PID]
//
//   C connections, each sending a batch of D requests (default 1: one in flight per
//   connection) and waiting for all D answers; latency of each = batch sent -> its answer
//   (as kvbench). get: GET /cache/CACHE?key=K; set: PUT /cache/CACHE?key=K&ttl_seconds=T
//   with a VALSIZE-byte body of 'x'. Keys "key:%012u", uniform in [0, KEYSPACE) (-r 1: the
//   one key "key:000000000000", as kvbench -r 1). -a TOKEN: "Authorization: TOKEN" (raw, as
//   Momento's HTTP API takes it; none by default, which Cellar --dev-no-auth accepts).
//   WARMUP s unmeasured, then SECS measured.
//
// Answers: get 200 with a VALSIZE-byte body is a hit, 404 "Key Not Found" a miss; set 204 is
// done; anything else is an error (the first one goes to stderr; the connection stays if the
// server keeps it, and is counted in closed otherwise). Prints one line:
//   op=.. conns=.. pipeline=.. secs=.. ops=.. ops_per_s=.. misses=.. errors=.. bad_len=..
//   closed=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. cpu_pct=.. srv_cpu_pct=..
// cpu_pct: this process's CPU over the measured window in % of one core (near 100: the
// client was the limit); srv_cpu_pct: the same for -C's process (-1 without -C).
// Exit status: 0 after a run, 1 if it could not connect or every connection closed, 2 on
// bad usage.
//
// Build: cc -O2 -o webkv tests/bench/webkv.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXUS 1000000  // latencies over 1 s count as 1 s
static uint32_t hist[MAXUS + 1];
static uint64_t max_us;

static uint64_t NowNs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
static uint64_t CpuNs(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return ((uint64_t)u.ru_utime.tv_sec + (uint64_t)u.ru_stime.tv_sec) * 1000000000ull +
         ((uint64_t)u.ru_utime.tv_usec + (uint64_t)u.ru_stime.tv_usec) * 1000ull;
}
static uint64_t ProcCpuNs(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')');
  unsigned long long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
    return 0;
  }
  return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}
static uint64_t rs = 88172645463325252ull;
static uint64_t Rand(void) {
  rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
  return rs;
}

typedef struct {
  int fd, pending;  // answers still owed for the batch in flight
  uint64_t t0;      // when the batch went out
  char *in;
  size_t in_len, in_cap;
} Conn;

static int op_set, D = 1, R = 1000000, V = 100, ttl = 3600, measuring, epfd, open_conns;
static const char *cache = "default", *token = NULL;
static char *val, *wbuf;
static uint64_t ops, misses, errors, bad_len, closed_conns;
static char first_error[256];

static void Die(const char *m) {
  fprintf(stderr, "webkv: %s\n", m);
  exit(1);
}

static size_t BuildBatch(char *b) {
  size_t n = 0;
  for (int i = 0; i < D; i++) {
    const unsigned k = (unsigned)(Rand() % (uint64_t)R);
    if (op_set) {
      n += (size_t)sprintf(b + n,
                           "PUT /cache/%s?key=key:%012u&ttl_seconds=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Length: %d\r\n",
                           cache, k, ttl, V);
    } else {
      n += (size_t)sprintf(b + n, "GET /cache/%s?key=key:%012u HTTP/1.1\r\nHost: 127.0.0.1\r\n", cache, k);
    }
    if (token) n += (size_t)sprintf(b + n, "Authorization: %s\r\n", token);
    b[n++] = '\r', b[n++] = '\n';
    if (op_set) memcpy(b + n, val, (size_t)V), n += (size_t)V;
  }
  return n;
}

static void Send(Conn *c) {
  const size_t n = BuildBatch(wbuf);
  // Small requests on a fresh round trip: the socket buffer takes them at once.
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(c->fd, wbuf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) Die("write failed (the socket buffer should take a batch)");
    off += (size_t)w;
  }
  c->pending = D;
  c->t0 = NowNs();
}

static void Record(uint64_t t0) {
  if (!measuring) return;
  uint64_t us = (NowNs() - t0) / 1000;
  if (us > max_us) max_us = us;
  if (us > MAXUS) us = MAXUS;
  hist[us]++;
  ops++;
}

// One answer at p: returns its length, or 0 if incomplete. Sets *status.
static size_t ParseAnswer(const char *p, size_t n, int *status, size_t *body_len, int *closes) {
  const char *e = memmem(p, n, "\r\n\r\n", 4);
  if (!e) return 0;
  const size_t head = (size_t)(e - p) + 4;
  *status = (n >= 12 && !memcmp(p, "HTTP/1.1 ", 9)) ? atoi(p + 9) : -1;
  long len = 0;
  *closes = 0;
  for (const char *l = memchr(p, '\n', head); l && l < e; l = memchr(l + 1, '\n', (size_t)(e - l))) {
    if (!strncasecmp(l + 1, "content-length:", 15)) len = atol(l + 16);
    if (!strncasecmp(l + 1, "connection: close", 17)) *closes = 1;
  }
  if (n - head < (size_t)len) return 0;
  *body_len = (size_t)len;
  return head + (size_t)len;
}

static void CloseConn(Conn *c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  closed_conns++;
  if (--open_conns == 0) Die("every connection closed");
}

static void OnReadable(Conn *c) {
  for (;;) {
    if (c->in_cap - c->in_len < 4096) {
      c->in_cap = c->in_cap ? c->in_cap * 2 : 16384;
      c->in = realloc(c->in, c->in_cap);
      if (!c->in) Die("out of memory");
    }
    ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (r < 0 && errno == EAGAIN) break;
    if (r <= 0) {
      if (!first_error[0]) snprintf(first_error, sizeof first_error, "the server closed a connection");
      CloseConn(c);
      return;
    }
    c->in_len += (size_t)r;
    if ((size_t)r < c->in_cap - c->in_len + (size_t)r) break;
  }
  size_t off = 0, n, body;
  int status, closes = 0;
  while (c->pending > 0 && (n = ParseAnswer(c->in + off, c->in_len - off, &status, &body, &closes)) > 0) {
    // A miss is 404 "Key Not Found"; 404 "Cache Not Found" is an error.
    const int miss = status == 404 && body == 13 && !memcmp(c->in + off + n - body, "Key Not Found", 13);
    int ok = op_set ? status == 204 : status == 200 || miss;
    if (ok && !op_set && status == 200 && body != (size_t)V) ok = 0, bad_len += measuring;
    if (ok && miss) misses += measuring;
    if (!ok) {
      errors += measuring;
      if (!first_error[0]) {
        const char *nl = memchr(c->in + off, '\r', n);
        snprintf(first_error, sizeof first_error, "answer '%.*s' (body %zu bytes: %.*s)",
                 (int)(nl ? nl - (c->in + off) : 40), c->in + off, body,
                 (int)(body < 100 ? body : 100), c->in + off + n - body);
      }
    }
    Record(c->t0);
    off += n;
    c->pending--;
    if (closes) break;
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
  if (closes) {
    CloseConn(c);
    return;
  }
  if (c->pending == 0) Send(c);
}

static uint64_t Percentile(double q, uint64_t total) {
  uint64_t want = (uint64_t)(q * (double)total + 0.5), cum = 0;
  if (want == 0) want = 1;
  for (uint64_t us = 0; us <= MAXUS; us++) {
    cum += hist[us];
    if (cum >= want) return us;
  }
  return MAXUS;
}

int main(int argc, char **argv) {
  int port = 0, C = 50, T = 5, opt, server_pid = 0;
  double W = 1;
  while ((opt = getopt(argc, argv, "p:o:c:d:t:w:r:v:n:a:T:C:")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'o':
        if (strcmp(optarg, "get") && strcmp(optarg, "set")) goto usage;
        op_set = !strcmp(optarg, "set");
        break;
      case 'c': C = atoi(optarg); break;
      case 'd': D = atoi(optarg); break;
      case 't': T = atoi(optarg); break;
      case 'w': W = atof(optarg); break;
      case 'r': R = atoi(optarg); break;
      case 'v': V = atoi(optarg); break;
      case 'n': cache = optarg; break;
      case 'a': token = optarg; break;
      case 'T': ttl = atoi(optarg); break;
      case 'C': server_pid = atoi(optarg); break;
      default: goto usage;
    }
  }
  if (port <= 0 || C < 1 || C > 20000 || D < 1 || D > 256 || T < 1 || T > 600 || W < 0 || W > 60 ||
      R < 1 || V < 0 || V > (1 << 20) || ttl < 1 || strlen(cache) > 200 || (token && strlen(token) > 2000)) {
    goto usage;
  }
  signal(SIGPIPE, SIG_IGN);
  val = malloc((size_t)V + 1);
  memset(val, 'x', (size_t)V);
  wbuf = malloc((size_t)D * ((size_t)V + 2600));
  epfd = epoll_create1(0);
  Conn *cs = calloc((size_t)C, sizeof *cs);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  for (int i = 0; i < C; i++) {
    Conn *c = &cs[i];
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
      perror("webkv: connect");
      return 1;
    }
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    open_conns++;
  }
  for (int i = 0; i < C; i++) Send(&cs[i]);
  const uint64_t start = NowNs(), mstart = start + (uint64_t)(W * 1e9);
  const uint64_t end = mstart + (uint64_t)T * 1000000000ull;
  uint64_t m0 = 0, cpu0 = 0, srv0 = 0;
  struct epoll_event evs[256];
  for (;;) {
    const uint64_t now = NowNs();
    if (!measuring && now >= mstart) {
      measuring = 1, m0 = now, cpu0 = CpuNs(), srv0 = server_pid ? ProcCpuNs(server_pid) : 0;
    }
    if (now >= end) break;
    const uint64_t until = measuring ? end : mstart;
    int ms = (int)((until - now) / 1000000) + 1;
    int n = epoll_wait(epfd, evs, 256, ms > 100 ? 100 : ms);
    for (int i = 0; i < n; i++) {
      Conn *c = evs[i].data.ptr;
      if (c->fd >= 0) OnReadable(c);
    }
  }
  const double secs = (double)(NowNs() - m0) / 1e9, cpu = (double)(CpuNs() - cpu0) / 1e9;
  const double srv = server_pid ? (double)(ProcCpuNs(server_pid) - srv0) / 1e9 : -0.01;
  uint64_t total = 0;
  for (int us = 0; us <= MAXUS; us++) total += hist[us];
  printf("op=%s conns=%d pipeline=%d secs=%.2f ops=%llu ops_per_s=%.0f misses=%llu errors=%llu "
         "bad_len=%llu closed=%llu p50_us=%llu p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu "
         "cpu_pct=%.0f srv_cpu_pct=%.0f\n",
         op_set ? "set" : "get", C, D, secs, (unsigned long long)ops, (double)ops / secs,
         (unsigned long long)misses, (unsigned long long)errors, (unsigned long long)bad_len,
         (unsigned long long)closed_conns,
         (unsigned long long)(total ? Percentile(0.5, total) : 0),
         (unsigned long long)(total ? Percentile(0.9, total) : 0),
         (unsigned long long)(total ? Percentile(0.99, total) : 0),
         (unsigned long long)(total ? Percentile(0.999, total) : 0), (unsigned long long)max_us,
         cpu * 100 / secs, srv * 100 / secs);
  if (first_error[0]) fprintf(stderr, "webkv: %s\n", first_error);
  return 0;
usage:
  fprintf(stderr,
          "usage: webkv -p PORT [-o get|set] [-c CONNS] [-d PIPELINE] [-t SECS] [-w WARMUP] "
          "[-r KEYSPACE] [-v VALSIZE] [-n CACHE] [-a TOKEN] [-T TTL_SECONDS] [-C SERVER_PID]\n");
  return 2;
}
