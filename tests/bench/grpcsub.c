// grpcsub: a lean, bounded topics fan-out load generator (127.0.0.1 only) for Cellar's gRPC
// Pubsub service (cache_client.pubsub.Pubsub over h2c) and for any Redis-protocol pub/sub.
//
//   grpcsub -p PORT [-m grpc|resp|ws] [-q grpc|resp] [-P PUBPORT] [-s SUBS] [-k STREAMS]
//           [-c TOPICS] [-d INFLIGHT] [-r RATE] [-t SECS] [-w WARMUP] [-v PAYLOAD]
//           [-n CACHE] [-a TOKEN] [-i IDLE_SECS] [-S SETUP_SECS] [-D DRAIN_SECS] [-C PID]
//
//   -m  subscribers' protocol: grpc (default): ceil(SUBS / STREAMS) h2c connections, each
//       carrying STREAMS Subscribe streams (default 100, as the Momento SDK caps a channel);
//       resp: SUBS connections, one SUBSCRIBE each.
//       ws: SUBS connections, each a WebSocket on the API port's web front-end
//       (GET /topics/CACHE/TOPIC/ws, ?token=TOKEN with -a): a subscription is confirmed by
//       its first text frame, {"heartbeat":{}}; items are JSON text frames
//       {"item":{"topic_sequence_number":N,..,"value":{"text":".."}}} ({"binary":"<base64>"}
//       too); sequence numbers are checked as gRPC's. Publishes go over RESP by default
//       (-q resp -P RESP_PORT): PUBLISH's answer counts WebSocket subscribers too.
//   -q  publisher's protocol (default: as -m; resp for -m ws), on PUBPORT (default PORT): one connection,
//       unary Publish calls (gRPC) or pipelined PUBLISH commands (RESP).
//   Subscriber i listens to topic "ch:<i % TOPICS>"; publishes go round-robin over the
//   topics; a payload is PAYLOAD bytes whose first 20 are the send time (CLOCK_MONOTONIC
//   ns, decimal), the rest 'x' (as ../shared/tools/psbench does).
//   -d  at most INFLIGHT publishes unanswered. Without -r the publisher is closed-loop: it
//       keeps INFLIGHT in flight (each answer sends the next). -r RATE: one publish every
//       1/RATE s (timerfd), still at most INFLIGHT unanswered; a publish sent more than
//       1 ms after its time is counted in late_pubs (client or server could not keep up).
//   -i  idle mode, for memory measurements: subscribe everyone, print one line
//       "ready subs=.. conns=.. setup_s=.." on stdout, then hold the subscriptions for
//       IDLE_SECS (answering heartbeats and pings, publishing nothing) and exit.
//   -S  every subscription must be confirmed within SETUP_SECS (default 60): gRPC by the
//       stream's first message (the server sends a heartbeat at once), RESP by the
//       subscribe reply, WebSocket by the 101 answer and the first (heartbeat) frame. Otherwise, or if any is refused, exit 1 naming the first error.
//   -a  the gRPC authorization header, the WebSocket's ?token= (none by default: Cellar
//       --dev-no-auth accepts that).
//   -C  the server's pid: its CPU use over the measured window is reported (srv_cpu_pct).
//
// Runs WARMUP s unmeasured, then SECS measured, then drains: no more publishes, and up to
// DRAIN_SECS (-D, default 10) for the answers in flight and every delivery the answered
// publishes promise (gRPC: the topic's subscribers per successful Publish; RESP: the sum
// of PUBLISH's answers), so a message never delivered shows as undelivered rather than
// as a backlog. Deliveries received in the measured window count, each with its
// publish-to-receive latency; publishes count when answered in it. gRPC subscribers also
// check each stream's topic_sequence_number: a step back is a dup, a skip of n is n lost.
// Prints one line:
//   sub=.. pub=.. subs=.. conns=.. topics=.. pub_inflight=.. rate=.. payload=.. secs=..
//   publishes_per_s=.. deliveries_per_s=.. fanout=.. p50_us=.. p90_us=.. p99_us=..
//   p999_us=.. max_us=.. lost=.. dups=.. heartbeats=.. discontinuities=.. late_pubs=..
//   pub_errors=.. sub_errors=.. pub_reply_min=.. pub_reply_max=.. cpu_pct=..
//   srv_cpu_pct=.. setup_s=.. expected=.. received=.. undelivered=.. excess=.. drain_s=..
// fanout: deliveries per publish in the window, below the subscriber count when the
// server accepts publishes faster than it delivers them. pub_reply: the RESP PUBLISH
// answers (subscribers reached). cpu_pct: this process's CPU over the measured window, in
// % of one core (near 100: the client was the limit); srv_cpu_pct: the same for -C's
// process (-1 without -C). expected/received: deliveries over the whole run.
// The first error of each kind goes to stderr.
// Exit status: 0 after a run (error counts or not), 1 on a setup or connection failure,
// 2 on bad usage.
//
// Build: cc -O2 -o grpcsub tests/bench/grpcsub.c -lnghttp2
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define STAMP_DIGITS 20
#define SUBSCRIBE_PATH "/cache_client.pubsub.Pubsub/Subscribe"
#define PUBLISH_PATH "/cache_client.pubsub.Pubsub/Publish"

// ---- Latency histogram: log-linear over microseconds ----------------------------------
// Exact below 1024 us; above, 512 buckets per power of two (relative error < 0.2%).
enum { kSubBits = 10, kMaxExp = 32 };
#define HIST_BUCKETS ((1u << kSubBits) + (kMaxExp - kSubBits + 1) * (1u << (kSubBits - 1)))
static uint64_t hist[HIST_BUCKETS];
static uint64_t max_us;

static unsigned BucketOf(uint64_t us) {
  if (us < (1u << kSubBits)) return (unsigned)us;
  if (us >= (1ull << kMaxExp)) us = (1ull << kMaxExp) - 1;
  unsigned e = 63 - (unsigned)__builtin_clzll(us);
  unsigned sub = (unsigned)(us >> (e - (kSubBits - 1))) & ((1u << (kSubBits - 1)) - 1);
  return (1u << kSubBits) + (e - kSubBits) * (1u << (kSubBits - 1)) + sub;
}
static uint64_t BucketLow(unsigned b) {
  if (b < (1u << kSubBits)) return b;
  b -= 1u << kSubBits;
  unsigned e = b / (1u << (kSubBits - 1)) + kSubBits, sub = b % (1u << (kSubBits - 1));
  return ((uint64_t)((1u << (kSubBits - 1)) | sub)) << (e - (kSubBits - 1));
}

// ---- Helpers --------------------------------------------------------------------------
static uint64_t NowNs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}
// CPU time (user + system) of another process, from /proc/PID/stat; 0 if unreadable.
static uint64_t ProcCpuNs(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')');  // the command name may hold spaces
  unsigned long long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
    return 0;
  }
  return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
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
  fputs("grpcsub: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}
static void *Alloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) Die("out of memory");
  return p;
}
// Keeps the first message of one kind of error, to print once.
static void NoteFirst(char *slot, size_t cap, const char *fmt, ...) {
  if (slot[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(slot, cap, fmt, ap);
  va_end(ap);
}

// ---- Options and counters -------------------------------------------------------------
enum { kGrpc, kResp, kWs };
static int sub_proto = kGrpc, pub_proto = -1, port, pub_port, subs = 10, streams_per_conn = 100,
           topics = 1, inflight_max = 8, secs = 10, idle_secs = 0, setup_secs = 60, server_pid = 0;
static double warmup = 1, rate = 0;
static size_t payload = 100;
static const char *cache_name = "default", *token = "";
static char authority[64];

static int epfd, measuring;
static uint64_t delivered, published, heartbeats, discontinuities, lost, dups, late_pubs;
// Over the whole run, warm-up and drain included: deliveries the publish answers promise
// (gRPC: the topic's subscribers per successful Publish; RESP: PUBLISH's integer answers)
// and deliveries received.
static uint64_t expected_all, received_all;
static int publishing = 1, drain_secs = 10;
static int *subs_of_topic;
static uint64_t pub_errors, sub_errors, sub_ready, sub_failed;
static int64_t pub_reply_min = -1, pub_reply_max = -1;
static char first_pub_error[256], first_sub_error[256];

// ---- Connections ----------------------------------------------------------------------
typedef enum { kSubH2, kSubResp, kSubWs, kPubH2, kPubResp } ConnKind;

typedef struct SubStream SubStream;
typedef struct PubCall PubCall;

typedef struct {
  int fd;
  ConnKind kind;
  nghttp2_session *h2;
  char *out;  // bytes not yet written (the socket was full)
  size_t out_len, out_off, out_cap;
  int want_out;
  char *in;  // RESP: unparsed bytes
  size_t in_len, in_cap;
  int resp_ready;  // RESP subscriber: the subscribe reply came; WebSocket: the first frame
  int ws_open;  // WebSocket subscriber: the 101 answer came
  uint64_t last_seq;  // WebSocket subscriber: the last topic_sequence_number
  struct SubStream *streams;  // gRPC subscriber: its streams
  int nstreams;
} Conn;

// Stream user data starts with its kind, so callbacks can tell them apart.
enum { kTagSub = 1, kTagPub = 2 };
struct SubStream {
  int tag;
  int ready, ended;
  const char *body;  // the framed request, shared by the streams of one topic
  size_t body_len, body_off;
  uint64_t last_seq;
  uint8_t *frag;  // a gRPC message split across DATA frames
  size_t frag_len, frag_cap;
  char status[8];  // grpc-status, once seen
  char message[96];
};
struct PubCall {
  int tag;
  int busy;
  int topic;
  char *body;
  size_t body_len, body_off;
  char status[8];
  char message[96];
};

static Conn *pub_conn;
static PubCall *calls;
static int inflight;
static uint64_t pub_rr;

static int ConnectTo(int p) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) Die("socket: %s (raise ulimit -n)", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) Die("connect to %d: %s", p, strerror(errno));
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

static void WatchOut(Conn *c, int on) {
  if (c->want_out == on) return;
  c->want_out = on;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

// Writes what it can of `out` and then of (b, n); keeps the rest for EPOLLOUT.
static void Write(Conn *c, const char *b, size_t n) {
  if (c->out_len == c->out_off && n > 0) {
    ssize_t w = write(c->fd, b, n);
    if (w < 0 && errno != EAGAIN) Die("write: %s", strerror(errno));
    if (w > 0) b += w, n -= (size_t)w;
    if (n == 0) return;
  }
  if (n > 0) {
    if (c->out_off > 0 && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
      c->out_cap = (c->out_len + n) * 2;
      c->out = realloc(c->out, c->out_cap);
      if (!c->out) Die("out of memory");
    }
    memcpy(c->out + c->out_len, b, n);
    c->out_len += n;
  }
  while (c->out_off < c->out_len) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0 && errno == EAGAIN) break;
    if (w < 0) Die("write: %s", strerror(errno));
    c->out_off += (size_t)w;
  }
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  WatchOut(c, c->out_len > c->out_off);
}

static void H2Flush(Conn *c) {
  for (;;) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(c->h2, &data);
    if (n < 0) Die("nghttp2_session_mem_send: %s", nghttp2_strerror((int)n));
    if (n == 0) break;
    Write(c, (const char *)data, (size_t)n);
  }
}

// ---- Protobuf, by hand ----------------------------------------------------------------
static size_t PutVarint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) p[n++] = (uint8_t)(v | 0x80), v >>= 7;
  p[n++] = (uint8_t)v;
  return n;
}
static size_t PutBytes(uint8_t *p, int field, const void *data, size_t len) {
  size_t n = PutVarint(p, (uint64_t)field << 3 | 2);
  n += PutVarint(p + n, len);
  memcpy(p + n, data, len);
  return n + len;
}
static size_t PutFrameHeader(uint8_t *p, size_t msg_len) {
  p[0] = 0;
  p[1] = (uint8_t)(msg_len >> 24), p[2] = (uint8_t)(msg_len >> 16);
  p[3] = (uint8_t)(msg_len >> 8), p[4] = (uint8_t)msg_len;
  return 5;
}
// Returns 0 at the end of input or on a malformed varint.
static int GetVarint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 1;
    }
  }
  return 0;
}
// One field: its number and wire type; for length-delimited fields the bytes, for varints
// the value. Returns 0 at the end or on malformed input.
typedef struct {
  uint32_t field, type;
  uint64_t value;
  const uint8_t *data;
  size_t len;
} Field;
static int NextField(const uint8_t **p, const uint8_t *end, Field *f) {
  uint64_t tag;
  if (*p >= end || !GetVarint(p, end, &tag)) return 0;
  f->field = (uint32_t)(tag >> 3), f->type = (uint32_t)(tag & 7);
  switch (f->type) {
    case 0: return GetVarint(p, end, &f->value);
    case 1: if (end - *p < 8) return 0; *p += 8; return 1;
    case 5: if (end - *p < 4) return 0; *p += 4; return 1;
    case 2:
      if (!GetVarint(p, end, &f->value) || f->value > (uint64_t)(end - *p)) return 0;
      f->data = *p, f->len = (size_t)f->value;
      *p += f->len;
      return 1;
    default: return 0;
  }
}

// ---- Deliveries -----------------------------------------------------------------------
static void Deliver(const uint8_t *value, size_t len, uint64_t now) {
  received_all++;
  if (!measuring) return;
  if (len < STAMP_DIGITS) {
    sub_errors++;
    NoteFirst(first_sub_error, sizeof first_sub_error, "a %zu-byte payload has no timestamp", len);
    return;
  }
  uint64_t t = 0;
  for (int i = 0; i < STAMP_DIGITS; i++) t = t * 10 + (uint64_t)(value[i] - '0');
  uint64_t us = now > t ? (now - t) / 1000 : 0;
  hist[BucketOf(us)]++;
  if (us > max_us) max_us = us;
  delivered++;
}

// One _SubscriptionItem { 1 item: _TopicItem | 2 discontinuity | 3 heartbeat }.
static void OnSubscriptionItem(SubStream *s, const uint8_t *p, size_t n, uint64_t now) {
  const uint8_t *end = p + n;
  Field f;
  if (!s->ready) {
    s->ready = 1;
    sub_ready++;
  }
  while (NextField(&p, end, &f)) {
    if (f.field == 3 && f.type == 2) {
      heartbeats++;
    } else if (f.field == 2 && f.type == 2) {
      discontinuities++;
    } else if (f.field == 1 && f.type == 2) {
      // _TopicItem { 1 topic_sequence_number; 2 value: _TopicValue { 1 text | 2 binary }; ... }
      const uint8_t *q = f.data, *qend = f.data + f.len, *value = NULL;
      size_t value_len = 0;
      uint64_t seq = 0;
      Field g, h;
      while (NextField(&q, qend, &g)) {
        if (g.field == 1 && g.type == 0) seq = g.value;
        if (g.field == 2 && g.type == 2) {
          const uint8_t *r = g.data;
          while (NextField(&r, g.data + g.len, &h)) {
            if ((h.field == 1 || h.field == 2) && h.type == 2) value = h.data, value_len = h.len;
          }
        }
      }
      if (s->last_seq != 0 && measuring) {
        if (seq <= s->last_seq) dups++;
        else lost += seq - s->last_seq - 1;
      }
      if (seq > s->last_seq) s->last_seq = seq;
      if (value) Deliver(value, value_len, now);
    }
  }
}

// Splits a stream's DATA into gRPC messages (5-byte prefix), across chunks when needed.
static void OnSubData(SubStream *s, const uint8_t *data, size_t len, uint64_t now) {
  if (s->frag_len > 0) {
    if (s->frag_len + len > s->frag_cap) {
      s->frag_cap = (s->frag_len + len) * 2;
      s->frag = realloc(s->frag, s->frag_cap);
      if (!s->frag) Die("out of memory");
    }
    memcpy(s->frag + s->frag_len, data, len);
    s->frag_len += len;
    data = s->frag, len = s->frag_len;
  }
  size_t off = 0;
  while (len - off >= 5) {
    size_t msg = (size_t)data[off + 1] << 24 | (size_t)data[off + 2] << 16 |
                 (size_t)data[off + 3] << 8 | data[off + 4];
    if (len - off - 5 < msg) break;
    OnSubscriptionItem(s, data + off + 5, msg, now);
    off += 5 + msg;
  }
  size_t rest = len - off;
  if (data == s->frag) {
    memmove(s->frag, s->frag + off, rest);
    s->frag_len = rest;
  } else if (rest > 0) {
    if (rest > s->frag_cap) {
      s->frag_cap = rest * 2 > 256 ? rest * 2 : 256;
      s->frag = realloc(s->frag, s->frag_cap);
      if (!s->frag) Die("out of memory");
    }
    memcpy(s->frag, data + off, rest);
    s->frag_len = rest;
  }
}

// ---- nghttp2 callbacks ----------------------------------------------------------------
static uint64_t cb_now;  // the time of the read being processed

static int OnHeader(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                    void *user_data) {
  (void)flags, (void)user_data;
  int *tag = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (!tag) return 0;
  char *status = *tag == kTagSub ? ((SubStream *)tag)->status : ((PubCall *)tag)->status;
  char *message = *tag == kTagSub ? ((SubStream *)tag)->message : ((PubCall *)tag)->message;
  if (namelen == 11 && !memcmp(name, "grpc-status", 11)) {
    snprintf(status, 8, "%.*s", (int)(valuelen < 7 ? valuelen : 7), value);
  } else if (namelen == 12 && !memcmp(name, "grpc-message", 12)) {
    size_t n = 0;  // percent-decoded, as gRPC sends it
    for (size_t i = 0; i < valuelen && n < 95; i++) {
      unsigned hex;
      if (value[i] == '%' && i + 2 < valuelen && sscanf((const char *)value + i + 1, "%2x", &hex) == 1) {
        message[n++] = (char)hex, i += 2;
      } else {
        message[n++] = (char)value[i];
      }
    }
    message[n] = 0;
  } else if (namelen == 7 && !memcmp(name, ":status", 7) && !(valuelen == 3 && !memcmp(value, "200", 3))) {
    snprintf(status, 8, "h%.*s", (int)(valuelen < 6 ? valuelen : 6), value);
  }
  return 0;
}

static int OnDataChunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                       const uint8_t *data, size_t len, void *user_data) {
  (void)flags, (void)user_data;
  int *tag = nghttp2_session_get_stream_user_data(session, stream_id);
  if (tag && *tag == kTagSub) OnSubData((SubStream *)tag, data, len, cb_now);
  return 0;
}

static void SubmitPublishes(void);

static int OnStreamClose(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                         void *user_data) {
  (void)user_data;
  int *tag = nghttp2_session_get_stream_user_data(session, stream_id);
  if (!tag) return 0;
  if (*tag == kTagSub) {
    SubStream *s = (SubStream *)tag;
    s->ended = 1;
    if (!s->ready) sub_failed++;
    sub_errors++;
    NoteFirst(first_sub_error, sizeof first_sub_error,
              "a Subscribe stream ended: grpc-status %s (%s), h2 error %u",
              s->status[0] ? s->status : "none", s->message, error_code);
  } else {
    PubCall *c = (PubCall *)tag;
    c->busy = 0;
    inflight--;
    if (error_code == 0 && !strcmp(c->status, "0")) {
      if (measuring) published++;
      expected_all += (uint64_t)subs_of_topic[c->topic];
    } else {
      pub_errors++;
      NoteFirst(first_pub_error, sizeof first_pub_error,
                "Publish failed: grpc-status %s (%s), h2 error %u",
                c->status[0] ? c->status : "none", c->message, error_code);
    }
  }
  return 0;
}

static ssize_t ReadBody(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                        uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
  (void)session, (void)stream_id, (void)user_data;
  int *tag = source->ptr;
  const char *body;
  size_t *off, total;
  if (*tag == kTagSub) {
    SubStream *s = (SubStream *)tag;
    body = s->body, off = &s->body_off, total = s->body_len;
  } else {
    PubCall *c = (PubCall *)tag;
    body = c->body, off = &c->body_off, total = c->body_len;
  }
  size_t n = total - *off < length ? total - *off : length;
  memcpy(buf, body + *off, n);
  *off += n;
  if (*off == total) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static nghttp2_session *NewClientSession(Conn *c) {
  nghttp2_session_callbacks *cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, OnStreamClose);
  nghttp2_session *h2;
  if (nghttp2_session_client_new(&h2, cbs, c) != 0) Die("nghttp2_session_client_new");
  nghttp2_session_callbacks_del(cbs);
  // A large receive window, so flow control never holds back a subscriber's stream; the
  // library sends WINDOW_UPDATEs by itself as data is consumed.
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
  };
  nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, settings, sizeof settings / sizeof *settings);
  nghttp2_session_set_local_window_size(h2, NGHTTP2_FLAG_NONE, 0, 1 << 30);
  return h2;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
static int32_t SubmitCall(Conn *c, const char *path, void *stream_data) {
  nghttp2_nv nva[] = {
      NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path),
      NV(":authority", authority), NV("content-type", "application/grpc"), NV("te", "trailers"),
      NV("authorization", token),
  };
  size_t n = sizeof nva / sizeof *nva - (token[0] ? 0 : 1);
  nghttp2_data_provider prd = {.source.ptr = stream_data, .read_callback = ReadBody};
  int32_t id = nghttp2_submit_request(c->h2, NULL, nva, n, &prd, stream_data);
  if (id < 0) Die("nghttp2_submit_request: %s", nghttp2_strerror(id));
  return id;
}

// ---- RESP -----------------------------------------------------------------------------
static void AppendCommand(char *out, size_t *n, int argc, const char **argv, const size_t *lens) {
  *n += (size_t)sprintf(out + *n, "*%d\r\n", argc);
  for (int i = 0; i < argc; i++) {
    *n += (size_t)sprintf(out + *n, "$%zu\r\n", lens[i]);
    memcpy(out + *n, argv[i], lens[i]);
    *n += lens[i];
    out[(*n)++] = '\r', out[(*n)++] = '\n';
  }
}

// Parses one reply at p (RESP2 or RESP3 push): returns its length, or 0 if incomplete.
// For an array sets *kind to its first element (if a bulk string) and *last to its last
// bulk string; for a scalar *kind is the type byte and *last the line.
typedef struct {
  const char *kind;
  size_t kind_len;
  const char *last;
  size_t last_len;
  long long integer;
} Reply;
static size_t ParseReply(const char *p, const char *end, Reply *r) {
  const char *q = p, *nl = memchr(q, '\n', (size_t)(end - q));
  if (!nl) return 0;
  memset(r, 0, sizeof *r);
  if (*q != '*' && *q != '>') {
    r->kind = q, r->kind_len = 1, r->last = q + 1, r->last_len = (size_t)(nl - q - 2);
    r->integer = *q == ':' ? atoll(q + 1) : 0;
    return (size_t)(nl + 1 - p);
  }
  long k = atol(q + 1);
  q = nl + 1;
  for (long i = 0; i < k; i++) {
    if (q >= end || !(nl = memchr(q, '\n', (size_t)(end - q)))) return 0;
    if (*q == '$') {
      long len = atol(q + 1);
      const char *data = nl + 1;
      if (len < 0) {  // a null bulk string: no payload line
        q = data;
        continue;
      }
      if (end - data < len + 2) return 0;
      if (i == 0) r->kind = data, r->kind_len = (size_t)len;
      r->last = data, r->last_len = (size_t)len;
      q = data + len + 2;
    } else {
      if (*q == ':') r->integer = atoll(q + 1);
      q = nl + 1;
    }
  }
  return (size_t)(q - p);
}

static void OnRespReply(Conn *c, const Reply *r, uint64_t now) {
  if (c->kind == kPubResp) {
    inflight--;
    if (r->kind_len == 1 && r->kind[0] == ':') {
      if (measuring) published++;
      if (r->integer > 0) expected_all += (uint64_t)r->integer;
      if (pub_reply_min < 0 || r->integer < pub_reply_min) pub_reply_min = r->integer;
      if (r->integer > pub_reply_max) pub_reply_max = r->integer;
    } else {
      pub_errors++;
      NoteFirst(first_pub_error, sizeof first_pub_error, "PUBLISH answered %.*s",
                (int)(r->last_len < 200 ? r->last_len : 200), r->last);
    }
    return;
  }
  if (r->kind_len == 7 && !memcmp(r->kind, "message", 7)) {
    Deliver((const uint8_t *)r->last, r->last_len, now);
  } else if (r->kind_len == 9 && !memcmp(r->kind, "subscribe", 9)) {
    if (!c->resp_ready) c->resp_ready = 1, sub_ready++;
  } else if (r->kind_len == 1 && r->kind[0] == '-') {
    sub_errors++;
    if (!c->resp_ready) sub_failed++;
    NoteFirst(first_sub_error, sizeof first_sub_error, "a subscriber got %.*s",
              (int)(r->last_len < 200 ? r->last_len : 200), r->last);
  }
}

// ---- WebSocket (the web front-end) ------------------------------------------------------
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  // RFC 6455's example: the accept of WS_KEY

static const char *Find(const char *p, size_t n, const char *needle) {
  return memmem(p, n, needle, strlen(needle));
}
static int B64Val(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+' || ch == '-') return 62;
  if (ch == '/' || ch == '_') return 63;
  return -1;
}
static void WsFail(Conn *c, const char *what, const char *p, size_t n) {
  sub_errors++;
  if (!c->resp_ready) sub_failed++;
  NoteFirst(first_sub_error, sizeof first_sub_error, "a WebSocket subscriber: %s%.*s", what,
            (int)(n < 160 ? n : 160), p);
}
static void CloseSub(Conn *c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
}

// One text frame: a heartbeat, an item, a discontinuity or an error (all JSON).
static void OnWsText(Conn *c, const char *p, size_t n, uint64_t now) {
  if (!c->resp_ready) {
    if (n >= 13 && !memcmp(p, "{\"heartbeat\":", 13)) {
      c->resp_ready = 1, sub_ready++;
    } else {
      WsFail(c, "first frame not a heartbeat: ", p, n);
      return;
    }
  }
  if (n >= 13 && !memcmp(p, "{\"heartbeat\":", 13)) {
    heartbeats++;
    return;
  }
  if (n >= 8 && !memcmp(p, "{\"item\":", 8)) {
    const char *q = Find(p, n, "\"topic_sequence_number\":");
    uint64_t seq = 0;
    if (q) {
      q += 24;
      while (q < p + n && *q >= '0' && *q <= '9') seq = seq * 10 + (uint64_t)(*q++ - '0');
    }
    if (!q || seq == 0) {
      WsFail(c, "an item without topic_sequence_number: ", p, n);
      return;
    }
    if (c->last_seq != 0 && measuring) {
      if (seq <= c->last_seq) dups++;
      else lost += seq - c->last_seq - 1;
    }
    if (seq > c->last_seq) c->last_seq = seq;
    const char *v = Find(p, n, "\"value\":{\"text\":\"");
    if (v) {
      v += 17;
      const char *e = memchr(v, '"', (size_t)(p + n - v));
      if (!e) return WsFail(c, "an unterminated text: ", p, n);
      Deliver((const uint8_t *)v, (size_t)(e - v), now);
      return;
    }
    v = Find(p, n, "\"value\":{\"binary\":\"");
    if (!v) return WsFail(c, "an item without a value: ", p, n);
    v += 19;
    // The stamp is in the first 20 bytes: decode 28 base64 characters (21 bytes) at most.
    uint8_t bin[21];
    size_t bl = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *x = v; x < p + n && bl < sizeof bin; x++) {
      int d = B64Val(*x);
      if (d < 0) break;
      acc = acc << 6 | (unsigned)d, bits += 6;
      if (bits >= 8) bits -= 8, bin[bl++] = (uint8_t)(acc >> bits);
    }
    Deliver(bin, bl, now);
    return;
  }
  if (Find(p, n, "\"discontinuity\"")) {
    discontinuities++;
    return;
  }
  WsFail(c, "", p, n);  // {"error":...} or anything else
}

// Parses what c->in holds: the 101 answer, then server frames (never masked). Returns the
// bytes consumed; closes the connection (fd -1) on a close frame or a protocol error.
static size_t OnWsData(Conn *c, uint64_t now) {
  const char *b = c->in;
  size_t len = c->in_len, off = 0;
  if (!c->ws_open) {
    const char *e = Find(b, len, "\r\n\r\n");
    if (!e) return 0;
    const size_t head = (size_t)(e - b) + 4;
    if (len < 12 || memcmp(b, "HTTP/1.1 101", 12) != 0 || !Find(b, head, WS_ACCEPT)) {
      WsFail(c, "no upgrade: ", b, head);
      CloseSub(c);
      return 0;
    }
    c->ws_open = 1;
    off = head;
  }
  while (len - off >= 2) {
    const uint8_t b0 = (uint8_t)b[off], b1 = (uint8_t)b[off + 1];
    const int op = b0 & 0x0f, fin = b0 & 0x80;
    uint64_t pl = b1 & 0x7f;
    size_t h = 2;
    if (b1 & 0x80) {
      WsFail(c, "a masked server frame", "", 0);
      CloseSub(c);
      return 0;
    }
    if (pl == 126) {
      if (len - off < 4) break;
      pl = (uint64_t)(uint8_t)b[off + 2] << 8 | (uint8_t)b[off + 3], h = 4;
    } else if (pl == 127) {
      if (len - off < 10) break;
      pl = 0;
      for (int i = 0; i < 8; i++) pl = pl << 8 | (uint8_t)b[off + 2 + i];
      h = 10;
    }
    if (pl > (1u << 24)) {
      WsFail(c, "a frame over 16 MiB", "", 0);
      CloseSub(c);
      return 0;
    }
    if (len - off - h < pl) break;
    const char *p = b + off + h;
    if (!fin || op == 0) {
      WsFail(c, "a fragmented frame (not expected from this server)", "", 0);
    } else if (op == 1) {
      OnWsText(c, p, (size_t)pl, now);
    } else if (op == 9) {  // ping: a masked pong with the same payload (mask 0: XOR no-op)
      char pong[6 + 125];
      if (pl <= 125) {
        pong[0] = (char)0x8a, pong[1] = (char)(0x80 | pl);
        memset(pong + 2, 0, 4);
        memcpy(pong + 6, p, (size_t)pl);
        Write(c, pong, 6 + (size_t)pl);
      }
    } else if (op == 8) {
      const unsigned code = pl >= 2 ? (unsigned)(uint8_t)p[0] << 8 | (uint8_t)p[1] : 0;
      char what[64];
      snprintf(what, sizeof what, "closed by the server, code %u: ", code);
      WsFail(c, what, pl > 2 ? p + 2 : "", pl > 2 ? (size_t)pl - 2 : 0);
      CloseSub(c);
      return 0;
    } else if (op != 10) {
      WsFail(c, "an unexpected frame (binary?)", "", 0);
    }
    off += h + (size_t)pl;
  }
  return off;
}

// ---- Reading --------------------------------------------------------------------------
static void OnReadable(Conn *c) {
  static uint8_t buf[READ_CHUNK];
  for (;;) {
    ssize_t r;
    size_t space = sizeof buf;
    if (c->h2) {
      r = read(c->fd, buf, space);
    } else {
      if (c->in_cap - c->in_len < 4096) {
        c->in_cap = c->in_cap ? c->in_cap * 2 : 16384;
        c->in = realloc(c->in, c->in_cap);
        if (!c->in) Die("out of memory");
      }
      space = c->in_cap - c->in_len;
      r = read(c->fd, c->in + c->in_len, space);
    }
    if (r < 0 && errno == EAGAIN) break;
    if (r <= 0) {
      if (c == pub_conn) Die("the publisher's connection closed: %s", r == 0 ? "EOF" : strerror(errno));
      // A subscriber cut off (for falling behind, say): counted, and the run goes on.
      sub_errors++;
      if ((c->kind == kSubResp || c->kind == kSubWs) && !c->resp_ready) sub_failed++;
      for (int i = 0; i < c->nstreams; i++) {
        if (!c->streams[i].ready && !c->streams[i].ended) sub_failed++;
      }
      NoteFirst(first_sub_error, sizeof first_sub_error, "a subscriber's connection closed: %s",
                r == 0 ? "EOF" : strerror(errno));
      epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->fd = -1;
      return;
    }
    cb_now = NowNs();
    size_t got = (size_t)r;
    if (c->h2) {
      ssize_t used = nghttp2_session_mem_recv(c->h2, buf, got);
      if (used < 0) Die("nghttp2_session_mem_recv: %s", nghttp2_strerror((int)used));
    } else {
      c->in_len += got;
      size_t off = 0, n;
      Reply rep;
      if (c->kind == kSubWs) {
        off = OnWsData(c, cb_now);
      } else {
        while ((n = ParseReply(c->in + off, c->in + c->in_len, &rep)) > 0) {
          OnRespReply(c, &rep, cb_now);
          off += n;
        }
      }
      if (c->fd < 0) return;  // a WebSocket closed by its server
      memmove(c->in, c->in + off, c->in_len - off);
      c->in_len -= off;
    }
    if (got < space) break;  // a short read: the socket is drained
  }
  if (c->h2) {
    if (c == pub_conn) SubmitPublishes();
    H2Flush(c);
  } else if (c == pub_conn) {
    SubmitPublishes();
  }
}

// ---- Publishing -----------------------------------------------------------------------
static uint64_t next_due, interval_ns;  // -r: the next publish's time
static int timer_fd = -1;
static char *pub_payload, *pub_batch;
static size_t pub_batch_len;

static void StampPayload(uint64_t now) {
  uint64_t t = now;
  for (int i = STAMP_DIGITS - 1; i >= 0; i--) pub_payload[i] = (char)('0' + t % 10), t /= 10;
}

static void SendOnePublish(uint64_t now) {
  char topic[32];
  const int t = (int)(pub_rr++ % (uint64_t)topics);
  int tl = snprintf(topic, sizeof topic, "ch:%d", t);
  StampPayload(now);
  inflight++;
  if (pub_proto == kResp) {
    const char *argv[] = {"PUBLISH", topic, pub_payload};
    size_t lens[] = {7, (size_t)tl, payload};
    AppendCommand(pub_batch, &pub_batch_len, 3, argv, lens);
    return;
  }
  PubCall *c = NULL;
  for (int i = 0; i < inflight_max; i++) {
    if (!calls[i].busy) {
      c = &calls[i];
      break;
    }
  }
  if (!c) Die("internal: no free publish slot");
  // _PublishRequest { 1 cache_name; 2 topic; 3 value: _TopicValue { 2 binary } }
  uint8_t value[16];
  size_t vl = PutVarint(value, 2 << 3 | 2);
  vl += PutVarint(value + vl, payload);
  uint8_t *b = (uint8_t *)c->body, *m = b + 5;
  size_t n = PutBytes(m, 1, cache_name, strlen(cache_name));
  n += PutBytes(m + n, 2, topic, (size_t)tl);
  n += PutVarint(m + n, 3 << 3 | 2);
  n += PutVarint(m + n, vl + payload);
  memcpy(m + n, value, vl), n += vl;
  memcpy(m + n, pub_payload, payload), n += payload;
  PutFrameHeader(b, n);
  c->busy = 1, c->topic = t, c->body_len = n + 5, c->body_off = 0, c->status[0] = c->message[0] = 0;
  SubmitCall(pub_conn, PUBLISH_PATH, c);
}

// Sends what is due: closed-loop, refills the window; with -r, the publishes whose time
// has come, as the window allows.
static void SubmitPublishes(void) {
  if (!pub_conn || !publishing) return;
  pub_batch_len = 0;
  uint64_t now = NowNs();
  if (rate <= 0) {
    while (inflight < inflight_max) SendOnePublish(now);
  } else {
    while (next_due <= now && inflight < inflight_max) {
      if (now - next_due > 1000000 && measuring) late_pubs++;
      SendOnePublish(now);
      next_due += interval_ns;
    }
    if (next_due <= now) {
      // Window full: the publishes wait for answers. Catch up no more than a second later.
      if (now - next_due > 1000000000ull) next_due = now - 1000000000ull;
    }
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(next_due / 1000000000ull);
    its.it_value.tv_nsec = (long)(next_due % 1000000000ull);
    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
  }
  if (pub_proto == kResp && pub_batch_len > 0) Write(pub_conn, pub_batch, pub_batch_len);
}

// ---- Main -----------------------------------------------------------------------------
static void Usage(void) {
  fprintf(stderr,
          "usage: grpcsub -p PORT [-m grpc|resp|ws] [-q grpc|resp] [-P PUBPORT] [-s SUBS] "
          "[-k STREAMS_PER_CONN] [-c TOPICS] [-d INFLIGHT] [-r RATE] [-t SECS] [-w WARMUP] "
          "[-v PAYLOAD] [-n CACHE] [-a TOKEN] [-i IDLE_SECS] [-S SETUP_SECS] [-D DRAIN_SECS] [-C SERVER_PID]\n");
  exit(2);
}
static int ParseProto(const char *s) {
  if (!strcmp(s, "grpc")) return kGrpc;
  if (!strcmp(s, "resp")) return kResp;
  if (!strcmp(s, "ws")) return kWs;
  Usage();
  return 0;
}

static Conn *NewConn(int p, ConnKind kind) {
  Conn *c = Alloc(sizeof *c);
  c->fd = ConnectTo(p);
  c->kind = kind;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) Die("epoll_ctl: %s", strerror(errno));
  if (kind == kSubH2 || kind == kPubH2) c->h2 = NewClientSession(c);
  return c;
}

// One epoll_wait (up to timeout_ms) and its events.
static void PollOnce(int timeout_ms) {
  struct epoll_event evs[512];
  int n = epoll_wait(epfd, evs, 512, timeout_ms);
  for (int i = 0; i < n; i++) {
    if (evs[i].data.ptr == NULL) {  // the publish timer
      uint64_t expirations;
      if (read(timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN) {
        Die("timerfd read: %s", strerror(errno));
      }
      SubmitPublishes();
      if (pub_conn->h2) H2Flush(pub_conn);
      continue;
    }
    Conn *c = evs[i].data.ptr;
    if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) OnReadable(c);
    if (c->fd >= 0 && (evs[i].events & EPOLLOUT)) {
      Write(c, NULL, 0);
      if (c->h2) H2Flush(c);
    }
  }
}

// Runs the loop until `until` (ns) or, when stop_when_ready, until every subscription is
// confirmed or one was refused.
static void Loop(uint64_t until, int stop_when_ready) {
  for (;;) {
    uint64_t now = NowNs();
    if (now >= until) return;
    if (stop_when_ready && (sub_ready + sub_failed >= (uint64_t)subs || sub_failed > 0)) return;
    int ms = (int)((until - now) / 1000000) + 1;
    PollOnce(ms > 100 ? 100 : ms);
  }
}

static uint64_t Percentile(double q, uint64_t total) {
  uint64_t want = (uint64_t)(q * (double)total + 0.5), cum = 0;
  if (want == 0) want = 1;
  for (unsigned b = 0; b < HIST_BUCKETS; b++) {
    cum += hist[b];
    if (cum >= want) return BucketLow(b);
  }
  return max_us;
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "p:m:q:P:s:k:c:d:r:t:w:v:n:a:i:S:D:C:")) != -1) {
    switch (opt) {
      case 'p': port = atoi(optarg); break;
      case 'm': sub_proto = ParseProto(optarg); break;
      case 'q': pub_proto = ParseProto(optarg); break;
      case 'P': pub_port = atoi(optarg); break;
      case 's': subs = atoi(optarg); break;
      case 'k': streams_per_conn = atoi(optarg); break;
      case 'c': topics = atoi(optarg); break;
      case 'd': inflight_max = atoi(optarg); break;
      case 'r': rate = atof(optarg); break;
      case 't': secs = atoi(optarg); break;
      case 'w': warmup = atof(optarg); break;
      case 'v': payload = (size_t)atol(optarg); break;
      case 'n': cache_name = optarg; break;
      case 'a': token = optarg; break;
      case 'i': idle_secs = atoi(optarg); break;
      case 'S': setup_secs = atoi(optarg); break;
      case 'D': drain_secs = atoi(optarg); break;
      case 'C': server_pid = atoi(optarg); break;
      default: Usage();
    }
  }
  if (port <= 0 || subs < 1 || streams_per_conn < 1 || topics < 1 || inflight_max < 1 ||
      secs < 1 || secs > 600 || warmup < 0 || warmup > 60 || idle_secs < 0 || idle_secs > 3600 ||
      setup_secs < 1 || drain_secs < 0 || drain_secs > 600 || payload > (1u << 20) || rate < 0) {
    Usage();
  }
  if (pub_proto < 0) pub_proto = sub_proto == kWs ? kResp : sub_proto;
  if (pub_proto == kWs) Usage();  // WebSocket publishing is not a publisher mode here
  if (pub_port <= 0) pub_port = port;
  if (payload < STAMP_DIGITS) payload = STAMP_DIGITS;
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (sub_proto != kGrpc && (rlim_t)subs + 32 > rl.rlim_cur) {
    Die("%d subscribers need %d descriptors; the limit is %llu", subs, subs + 32,
        (unsigned long long)rl.rlim_cur);
  }
  snprintf(authority, sizeof authority, "127.0.0.1:%d", port);
  epfd = epoll_create1(0);
  const uint64_t t0 = NowNs();
  subs_of_topic = Alloc((size_t)topics * sizeof *subs_of_topic);
  for (int i = 0; i < subs; i++) subs_of_topic[i % topics]++;

  // Subscribers.
  int conns = 0;
  if (sub_proto == kGrpc) {
    // One framed _SubscriptionRequest per topic { 1 cache_name; 2 topic } (resume_at and
    // sequence_page 0: live only, as the SDK's first Subscribe).
    char **bodies = Alloc((size_t)topics * sizeof *bodies);
    size_t *body_lens = Alloc((size_t)topics * sizeof *body_lens);
    for (int t = 0; t < topics; t++) {
      char topic[32];
      int tl = snprintf(topic, sizeof topic, "ch:%d", t);
      uint8_t *b = Alloc(strlen(cache_name) + 64);
      size_t n = PutBytes(b + 5, 1, cache_name, strlen(cache_name));
      n += PutBytes(b + 5 + n, 2, topic, (size_t)tl);
      PutFrameHeader(b, n);
      bodies[t] = (char *)b, body_lens[t] = n + 5;
    }
    SubStream *streams = Alloc((size_t)subs * sizeof *streams);
    for (int first = 0; first < subs; first += streams_per_conn) {
      Conn *c = NewConn(port, kSubH2);
      c->streams = &streams[first];
      c->nstreams = subs - first < streams_per_conn ? subs - first : streams_per_conn;
      for (int j = 0; j < c->nstreams; j++) {
        SubStream *s = &c->streams[j];
        s->tag = kTagSub;
        s->body = bodies[(first + j) % topics], s->body_len = body_lens[(first + j) % topics];
        SubmitCall(c, SUBSCRIBE_PATH, s);
      }
      H2Flush(c);
      conns++;
    }
  } else if (sub_proto == kWs) {
    char tok[600] = "";
    if (token[0]) snprintf(tok, sizeof tok, "?token=%s", token);
    for (int i = 0; i < subs; i++) {
      Conn *c = NewConn(port, kSubWs);
      char req[1024];
      int n = snprintf(req, sizeof req,
                       "GET /topics/%s/ch:%d/ws%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: " WS_KEY "\r\n\r\n",
                       cache_name, i % topics, tok, port);
      Write(c, req, (size_t)n);
      conns++;
      if (i % 256 == 255) PollOnce(0);
    }
  } else {
    for (int i = 0; i < subs; i++) {
      Conn *c = NewConn(port, kSubResp);
      char topic[32], cmd[96];
      int tl = snprintf(topic, sizeof topic, "ch:%d", i % topics);
      const char *av[] = {"SUBSCRIBE", topic};
      size_t lens[] = {9, (size_t)tl}, n = 0;
      AppendCommand(cmd, &n, 2, av, lens);
      Write(c, cmd, n);
      conns++;
      // Read confirmations as they come, so no socket buffer fills during a long set-up.
      if (i % 256 == 255) PollOnce(0);
    }
  }
  Loop(t0 + (uint64_t)setup_secs * 1000000000ull, 1);
  const double setup_s = (double)(NowNs() - t0) / 1e9;
  if (sub_ready < (uint64_t)subs) {
    Die("%llu of %d subscriptions confirmed after %.1f s, %llu refused; first error: %s",
        (unsigned long long)sub_ready, subs, setup_s, (unsigned long long)sub_failed,
        first_sub_error[0] ? first_sub_error : "none (timed out)");
  }

  if (idle_secs > 0) {
    printf("ready subs=%d conns=%d setup_s=%.2f\n", subs, conns, setup_s);
    fflush(stdout);
    Loop(NowNs() + (uint64_t)idle_secs * 1000000000ull, 0);
    printf("idle_done subs=%d heartbeats=%llu sub_errors=%llu\n", subs,
           (unsigned long long)heartbeats, (unsigned long long)sub_errors);
    if (first_sub_error[0]) fprintf(stderr, "grpcsub: %s\n", first_sub_error);
    return 0;
  }

  // Publisher.
  pub_conn = NewConn(pub_port, pub_proto == kGrpc ? kPubH2 : kPubResp);
  if (pub_proto == kGrpc) {
    snprintf(authority, sizeof authority, "127.0.0.1:%d", pub_port);
    calls = Alloc((size_t)inflight_max * sizeof *calls);
    for (int i = 0; i < inflight_max; i++) {
      calls[i].tag = kTagPub;
      calls[i].body = Alloc(payload + strlen(cache_name) + 96);
    }
  }
  pub_payload = Alloc(payload);
  memset(pub_payload, 'x', payload);
  pub_batch = Alloc((size_t)inflight_max * (payload + 96));
  if (rate > 0) {
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (timer_fd < 0) Die("timerfd_create: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &ev);
    interval_ns = (uint64_t)(1e9 / rate);
    if (interval_ns == 0) interval_ns = 1;
    next_due = NowNs();
  }
  SubmitPublishes();
  if (pub_conn->h2) H2Flush(pub_conn);
  const uint64_t start = NowNs(), mstart = start + (uint64_t)(warmup * 1e9);
  Loop(mstart, 0);
  measuring = 1;
  const uint64_t m0 = NowNs(), cpu0 = CpuNs(), srv0 = server_pid ? ProcCpuNs(server_pid) : 0;
  Loop(m0 + (uint64_t)secs * 1000000000ull, 0);
  const double msecs = (double)(NowNs() - m0) / 1e9, cpu = (double)(CpuNs() - cpu0) / 1e9;
  const double srv_cpu = server_pid ? (double)(ProcCpuNs(server_pid) - srv0) / 1e9 : -0.01;
  // Drain: no more publishes; wait for the answers in flight and every delivery they
  // promise, so a message never delivered shows as undelivered, not as a backlog.
  measuring = 0;
  publishing = 0;
  const uint64_t d0 = NowNs(), dend = d0 + (uint64_t)drain_secs * 1000000000ull;
  while (NowNs() < dend && (inflight > 0 || received_all < expected_all)) PollOnce(10);
  const double drain_s = (double)(NowNs() - d0) / 1e9;

  uint64_t total = 0;
  for (unsigned b = 0; b < HIST_BUCKETS; b++) total += hist[b];
  const char *names[] = {"grpc", "resp", "ws"};
  printf("sub=%s pub=%s subs=%d conns=%d topics=%d pub_inflight=%d rate=%.0f payload=%zu "
         "secs=%.2f publishes_per_s=%.0f deliveries_per_s=%.0f fanout=%.1f p50_us=%llu "
         "p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu lost=%llu dups=%llu heartbeats=%llu "
         "discontinuities=%llu late_pubs=%llu pub_errors=%llu sub_errors=%llu "
         "pub_reply_min=%lld pub_reply_max=%lld cpu_pct=%.0f srv_cpu_pct=%.0f setup_s=%.2f expected=%llu "
         "received=%llu undelivered=%llu excess=%llu drain_s=%.2f\n",
         names[sub_proto], names[pub_proto], subs, conns, topics, inflight_max, rate, payload,
         msecs, (double)published / msecs, (double)delivered / msecs,
         published ? (double)delivered / (double)published : 0.0,
         (unsigned long long)(total ? Percentile(0.5, total) : 0),
         (unsigned long long)(total ? Percentile(0.9, total) : 0),
         (unsigned long long)(total ? Percentile(0.99, total) : 0),
         (unsigned long long)(total ? Percentile(0.999, total) : 0), (unsigned long long)max_us,
         (unsigned long long)lost, (unsigned long long)dups, (unsigned long long)heartbeats,
         (unsigned long long)discontinuities, (unsigned long long)late_pubs,
         (unsigned long long)pub_errors, (unsigned long long)sub_errors, (long long)pub_reply_min,
         (long long)pub_reply_max, cpu * 100 / msecs, srv_cpu * 100 / msecs, setup_s, (unsigned long long)expected_all,
         (unsigned long long)received_all,
         (unsigned long long)(expected_all > received_all ? expected_all - received_all : 0),
         (unsigned long long)(received_all > expected_all ? received_all - expected_all : 0),
         drain_s);
  if (first_pub_error[0]) fprintf(stderr, "grpcsub: %s\n", first_pub_error);
  if (first_sub_error[0]) fprintf(stderr, "grpcsub: %s\n", first_sub_error);
  return 0;
}
