// collbench: a lean closed-loop RESP load generator for any command, for benchmarks where
// redis-benchmark would run out of CPU before the server does (2-core machines).
//
//   collbench -p PORT [-c CONNS] [-d PIPELINE] [-t SECS] [-w WARMUP] [-r KEYSPACE]
//             [-n MAXREQ] -- CMD ARG ...
//
// One thread, epoll, CONNS connections to 127.0.0.1:PORT. Each connection sends a batch of
// PIPELINE requests in one write and waits for all their replies before the next batch (as
// redis-benchmark -P does); a request's latency runs from its batch's write to its reply.
// Every "__rand_int__" in an argument is replaced, per request and per occurrence, by a
// uniform random integer in [0, KEYSPACE) written as 12 zero-padded digits (as
// redis-benchmark -r does), so request sizes are fixed: each connection keeps PIPELINE
// encoded copies of the command and only rewrites the digits.
//
// Replies of any RESP2 type (and the RESP3 scalars, sets and maps) are parsed incrementally,
// nested aggregates included, without buffering bulk payloads; a top-level error reply is
// counted apart (the first one is printed to stderr) and so is a top-level nil.
//
// Runs WARMUP seconds unmeasured, then SECS measured, then stops (or earlier, once MAXREQ
// requests in all, warm-up included, have been answered). Memory: CONNS x (64 KiB read
// buffer + PIPELINE encoded requests) plus a fixed latency histogram. Prints one line:
//   cmd=.. conns=.. pipeline=.. keyspace=.. secs=.. ops=.. ops_per_s=.. errors=.. nils=..
//   p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. cpu_pct=..
// (cpu_pct: this process's user+system CPU over the measured window, % of one core).
// Exit status: 0 after a run (errors or not), 1 on a connection or protocol failure, 2 on
// bad usage.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RAND_TOKEN "__rand_int__"
#define RAND_DIGITS 12
#define READ_BUF (64 * 1024)  // per connection; also the longest reply line accepted
#define MAX_DEPTH 32          // nesting of aggregate replies
#define MAX_BATCH_BYTES (64u << 20)  // all connections' encoded requests together

// ---- Latency histogram: log-linear over microseconds ---------------------------------
// Values below 2^kSubBits are exact; above, each power of two is cut into 2^(kSubBits-1)
// buckets (relative error < 0.2%). Covers up to 2^kMaxExp us (~18 minutes).
enum { kSubBits = 10, kMaxExp = 30 };
#define HIST_BUCKETS ((1u << kSubBits) + (kMaxExp - kSubBits + 1) * (1u << (kSubBits - 1)))
static uint64_t hist[HIST_BUCKETS];
static uint64_t max_us;

static unsigned BucketOf(uint64_t us) {
  if (us < (1u << kSubBits)) return (unsigned)us;
  if (us >= (1ull << kMaxExp)) us = (1ull << kMaxExp) - 1;
  unsigned e = 63 - (unsigned)__builtin_clzll(us);  // >= kSubBits
  unsigned sub = (unsigned)(us >> (e - (kSubBits - 1))) & ((1u << (kSubBits - 1)) - 1);
  return (1u << kSubBits) + (e - kSubBits) * (1u << (kSubBits - 1)) + sub;
}
static uint64_t BucketLow(unsigned b) {  // smallest value in bucket b
  if (b < (1u << kSubBits)) return b;
  b -= 1u << kSubBits;
  unsigned e = b / (1u << (kSubBits - 1)) + kSubBits, sub = b % (1u << (kSubBits - 1));
  return ((uint64_t)((1u << (kSubBits - 1)) | sub)) << (e - (kSubBits - 1));
}

// ---- Small helpers --------------------------------------------------------------------
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
static void Die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("collbench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;  // fixed: every run sends the same keys
static inline uint64_t NextRand(void) {               // xorshift64*
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

// ---- The command template -------------------------------------------------------------
static char *req_tmpl;        // one encoded request, "__rand_int__" as 12 '0's
static size_t req_len;
static size_t *rand_off;      // offsets of the 12-digit fields in req_tmpl
static size_t rand_count;
static uint64_t keyspace = 1000000;

static void BuildTemplate(int argc, char **argv) {
  size_t tok = strlen(RAND_TOKEN), cap = 32, n = 0, fields = 0;
  for (int i = 0; i < argc; i++) {
    size_t len = strlen(argv[i]);
    for (const char *s = argv[i]; (s = strstr(s, RAND_TOKEN)) != NULL; s += tok) fields++;
    cap += len + fields * RAND_DIGITS + 32;
  }
  req_tmpl = malloc(cap);
  rand_off = calloc(fields ? fields : 1, sizeof *rand_off);
  if (!req_tmpl || !rand_off) Die("out of memory");
  n += (size_t)sprintf(req_tmpl + n, "*%d\r\n", argc);
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    size_t len = strlen(a), k = 0;
    for (const char *s = a; (s = strstr(s, RAND_TOKEN)) != NULL; s += tok) k++;
    n += (size_t)sprintf(req_tmpl + n, "$%zu\r\n", len - k * tok + k * RAND_DIGITS);
    for (const char *s = a;;) {
      const char *hit = strstr(s, RAND_TOKEN);
      size_t lit = hit ? (size_t)(hit - s) : strlen(s);
      memcpy(req_tmpl + n, s, lit);
      n += lit;
      if (!hit) break;
      rand_off[rand_count++] = n;
      memset(req_tmpl + n, '0', RAND_DIGITS);
      n += RAND_DIGITS;
      s = hit + tok;
    }
    req_tmpl[n++] = '\r';
    req_tmpl[n++] = '\n';
  }
  req_len = n;
}

static inline void Randomize(char *req) {
  for (size_t i = 0; i < rand_count; i++) {
    uint64_t v = NextRand() % keyspace;
    char *d = req + rand_off[i] + RAND_DIGITS;
    for (int j = 0; j < RAND_DIGITS; j++) {
      *--d = (char)('0' + v % 10);
      v /= 10;
    }
  }
}

// ---- Connections ----------------------------------------------------------------------
typedef struct {
  int fd;
  char *wbuf;       // pipeline copies of the request
  size_t wlen;      // bytes of the current batch
  size_t woff;      // bytes of it written so far
  int want_out;     // EPOLLOUT registered (a batch only partly written)
  int outstanding;  // replies still due for the current batch
  uint64_t t0;      // batch write time, ns
  char *rbuf;
  size_t rlen;      // unparsed bytes at rbuf[0..rlen)
  // Reply parser state, kept across reads.
  uint64_t skip;    // bulk payload + CRLF bytes still to skip
  int depth;        // open aggregates
  int64_t left[MAX_DEPTH];  // elements still due in each open aggregate
  char top_type;    // type byte of the top-level reply being parsed
  int top_nil;
} Conn;

static int pipeline = 1, measuring;
static uint64_t ops, errors, nils;
static uint64_t sent, max_requests;  // requests sent in all; 0 = no limit
static int epfd;
static char first_error[256];

static void Record(Conn *c, uint64_t now) {
  if (!measuring) return;
  ops++;
  if (c->top_type == '-' || c->top_type == '!') errors++;
  if (c->top_nil) nils++;
  uint64_t us = now > c->t0 ? (now - c->t0) / 1000 : 0;
  hist[BucketOf(us)]++;
  if (us > max_us) max_us = us;
}

// An element ended (a scalar, a bulk payload or an empty aggregate); returns 1 if that
// completed a top-level reply.
static inline int ElementDone(Conn *c) {
  while (c->depth > 0) {
    if (--c->left[c->depth - 1] > 0) return 0;
    c->depth--;
  }
  return 1;
}

static int64_t ParseInt(const char *p, const char *end, int *ok) {
  int neg = 0;
  int64_t v = 0;
  if (p < end && *p == '-') neg = 1, p++;
  *ok = p < end;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9') { *ok = 0; break; }
    v = v * 10 + (*p - '0');
  }
  return neg ? -v : v;
}

// Consumes what it can of rbuf; returns the number of complete top-level replies.
static int ParseReplies(Conn *c, uint64_t now) {
  char *p = c->rbuf, *end = c->rbuf + c->rlen;
  int done = 0;
  while (p < end) {
    if (c->skip) {
      uint64_t avail = (uint64_t)(end - p), k = c->skip < avail ? c->skip : avail;
      p += k;
      c->skip -= k;
      if (c->skip) break;
      if (ElementDone(c)) Record(c, now), done++;
      continue;
    }
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break;
    char *line_end = nl > p && nl[-1] == '\r' ? nl - 1 : nl, type = *p;
    if (c->depth == 0) c->top_type = type, c->top_nil = 0;
    int ok = 1, complete = 0;
    int64_t n = 0;
    switch (type) {
      case '+': case ':': case ',': case '#': case '(':
        complete = 1;
        break;
      case '-':
        if (c->depth == 0 && !first_error[0]) {
          size_t l = (size_t)(line_end - p - 1);
          if (l >= sizeof first_error) l = sizeof first_error - 1;
          memcpy(first_error, p + 1, l);
          first_error[l] = 0;
        }
        complete = 1;
        break;
      case '_':
        if (c->depth == 0) c->top_nil = 1;
        complete = 1;
        break;
      case '$': case '!': case '=':
        n = ParseInt(p + 1, line_end, &ok);
        if (!ok) break;
        if (n < 0) {
          if (c->depth == 0) c->top_nil = 1;
          complete = 1;
        } else {
          c->skip = (uint64_t)n + 2;
        }
        break;
      case '*': case '~': case '%':
        n = ParseInt(p + 1, line_end, &ok);
        if (!ok) break;
        if (type == '%') n *= 2;
        if (n <= 0) {
          if (n < 0 && c->depth == 0) c->top_nil = 1;
          complete = 1;
        } else {
          if (c->depth == MAX_DEPTH) Die("reply nested deeper than %d", MAX_DEPTH);
          c->left[c->depth++] = n;
        }
        break;
      default:
        ok = 0;
    }
    if (!ok) Die("protocol error: unexpected reply line '%.*s'", (int)(line_end - p), p);
    p = nl + 1;
    if (complete && ElementDone(c)) Record(c, now), done++;
  }
  c->rlen = (size_t)(end - p);
  if (c->rlen && p != c->rbuf) memmove(c->rbuf, p, c->rlen);
  if (c->rlen == READ_BUF) Die("reply line longer than %d bytes", READ_BUF);
  return done;
}

static void SetOut(Conn *c, int on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev)) Die("epoll_ctl: %s", strerror(errno));
  c->want_out = on;
}

static void Flush(Conn *c) {
  while (c->woff < c->wlen) {
    ssize_t w = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      Die("write: %s", strerror(errno));
    }
    c->woff += (size_t)w;
  }
  if ((c->woff < c->wlen) != c->want_out) SetOut(c, c->woff < c->wlen);
}

// Sends the next batch; returns 0 if the request limit leaves nothing to send.
static int SendBatch(Conn *c) {
  uint64_t k = (uint64_t)pipeline;
  if (max_requests) {
    if (sent >= max_requests) return 0;
    if (max_requests - sent < k) k = max_requests - sent;
  }
  for (uint64_t i = 0; i < k; i++) Randomize(c->wbuf + i * req_len);
  sent += k;
  c->outstanding = (int)k;
  c->wlen = (size_t)k * req_len;
  c->woff = 0;
  c->t0 = NowNs();
  Flush(c);
  return 1;
}

static void Usage(void) {
  fprintf(stderr,
          "usage: collbench -p PORT [-c CONNS] [-d PIPELINE] [-t SECS] [-w WARMUP] "
          "[-r KEYSPACE] [-n MAXREQ] -- CMD [ARG ...]\n"
          "  any argument may hold __rand_int__ (a random integer below KEYSPACE, 12 digits)\n");
  exit(2);
}

static double ArgNum(const char *s, double lo, double hi, const char *what) {
  char *e;
  errno = 0;
  double v = strtod(s, &e);
  if (errno || e == s || *e || v < lo || v > hi) {
    fprintf(stderr, "collbench: %s must be in [%g, %g], got '%s'\n", what, lo, hi, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  int port = 0, conns = 50, opt;
  double secs = 10, warmup = 1;
  while ((opt = getopt(argc, argv, "+p:c:d:t:w:r:n:h")) != -1) {
    switch (opt) {
      case 'p': port = (int)ArgNum(optarg, 1, 65535, "-p PORT"); break;
      case 'c': conns = (int)ArgNum(optarg, 1, 10000, "-c CONNS"); break;
      case 'd': pipeline = (int)ArgNum(optarg, 1, 100000, "-d PIPELINE"); break;
      case 't': secs = ArgNum(optarg, 0.01, 3600, "-t SECS"); break;
      case 'w': warmup = ArgNum(optarg, 0, 600, "-w WARMUP"); break;
      case 'r': keyspace = (uint64_t)ArgNum(optarg, 1, 1e12, "-r KEYSPACE"); break;
      case 'n': max_requests = (uint64_t)ArgNum(optarg, 1, 1e15, "-n MAXREQ"); break;
      default: Usage();
    }
  }
  if (!port || optind >= argc) Usage();
  BuildTemplate(argc - optind, argv + optind);
  if ((double)req_len * pipeline * conns > MAX_BATCH_BYTES)
    Die("conns x pipeline x request size exceeds %u bytes", MAX_BATCH_BYTES);
  signal(SIGPIPE, SIG_IGN);

  epfd = epoll_create1(0);
  if (epfd < 0) Die("epoll_create1: %s", strerror(errno));
  Conn *cs = calloc((size_t)conns, sizeof *cs);
  if (!cs) Die("out of memory");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < conns; i++) {
    Conn *c = &cs[i];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) Die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr))
      Die("connect 127.0.0.1:%d: %s", port, strerror(errno));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->rbuf = malloc(READ_BUF);
    c->wbuf = malloc((size_t)pipeline * req_len);
    if (!c->rbuf || !c->wbuf) Die("out of memory");
    for (int j = 0; j < pipeline; j++) memcpy(c->wbuf + (size_t)j * req_len, req_tmpl, req_len);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev)) Die("epoll_ctl: %s", strerror(errno));
  }

  uint64_t t_start = NowNs();
  uint64_t t_measure = t_start + (uint64_t)(warmup * 1e9);
  uint64_t t_end = t_measure + (uint64_t)(secs * 1e9), t_stop = 0, cpu0 = CpuNs(), cpu1;
  int busy = 0;  // connections with a batch in flight
  for (int i = 0; i < conns; i++) busy += SendBatch(&cs[i]);
  if (warmup <= 0) measuring = 1, t_measure = NowNs(), cpu0 = CpuNs();

  struct epoll_event evs[256];
  for (;;) {
    uint64_t now = NowNs();
    if (!measuring && now >= t_measure) measuring = 1, t_measure = now, cpu0 = CpuNs();
    if (now >= t_end || busy == 0) { t_stop = now; break; }
    uint64_t next = measuring ? t_end : t_measure;
    int timeout_ms = (int)((next - now) / 1000000) + 1;
    if (timeout_ms > 100) timeout_ms = 100;
    int n = epoll_wait(epfd, evs, 256, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      Die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      Conn *c = evs[i].data.ptr;
      if (evs[i].events & EPOLLOUT) Flush(c);
      if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      for (;;) {
        size_t room = READ_BUF - c->rlen;
        ssize_t r = read(c->fd, c->rbuf + c->rlen, room);
        if (r < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) break;
          Die("read: %s", strerror(errno));
        }
        if (r == 0) Die("server closed a connection");
        c->rlen += (size_t)r;
        int got = ParseReplies(c, NowNs());
        if (got > c->outstanding) Die("more replies than requests (server sent unsolicited data?)");
        c->outstanding -= got;
        if ((size_t)r < room) break;
      }
      if (c->outstanding == 0 && c->woff == c->wlen) busy -= !SendBatch(c);
    }
  }
  cpu1 = CpuNs();

  double msecs = measuring && t_stop > t_measure ? (double)(t_stop - t_measure) / 1e9 : 0;
  double qs[4] = {0.5, 0.9, 0.99, 0.999};
  uint64_t qv[4] = {0, 0, 0, 0}, cum = 0;
  int qi = 0;
  for (unsigned b = 0; b < HIST_BUCKETS && qi < 4 && ops; b++) {
    cum += hist[b];
    while (qi < 4 && (double)cum >= qs[qi] * (double)ops) qv[qi++] = BucketLow(b);
  }
  if (first_error[0]) fprintf(stderr, "collbench: first error reply: %s\n", first_error);
  printf("cmd=%s conns=%d pipeline=%d keyspace=%llu secs=%.2f ops=%llu ops_per_s=%.0f "
         "errors=%llu nils=%llu p50_us=%llu p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu "
         "cpu_pct=%.0f\n",
         argv[optind], conns, pipeline, (unsigned long long)keyspace, msecs,
         (unsigned long long)ops, msecs > 0 ? (double)ops / msecs : 0.0,
         (unsigned long long)errors, (unsigned long long)nils, (unsigned long long)qv[0],
         (unsigned long long)qv[1], (unsigned long long)qv[2], (unsigned long long)qv[3],
         (unsigned long long)max_us,
         msecs > 0 ? (double)(cpu1 - cpu0) / 1e7 / msecs : 0.0);
  return 0;
}
