// ClientListener: the libuv layer that serves Redis clients. It accepts connections on the
// client port, parses each connection's bytes into requests with RespParser, hands every request
// to a Handler (the server's command table) and writes the replies back, in request order. It
// knows nothing of commands or Raft: a Handler decides what a request means and replies through
// the Client it is given, at once or later (after a Raft round trip).
//
// The model is Redis's networking.c:
//   - Reading: whatever a read brings is fed to the connection's parser, and every whole request
//     is dispatched at once, in order (a pipeline is parsed while earlier requests still wait
//     for their replies).
//   - Reply slots: each request owns a slot in its connection's reply queue. A Handler may fill
//     slots out of order (a fast read before a slow write); bytes leave in slot order only, so a
//     reply waits for every earlier one.
//   - Writing: replies are gathered per connection and written once per loop iteration, with one
//     uv_write per connection, from a uv_prepare handle (run right before the loop polls, like
//     Redis's beforeSleep). At most one write per connection is in flight; what accumulates
//     meanwhile goes out in the next write. A reply produced after the flush of an iteration
//     (e.g. by another prepare handle) starts a uv_idle handle, so the loop does not block in
//     poll before flushing it.
//   - Back-pressure: at most `max_inflight_requests` requests of a connection, and requests of
//     at most `max_inflight_request_bytes` (their arguments), may await their replies. At either
//     cap the connection stops parsing and reading until replies drain. This is flow control,
//     not an error: the client simply waits. (A pipeline of large MSETs, as redis-cli --pipe
//     sends, would otherwise put more work before the state machine than it applies within the
//     request timeout.)
//
// Closing. A connection is closed, without writing what it has pending:
//   - on a read or write error (the peer reset the connection);
//   - when its unparsed input exceeds the query buffer limit (Redis's client-query-buffer-limit:
//     1 GiB, or 1 MiB before authentication; CVE-2021-32675), without a reply, as Redis does;
//   - when the replies it holds (queued, waiting for an earlier reply, or being written) exceed
//     `max_output_buffer_bytes`, the hard limit of Redis's client-output-buffer-limit (0, the
//     default of Redis's normal class, means no limit);
//   - when it has been idle (nothing read or written, no request awaiting its reply) for longer
//     than `idle_timeout_ms` (Redis's `timeout`); the idle time of a connection that waited for a
//     deferred reply counts from when that reply was ready;
//   - by Client::Kill() and Stop().
// A connection is closed after every reply up to then is written:
//   - on a protocol error: the reply is the parser's error line (e.g. "-ERR Protocol error:
//     invalid multibulk length"), after the replies of the requests before it;
//   - by Client::Close() (QUIT: reply +OK, then Close()): nothing after it is parsed;
//   - when the peer ends its side (EOF): requests read before the EOF are still answered, as Redis
//     answers a request that arrives together with the FIN.
// A connection past `maxclients` is refused as Redis refuses it: a best-effort
// "-ERR max number of clients reached\r\n", then close; it counts as a rejected connection and
// the Handler never sees it.
//
// Use (the server's main):
//   ClientListener::Options options;
//   options.bind = config.bind;
//   options.port = config.port;
//   options.maxclients = config.maxclients;
//   options.idle_timeout_ms = uint64_t{config.timeout_seconds} * 1000;
//   options.require_auth = !config.requirepass.empty();
//   ClientListener listener(loop, options, &command_table);  // command_table: a ClientHandler
//   Status s = listener.Start();  // then uv_run(loop, UV_RUN_DEFAULT)
//   ...
//   listener.Stop();  // at shutdown, then run the loop until its handles have closed
//
// Thread-safety: none. Everything, the Handler's callbacks included, runs on the loop thread;
// Client and DeferredReply are used from the loop thread only.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "protocol/resp_parser.h"

namespace server {

class Client;
class ClientListener;

// The reply, to come later, of one request: what Client::Defer() returns. A cheap copyable
// value (a weak reference to the connection and the request's reply slot), so it can be captured
// by a std::function such as a proposal's callback.
class DeferredReply {
 public:
  // An empty handle: Send() does nothing and client_closed() is true.
  DeferredReply() = default;

  // Fills the request's reply slot with `resp` (one or more whole RESP replies, built with
  // RespWriter; empty for no reply). It is written once every earlier reply of the connection has
  // been. Does nothing when the connection has closed (or the listener stopped), or when the slot
  // was already filled: only the first Send of a request counts.
  void Send(std::string resp) const;

  // True once the connection has closed (or is closing): a Send would be dropped. Lets a handler
  // skip work nobody will read. A connection whose peer sent EOF is not closed until its
  // replies are written.
  bool client_closed() const;

  // Client::id() of the connection; 0 for an empty handle.
  uint64_t client_id() const { return client_id_; }

 private:
  friend class Client;
  DeferredReply(std::weak_ptr<Client> client, uint64_t slot, uint64_t client_id)
      : client_(std::move(client)), slot_(slot), client_id_(client_id) {}

  std::weak_ptr<Client> client_;
  uint64_t slot_ = 0;
  uint64_t client_id_ = 0;
};

// One client connection. Owned by its ClientListener, which hands it to the Handler by reference;
// keep a std::weak_ptr (weak_from_this()) or a DeferredReply to refer to it later, never a raw
// pointer: the object goes away once the connection has closed.
class Client : public std::enable_shared_from_this<Client> {
 public:
  // Per-connection state the Handler keeps (MULTI's queue, the selected protocol, ...): derive
  // from Context and store it with set_context(). Destroyed with the Client, after
  // ClientHandler::OnClose.
  class Context {
   public:
    virtual ~Context() = default;
  };

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Unique among the listener's connections for its lifetime, increasing from 1 (CLIENT ID).
  uint64_t id() const { return id_; }

  // The peer's address as Redis formats it: "127.0.0.1:51234", "[::1]:51234" (CLIENT LIST addr=).
  // "?:0" when the system could not tell.
  const std::string& address() const { return address_; }

  // True when the peer connects over loopback (127.0.0.0/8, ::1, or ::ffff:127.x.y.z); for
  // `enable-debug-command local` and protected mode.
  bool loopback() const { return loopback_; }

  // Whether the connection has authenticated. It starts as !Options::require_auth; the Handler
  // sets it when AUTH (or HELLO ... AUTH) succeeds, and may clear it again. Until it is set the
  // parser's pre-authentication limits and the 1 MiB query buffer limit apply. The change
  // applies from the next request parsed.
  bool authenticated() const { return authenticated_; }
  void set_authenticated(bool authenticated);

  // CLIENT SETNAME / GETNAME. Empty by default. The listener does not check it.
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

  // The Handler's per-connection state, null until set.
  Context* context() const { return context_.get(); }
  void set_context(std::unique_ptr<Context> context) { context_ = std::move(context); }

  // True once the connection is closed or closing: replies are dropped from then on.
  bool closed() const { return closed_; }

  // Replies to the request being handled, at once. `resp` is one or more whole RESP replies
  // (RespWriter); several calls are concatenated. A request for which the handler neither calls
  // Reply nor Defer gets no reply at all (as after CLIENT REPLY OFF). Does nothing once closed().
  // REQUIRES: called from ClientHandler::OnRequest for this client, and not after Defer().
  void Reply(std::string resp);

  // Keeps the reply slot of the request being handled open, to be filled later through the
  // returned handle. Replies to later requests wait behind it.
  // REQUIRES: called from ClientHandler::OnRequest for this client, at most once per request, and
  // not after Reply(). Every deferred reply must eventually be sent, or the connection stalls
  // (until it closes).
  DeferredReply Defer();

  // Closes the connection once every request parsed so far has its reply written; nothing more
  // is read or parsed. QUIT replies +OK and calls Close(). May be called at any time.
  void Close();

  // Closes the connection now, dropping the replies not yet written (CLIENT KILL).
  // ClientHandler::OnClose runs later, from the loop. May be called at any time, also from
  // OnRequest.
  void Kill();

  // Requests parsed whose replies are not yet queued for writing (deferred, or waiting behind a
  // deferred one).
  size_t inflight_requests() const { return slots_.size(); }

  // Reply bytes held for the client: queued, waiting behind an earlier reply, or being written.
  size_t output_bytes() const { return waiting_bytes_ + out_.size() + write_buf_.size(); }

  // Loop time (uv_now, ms) at which the connection was accepted, and of its last read, completed
  // write or deferred reply made ready (CLIENT LIST age= and idle=).
  uint64_t connected_at_ms() const { return connected_at_ms_; }
  uint64_t last_interaction_ms() const { return last_interaction_ms_; }

 private:
  friend class ClientListener;
  friend class DeferredReply;

  // A request whose reply is not yet queued for writing.
  struct Slot {
    uint64_t seq;              // the request's number on this connection
    bool done;                 // its reply is known: `reply`
    std::string reply;         // may be empty (no reply)
    size_t request_bytes = 0;  // until done: the request's argument bytes (the in-flight cap)
  };

  Client(ClientListener* listener, uint64_t id, bool authenticated);

  // Parses and dispatches buffered requests until the buffer holds no whole request, the
  // in-flight cap is reached, parsing stopped or the connection closed.
  void Drain();
  // Whether the connection holds as many requests awaiting replies as it may (either cap).
  bool AtInflightCap() const;
  void Dispatch();
  // Fills slot `seq` (a Defer()red request) and queues every leading completed reply.
  void Complete(uint64_t seq, std::string resp);
  // The reply of the request just handled (or a protocol error), in order.
  void Enqueue(std::string resp);
  void AppendOutput(std::string resp);
  void CheckOutputLimit();
  // Called once per loop iteration when there is something to do: resumes a connection paused by
  // back-pressure, writes what is queued, closes when a pending close is due.
  void Flush();
  void StartWrite();
  void StartReading();
  void StopReading();
  bool CloseIsDue() const;

  void OnRead(ssize_t nread, const uv_buf_t* buf);
  void OnWrite(int status);

  ClientListener* listener_;  // null once closed
  const uint64_t id_;
  uv_tcp_t handle_;
  uv_write_t write_req_;
  std::string address_ = "?:0";
  bool loopback_ = false;
  bool authenticated_;
  std::string name_;
  std::unique_ptr<Context> context_;

  protocol::RespParser parser_;
  protocol::Request request_;  // reused for each request parsed

  // Handling of the request being dispatched (OnRequest is on the stack).
  bool in_request_ = false;
  bool deferred_ = false;
  std::string reply_;  // Reply()'s bytes for that request

  std::deque<Slot> slots_;  // in request order; seq contiguous
  uint64_t next_seq_ = 0;
  size_t waiting_bytes_ = 0;           // bytes of completed replies still in slots_
  size_t request_bytes_ = 0;           // argument bytes of the request being dispatched
  size_t inflight_request_bytes_ = 0;  // request_bytes of the slots not done

  std::string out_;        // replies queued for the next write
  std::string write_buf_;  // the write in flight (must stay put until its callback)
  bool writing_ = false;

  bool reading_ = false;       // uv_read_start is in effect
  bool paused_ = false;        // parsing and reading stopped by the in-flight cap
  bool stop_parsing_ = false;  // Close() or a protocol error: parse nothing more
  bool eof_ = false;           // the peer ended its side
  bool flush_queued_ = false;  // in the listener's list for the next flush
  bool closed_ = false;        // uv_close was called
  bool announced_ = true;      // ClientHandler::OnConnect saw it (so OnClose is due)

  uint64_t connected_at_ms_ = 0;
  uint64_t last_interaction_ms_ = 0;
};

// What the server implements: called for every request and at the edges of a connection's life.
class ClientHandler {
 public:
  virtual ~ClientHandler() = default;

  // A connection was accepted (not one refused by maxclients). Optional.
  virtual void OnConnect(Client& client) { (void)client; }

  // One request, in the connection's order: `args` holds the command name and its arguments
  // (never empty, binary-safe) and may be moved from. Reply with client.Reply() now, or with
  // client.Defer() and DeferredReply::Send() later.
  virtual void OnRequest(Client& client, std::vector<std::string>&& args) = 0;

  // The connection has closed (client.closed() is true); its context is still there. Called once
  // per connection that OnConnect saw, from the loop (never from inside another callback of the
  // listener). Optional.
  virtual void OnClose(Client& client) { (void)client; }
};

class ClientListener {
 public:
  using Handler = ClientHandler;

  struct Options {
    // Where to listen: a numeric IPv4 or IPv6 address (Config::bind) and a port (Config::port);
    // port 0 picks a free one (see port()).
    std::string bind = "127.0.0.1";
    uint16_t port = 0;
    int backlog = 511;  // Redis's tcp-backlog

    // At most this many connections at once; more are refused (Config::maxclients).
    uint32_t maxclients = 10000;
    // Close a connection idle for longer than this; 0: never (Config::timeout_seconds * 1000).
    uint64_t idle_timeout_ms = 0;
    // SO_KEEPALIVE probe delay in seconds (Redis's tcp-keepalive); 0: off.
    unsigned tcp_keepalive_seconds = 300;

    // True when a password is set (Config::requirepass non-empty): connections start
    // unauthenticated, under the pre-authentication limits.
    bool require_auth = false;

    // Protocol limits (RespParser's, Redis's defaults).
    protocol::RespParser::Limits parser_limits;
    // Unparsed input a connection may hold (RespParser::pending_bytes), after and before
    // authentication; past it the connection is closed (client-query-buffer-limit).
    size_t max_query_buffer_bytes = size_t{1} << 30;
    size_t max_unauthenticated_query_buffer_bytes = size_t{1} << 20;
    // Reply bytes a connection may hold (Client::output_bytes); past it the connection is closed.
    // 0: no limit (Redis's default for normal clients).
    size_t max_output_buffer_bytes = 0;
    // Requests of one connection that may await their replies before it stops reading.
    // REQUIRES: >= 1.
    size_t max_inflight_requests = 1024;
    // Argument bytes of the requests of one connection that await their replies, at or past
    // which it stops reading (a single larger request is still taken, alone).
    size_t max_inflight_request_bytes = size_t{8} << 20;
  };

  // Counters for INFO, named after Redis's fields.
  struct Stats {
    uint64_t connected_clients = 0;           // open connections (# Clients)
    uint64_t total_connections_received = 0;  // accepted, refused ones excluded
    uint64_t rejected_connections = 0;        // refused by maxclients
    uint64_t total_commands_processed = 0;    // requests handed to the Handler
    uint64_t total_net_input_bytes = 0;       // bytes read from clients
    uint64_t total_net_output_bytes = 0;      // bytes written to clients
    uint64_t client_query_buffer_limit_disconnections = 0;
    uint64_t client_output_buffer_limit_disconnections = 0;
    uint64_t idle_timeout_disconnections = 0;  // ours; Redis has no such field
  };

  // REQUIRES: `loop` and `handler` outlive the listener's handles (until the loop has run the
  // close callbacks after Stop()).
  ClientListener(uv_loop_t* loop, Options options, ClientHandler* handler);
  // REQUIRES: never started, or Stop() was called and the loop then ran until every handle closed
  // (uv_run returned for lack of active handles, or uv_loop_alive() is false).
  ~ClientListener();

  ClientListener(const ClientListener&) = delete;
  ClientListener& operator=(const ClientListener&) = delete;

  // Binds and listens. Returns InvalidArgument for a malformed bind address, IOError naming the
  // address for a failure to bind or listen (e.g. the port is in use). After a failure, run the
  // loop until its handles have closed before destroying the listener.
  // REQUIRES: called once.
  common::Status Start();

  // The port listened on (the one picked when Options::port is 0); 0 before Start().
  uint16_t port() const { return port_; }

  // Stops listening and closes every connection without writing what is pending;
  // ClientHandler::OnClose runs for each as the loop closes them. Later DeferredReply::Send calls
  // are dropped. Safe to call more than once, and from a Handler callback.
  void Stop();

  Stats stats() const;

  // Calls `fn` for every open connection (CLIENT LIST, INFO clients), in no particular order.
  // `fn` may Close() or Kill() connections.
  void ForEachClient(const std::function<void(Client&)>& fn);

  // The open connection with that id, or null (CLIENT KILL ID).
  std::shared_ptr<Client> FindClient(uint64_t id) const;

 private:
  friend class Client;

  // A connection refused by maxclients, alive until its handle closes.
  struct Refused {
    ClientListener* listener;
    uv_tcp_t handle;
  };

  void OnConnection(int status);
  void Refuse(Refused* refused);
  void QueueFlush(Client* client);
  void FlushAll();
  void SweepIdle();
  void OnClientClosed(Client* client);
  void CloseHandle(uv_handle_t* handle);

  static void OnConnectionCb(uv_stream_t* server, int status);
  static void OnPrepareCb(uv_prepare_t* prepare);
  static void OnIdleCb(uv_idle_t* idle);
  static void OnSweepCb(uv_timer_t* timer);
  static void OnAllocCb(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buf);
  static void OnReadCb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWriteCb(uv_write_t* req, int status);
  static void OnClientCloseCb(uv_handle_t* handle);
  static void OnRefusedCloseCb(uv_handle_t* handle);
  static void OnOwnHandleCloseCb(uv_handle_t* handle);

  uv_loop_t* const loop_;
  const Options options_;
  ClientHandler* const handler_;

  bool started_ = false;
  bool stopped_ = false;
  int open_handles_ = 0;  // handles initialized and not yet closed (their close callback ran)
  uint16_t port_ = 0;

  uv_tcp_t server_;
  uv_prepare_t prepare_;  // the once-per-iteration flush
  uv_idle_t idle_;        // keeps poll from blocking while a flush is pending
  uv_timer_t sweep_;      // the idle-timeout sweep (when idle_timeout_ms > 0)

  uint64_t next_client_id_ = 1;
  std::unordered_map<uint64_t, std::shared_ptr<Client>> clients_;  // until their close callback
  std::vector<std::shared_ptr<Client>> pending_;                   // to flush
  std::vector<std::shared_ptr<Client>> flushing_;                  // being flushed
  std::vector<char> read_buf_;  // every read lands here, then is copied into a parser

  Stats stats_;
};

}  // namespace server
