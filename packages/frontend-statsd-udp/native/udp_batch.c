/*
 * The batch reader of @metrics-distributor/frontend-statsd-udp: drains a UDP socket with recvmmsg(2)
 * into one slab shared with JavaScript and calls JavaScript once per batch instead of once per
 * datagram. node:dgram still creates, binds and sizes the socket; this file only reads a dup() of it.
 *
 * Why: on Node 20, each datagram costs a recvmsg(2), a Buffer, an rinfo object and a call into
 * JavaScript (issue 16's profile: about 42 % of the server's CPU at saturation). Here a batch of up
 * to `slots` datagrams costs one system call and one call into JavaScript, and nothing is allocated.
 *
 * API (all synchronous, main thread only):
 *   open(fd, slab, slotBytes, lengths, maxBatchesPerWake, onBatch) -> handle
 *     slab: a Buffer of lengths.length * slotBytes bytes; datagram i of a batch is at i * slotBytes.
 *     lengths: an Int32Array; lengths[i] is datagram i's real length (MSG_TRUNC: may exceed slotBytes,
 *       in which case only slotBytes bytes were kept).
 *     onBatch(n): n >= 0 datagrams are in the slab (valid until onBatch returns); n < 0 is -errno of
 *       a receive error (reading goes on).
 *   close(handle): stops reading and closes the dup'd descriptor.
 *   stats(handle) -> { wakeups, batches, datagrams, wouldBlock, errors }
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

typedef struct reader {
  uv_poll_t poll;
  napi_env env;
  napi_ref on_batch;
  /* Strong references: the kernel writes into their memory, so they must outlive every read. */
  napi_ref slab_ref;
  napi_ref lengths_ref;
  napi_ref resource_ref;
  napi_async_context async_context;
  int fd;
  unsigned slots;
  size_t slot_bytes;
  unsigned max_batches;
  char *slab;
  int32_t *lengths;
  struct mmsghdr *msgs;
  struct iovec *iovs;
  int reading;   /* 0 once close() (or environment teardown) stopped the poll */
  int released;  /* libuv's close callback ran: the descriptor and references are gone */
  int finalized; /* the JavaScript handle was collected */
  double wakeups, batches, datagrams, would_block, errors;
} reader_t;

static void maybe_free(reader_t *r) {
  if (r->released && r->finalized) {
    free(r->msgs);
    free(r->iovs);
    free(r);
  }
}

static napi_value throw_error(napi_env env, const char *msg) {
  napi_throw_error(env, "MD_ERR_FRONTEND_READER", msg);
  return NULL;
}

/*
 * Calls onBatch(n) through napi_make_callback, so that async hooks see one callback and the
 * microtask and nextTick queues run after it, as after any I/O callback. Returns 0 when it threw.
 */
static int call_js(reader_t *r, int n) {
  napi_env env = r->env;
  napi_value cb, resource, arg, result;
  if (napi_get_reference_value(env, r->on_batch, &cb) != napi_ok || cb == NULL) return 0;
  if (napi_get_reference_value(env, r->resource_ref, &resource) != napi_ok || resource == NULL) return 0;
  napi_create_int32(env, n, &arg);
  napi_status st = napi_make_callback(env, r->async_context, resource, cb, 1, &arg, &result);
  if (st == napi_pending_exception) {
    /* The front-end catches per datagram, so this is a bug in it: surface it as Node would for a
     * throwing 'message' listener (the process's uncaughtException handling decides). */
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    return 0;
  }
  return st == napi_ok;
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  reader_t *r = handle->data;
  if (!r->reading) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(r->env, &scope) != napi_ok) return;
  r->wakeups++;
  if (status < 0) {
    /* libuv stops the poll on POLLERR. Reading SO_ERROR clears the socket's pending error (an ICMP
     * report, say), so restarting does not spin; the next datagram is read as usual. */
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    r->errors++;
    call_js(r, err != 0 ? -err : status);
    if (r->reading) uv_poll_start(&r->poll, UV_READABLE, on_readable);
    napi_close_handle_scope(r->env, scope);
    return;
  }
  /* At most max_batches per wake-up: libuv's poll is level-triggered, so what is left wakes the next
   * loop iteration, after timers (the window flush) and other I/O have had their turn. */
  for (unsigned b = 0; b < r->max_batches && r->reading; b++) {
    int n;
    do {
      n = recvmmsg(r->fd, r->msgs, r->slots, MSG_DONTWAIT | MSG_TRUNC, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        r->would_block++;
      } else {
        r->errors++;
        call_js(r, -errno);
      }
      break;
    }
    for (int i = 0; i < n; i++) {
      unsigned len = r->msgs[i].msg_len;
      r->lengths[i] = len > INT32_MAX ? INT32_MAX : (int32_t)len;
    }
    r->batches++;
    r->datagrams += n;
    if (!call_js(r, n)) break;
    /* A short batch emptied the queue: skip the system call that would only say EAGAIN. */
    if ((unsigned)n < r->slots) break;
  }
  napi_close_handle_scope(r->env, scope);
}

static void on_closed(uv_handle_t *handle) {
  reader_t *r = handle->data;
  napi_env env = r->env;
  napi_delete_reference(env, r->on_batch);
  napi_delete_reference(env, r->slab_ref);
  napi_delete_reference(env, r->lengths_ref);
  napi_delete_reference(env, r->resource_ref);
  napi_async_destroy(env, r->async_context);
  r->released = 1;
  maybe_free(r);
}

/* Environment teardown (process exit, a worker thread ending): the loop will not run again. */
static void on_env_cleanup(void *arg) {
  reader_t *r = arg;
  if (!r->reading) return;
  r->reading = 0;
  uv_poll_stop(&r->poll);
  uv_close((uv_handle_t *)&r->poll, NULL);
  close(r->fd);
  r->fd = -1;
}

static void stop_reading(reader_t *r) {
  if (!r->reading) return;
  r->reading = 0;
  napi_remove_env_cleanup_hook(r->env, on_env_cleanup, r);
  /* A stopped poll handle is out of epoll, so the descriptor can go now rather than in on_closed: a
   * caller that closes the dgram socket next expects the port to be free when that resolves. */
  uv_poll_stop(&r->poll);
  close(r->fd);
  r->fd = -1;
  uv_close((uv_handle_t *)&r->poll, on_closed);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  reader_t *r = data;
  stop_reading(r);
  r->finalized = 1;
  maybe_free(r);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) return throw_error(env, "open(fd, slab, slotBytes, lengths, maxBatchesPerWake, onBatch)");
  int32_t fd, slot_bytes, max_batches;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_error(env, "fd must be a descriptor");
  void *slab;
  size_t slab_len;
  if (napi_get_buffer_info(env, argv[1], &slab, &slab_len) != napi_ok) return throw_error(env, "slab must be a Buffer");
  if (napi_get_value_int32(env, argv[2], &slot_bytes) != napi_ok || slot_bytes < 1) return throw_error(env, "slotBytes must be positive");
  napi_typedarray_type ta_type;
  size_t slots;
  void *lengths;
  if (napi_get_typedarray_info(env, argv[3], &ta_type, &slots, &lengths, NULL, NULL) != napi_ok || ta_type != napi_int32_array || slots < 1 || slots > 1024) {
    return throw_error(env, "lengths must be an Int32Array of 1 to 1024 elements");
  }
  if (slab_len < slots * (size_t)slot_bytes) return throw_error(env, "slab is smaller than lengths.length * slotBytes");
  if (napi_get_value_int32(env, argv[4], &max_batches) != napi_ok || max_batches < 1) return throw_error(env, "maxBatchesPerWake must be positive");
  napi_valuetype cb_type;
  if (napi_typeof(env, argv[5], &cb_type) != napi_ok || cb_type != napi_function) return throw_error(env, "onBatch must be a function");

  int type = 0;
  socklen_t type_len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0 || type != SOCK_DGRAM) return throw_error(env, "fd is not a datagram socket");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_error(env, "no event loop");

  reader_t *r = calloc(1, sizeof *r);
  struct mmsghdr *msgs = calloc(slots, sizeof *msgs);
  struct iovec *iovs = calloc(slots, sizeof *iovs);
  if (r == NULL || msgs == NULL || iovs == NULL) {
    free(r);
    free(msgs);
    free(iovs);
    return throw_error(env, "out of memory");
  }
  /* Our own descriptor for the same socket: libuv keeps dgram's, and closing either leaves the other. */
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    free(r);
    free(msgs);
    free(iovs);
    return throw_error(env, strerror(errno));
  }
  r->env = env;
  r->fd = dup_fd;
  r->slots = (unsigned)slots;
  r->slot_bytes = (size_t)slot_bytes;
  r->max_batches = (unsigned)max_batches;
  r->slab = slab;
  r->lengths = lengths;
  r->msgs = msgs;
  r->iovs = iovs;
  for (size_t i = 0; i < slots; i++) {
    iovs[i].iov_base = r->slab + i * r->slot_bytes;
    iovs[i].iov_len = r->slot_bytes;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int uv_err = uv_poll_init(loop, &r->poll, dup_fd);
  if (uv_err != 0) {
    close(dup_fd);
    free(r);
    free(msgs);
    free(iovs);
    return throw_error(env, uv_strerror(uv_err));
  }
  r->poll.data = r;
  napi_value resource, name, handle;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "STATSD_UDP_BATCH_READER", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &r->async_context);
  napi_create_reference(env, resource, 1, &r->resource_ref);
  napi_create_reference(env, argv[5], 1, &r->on_batch);
  napi_create_reference(env, argv[1], 1, &r->slab_ref);
  napi_create_reference(env, argv[3], 1, &r->lengths_ref);
  napi_add_env_cleanup_hook(env, on_env_cleanup, r);
  r->reading = 1;
  uv_err = uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (napi_create_external(env, r, on_finalize, NULL, &handle) != napi_ok) {
    stop_reading(r);
    r->finalized = 1;
    return throw_error(env, "could not create the handle");
  }
  if (uv_err != 0) {
    stop_reading(r);
    return throw_error(env, uv_strerror(uv_err));
  }
  return handle;
}

static reader_t *reader_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    throw_error(env, "expected a reader handle");
    return NULL;
  }
  return data;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  reader_t *r = reader_of(env, info);
  if (r != NULL) stop_reading(r);
  return NULL;
}

static void set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  reader_t *r = reader_of(env, info);
  if (r == NULL) return NULL;
  napi_value out;
  napi_create_object(env, &out);
  set_number(env, out, "wakeups", r->wakeups);
  set_number(env, out, "batches", r->batches);
  set_number(env, out, "datagrams", r->datagrams);
  set_number(env, out, "wouldBlock", r->would_block);
  set_number(env, out, "errors", r->errors);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL },
    { "stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
