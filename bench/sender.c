/*
 * UDP load generator for the benchmark suite (built by run.mjs with the machine's `cc -O2`).
 *
 *   sender HOST PORT PAYLOAD LINES_PER_PACKET TOTAL_PACKETS RATE_PPS [MAX_SECONDS]
 *
 * PAYLOAD is either a file of newline-separated StatsD lines, or `counters:NAMES[:PREFIX]`, which
 * generates `PREFIX.<i % NAMES>:1|c` lines with zero-padded numbers (PREFIX defaults to `bench.c`).
 * Packets are built once, before sending, by taking LINES_PER_PACKET consecutive lines (cycling
 * through the payload), then sent round-robin on a connected socket.
 *
 * Loopback UDP costs the sender the whole kernel path of every datagram, so plain sendmmsg(2) tops
 * out near the rate a Node receiver reaches. To stay far ahead of the receiver the sender uses UDP
 * GSO (UDP_SEGMENT, Linux >= 4.18): one buffer of up to 64 equal-sized datagrams per message, 64
 * messages per sendmmsg call; the kernel splits them into ordinary datagrams before they reach the
 * receiving socket. GSO needs equal sizes, so every packet is padded to the longest with trailing
 * `\n` (an empty line, skipped by StatsD parsers; generate payloads of equal-width lines to keep the
 * padding near zero). Without GSO (older kernels, or NO_GSO=1 in the environment) it falls back to
 * one datagram per message.
 *
 * RATE_PPS is packets (datagrams) per second; 0 sends as fast as the kernel accepts. Pacing runs
 * against CLOCK_MONOTONIC: whatever is due is sent, then the sender sleeps ~100 µs.
 *
 * On exit it prints one JSON object on stdout: packets and lines accepted by the kernel, bytes,
 * elapsed seconds, and error counts. Loopback UDP never blocks the sender: a full receive buffer
 * drops the datagram on the receiver's side (counted in /proc/net/snmp RcvbufErrors).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* Messages per sendmmsg call, and datagrams per GSO message at most (the kernel's UDP_MAX_SEGMENTS). */
#define BATCH 64
#define MAX_SEGS 64
/* Largest UDP payload one GSO message may carry in total. */
#define MAX_GSO_BYTES 65000

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg) {
  fprintf(stderr, "sender: %s\n", msg);
  exit(2);
}

static uint64_t gcd(uint64_t a, uint64_t b) {
  while (b != 0) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: sender HOST PORT PAYLOAD LINES_PER_PACKET TOTAL_PACKETS RATE_PPS [MAX_SECONDS]\n");
    return 2;
  }
  const char *host = argv[1];
  const char *port = argv[2];
  const char *payload = argv[3];
  long lpp = strtol(argv[4], NULL, 10);
  unsigned long long total = strtoull(argv[5], NULL, 10);
  double rate = strtod(argv[6], NULL);
  double max_seconds = argc > 7 ? strtod(argv[7], NULL) : 600.0;
  if (lpp < 1) die("LINES_PER_PACKET must be >= 1");

  /* The lines: from a file, or generated counters. */
  char **lines = NULL;
  size_t *lens = NULL;
  size_t nlines = 0;
  if (strncmp(payload, "counters:", 9) == 0) {
    long names = strtol(payload + 9, NULL, 10);
    const char *colon = strchr(payload + 9, ':');
    const char *prefix = colon != NULL ? colon + 1 : "bench.c";
    if (names < 1) die("counters:NAMES needs NAMES >= 1");
    int width = snprintf(NULL, 0, "%ld", names - 1);
    nlines = (size_t)names;
    lines = calloc(nlines, sizeof(char *));
    lens = calloc(nlines, sizeof(size_t));
    for (size_t i = 0; i < nlines; i++) {
      char buf[512];
      int n = snprintf(buf, sizeof buf, "%s.%0*zu:1|c", prefix, width, i);
      lines[i] = strdup(buf);
      lens[i] = (size_t)n;
    }
  } else {
    FILE *f = fopen(payload, "rb");
    if (f == NULL) die("cannot open payload file");
    struct stat st;
    if (fstat(fileno(f), &st) != 0) die("cannot stat payload file");
    char *data = malloc((size_t)st.st_size + 1);
    size_t got = fread(data, 1, (size_t)st.st_size, f);
    fclose(f);
    data[got] = '\0';
    size_t cap = 1024;
    lines = malloc(cap * sizeof(char *));
    lens = malloc(cap * sizeof(size_t));
    char *p = data;
    while (*p != '\0') {
      char *e = strchr(p, '\n');
      size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
      if (n > 0) {
        if (nlines == cap) {
          cap *= 2;
          lines = realloc(lines, cap * sizeof(char *));
          lens = realloc(lens, cap * sizeof(size_t));
        }
        lines[nlines] = p;
        lens[nlines] = n;
        nlines++;
      }
      if (e == NULL) break;
      p = e + 1;
    }
    if (nlines == 0) die("payload file has no lines");
  }

  /* Distinct packets: consecutive groups of lpp lines, cycling; the cycle repeats after npk packets. */
  size_t npk = nlines / (size_t)gcd(nlines, (uint64_t)lpp);
  size_t *start_line = malloc(npk * sizeof(size_t));
  size_t seg = 0, content_bytes = 0;
  for (size_t j = 0, li = 0; j < npk; j++, li = (li + (size_t)lpp) % nlines) {
    size_t len = 0;
    for (long k = 0; k < lpp; k++) len += lens[(li + (size_t)k) % nlines] + (k > 0 ? 1 : 0);
    start_line[j] = li;
    content_bytes += len;
    if (len > seg) seg = len;
  }
  if (seg > 65000) die("a packet is larger than 65000 bytes");

  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(host, port, &hints, &res) != 0) die("cannot resolve host");
  int fd = socket(res->ai_family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket failed");
  int sndbuf = 4 * 1024 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) die("connect failed");
  freeaddrinfo(res);

  /* Segments per message: 1 without GSO. */
  size_t segs = 1;
  const char *no_gso = getenv("NO_GSO");
  if (no_gso == NULL || strcmp(no_gso, "1") != 0) {
    size_t want = MAX_GSO_BYTES / seg;
    if (want > MAX_SEGS) want = MAX_SEGS;
    int gso_size = (int)seg;
    if (want > 1 && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso_size, sizeof gso_size) == 0) segs = want;
  }
  /* Pad only when GSO needs equal sizes. */
  size_t stride = segs > 1 ? seg : 0;

  /* All distinct packets back to back, plus `segs` more wrapping around, so any run of `segs`
   * consecutive packets starting anywhere in the cycle is one contiguous buffer. */
  size_t nslots = npk + segs;
  char *area;
  size_t *off = malloc(nslots * sizeof(size_t));
  size_t *plen = malloc(nslots * sizeof(size_t));
  {
    size_t total_bytes = 0;
    for (size_t j = 0; j < nslots; j++) {
      size_t li = start_line[j % npk], len = 0;
      for (long k = 0; k < lpp; k++) len += lens[(li + (size_t)k) % nlines] + (k > 0 ? 1 : 0);
      plen[j] = stride > 0 ? stride : len;
      total_bytes += plen[j];
    }
    area = malloc(total_bytes);
    size_t o = 0;
    for (size_t j = 0; j < nslots; j++) {
      size_t li = start_line[j % npk];
      off[j] = o;
      size_t w = 0;
      for (long k = 0; k < lpp; k++) {
        size_t idx = (li + (size_t)k) % nlines;
        if (k > 0) area[o + w++] = '\n';
        memcpy(area + o + w, lines[idx], lens[idx]);
        w += lens[idx];
      }
      while (w < plen[j]) area[o + w++] = '\n';
      o += plen[j];
    }
  }

  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  unsigned int nseg_of[BATCH];
  memset(msgs, 0, sizeof msgs);

  unsigned long long sent = 0, bytes = 0, refused = 0, nobufs = 0, other = 0, calls = 0;
  size_t next = 0;
  double start = now_s();
  double deadline = start + max_seconds;
  int timed_out = 0;
  while (sent < total) {
    unsigned long long want = total - sent;
    if (rate > 0) {
      double t = now_s();
      unsigned long long due = (unsigned long long)((t - start) * rate) + 1;
      if (due > total) due = total;
      if (due <= sent) {
        if (t > deadline) {
          timed_out = 1;
          break;
        }
        struct timespec sl = {0, 100000};
        nanosleep(&sl, NULL);
        continue;
      }
      want = due - sent;
    }
    if (want > (unsigned long long)BATCH * segs) want = (unsigned long long)BATCH * segs;
    /* Build up to BATCH messages of up to `segs` packets each, never crossing the end of the cycle. */
    unsigned int nmsg = 0;
    size_t cur = next;
    unsigned long long queued = 0;
    while (queued < want && nmsg < BATCH) {
      size_t n = segs;
      if (n > want - queued) n = (size_t)(want - queued);
      size_t bytes_here = stride > 0 ? n * stride : plen[cur];
      if (stride == 0) n = 1;
      iov[nmsg].iov_base = area + off[cur];
      iov[nmsg].iov_len = bytes_here;
      msgs[nmsg].msg_hdr.msg_iov = &iov[nmsg];
      msgs[nmsg].msg_hdr.msg_iovlen = 1;
      nseg_of[nmsg] = (unsigned int)n;
      nmsg++;
      queued += n;
      cur = (cur + n) % npk;
    }
    int r = sendmmsg(fd, msgs, nmsg, 0);
    calls++;
    if (r < 0) {
      if (errno == ECONNREFUSED) refused++;
      else if (errno == ENOBUFS || errno == EAGAIN) nobufs++;
      else if (errno != EINTR) other++;
      if (refused + other > 100000) break;
      if ((calls & 1023) == 0 && now_s() > deadline) {
        timed_out = 1;
        break;
      }
      continue;
    }
    for (int i = 0; i < r; i++) {
      bytes += iov[i].iov_len;
      sent += nseg_of[i];
      next = (next + nseg_of[i]) % npk;
    }
    if ((calls & 255) == 0 && now_s() > deadline) {
      timed_out = 1;
      break;
    }
  }
  double elapsed = now_s() - start;
  printf("{\"packets\":%llu,\"lines\":%llu,\"bytes\":%llu,\"seconds\":%.6f,\"calls\":%llu,\"refused\":%llu,\"nobufs\":%llu,"
         "\"otherErrors\":%llu,\"timedOut\":%s,\"distinctPackets\":%zu,\"gsoSegments\":%zu,\"packetBytes\":%zu,\"paddingBytesPerPacket\":%.1f}\n",
         sent, sent * (unsigned long long)lpp, bytes, elapsed, calls, refused, nobufs, other, timed_out ? "true" : "false", npk, segs, seg,
         stride > 0 ? (double)stride - (double)content_bytes / (double)npk : 0.0);
  close(fd);
  return 0;
}
