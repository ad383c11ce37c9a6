#include "server/client_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

#include "common/check.h"

namespace server {
namespace {

// Redis's refusal past maxclients (networking.c, acceptCommonHandler).
constexpr std::string_view kMaxClientsError = "-ERR max number of clients reached\r\n";

// Bytes each read may bring (libuv suggests 64 KiB).
constexpr size_t kReadBufferBytes = 64 * 1024;

// A write buffer that grew past this is released after its write instead of being kept for the
// next one, so one huge reply does not pin its memory for the connection's lifetime.
constexpr size_t kKeepBufferBytes = 1024 * 1024;

// One uv_buf_t holds at most UINT_MAX bytes; larger writes are split into pieces of this size.
constexpr size_t kMaxPieceBytes = size_t{1} << 30;

// "ip:port" as Redis's anetFormatAddr writes it: IPv6 addresses in brackets.
std::string FormatAddress(const std::string& ip, int port) {
  if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// DeferredReply

void DeferredReply::Send(std::string resp) const {
  std::shared_ptr<Client> client = client_.lock();
  if (client) client->Complete(slot_, std::move(resp));
}

bool DeferredReply::client_closed() const {
  std::shared_ptr<Client> client = client_.lock();
  return !client || client->closed();
}

// ---------------------------------------------------------------------------------------------
// Client

Client::Client(ClientListener* listener, uint64_t id, bool authenticated)
    : listener_(listener),
      id_(id),
      authenticated_(authenticated),
      parser_(listener->options_.parser_limits, authenticated) {
  handle_.data = this;
  write_req_.data = this;
}

Client::~Client() = default;

void Client::set_authenticated(bool authenticated) {
  authenticated_ = authenticated;
  parser_.set_authenticated(authenticated);
}

void Client::Reply(std::string resp) {
  if (closed_) return;
  CHECK(in_request_) << "Client::Reply outside OnRequest (use Defer)";
  CHECK(!deferred_) << "Client::Reply after Defer";
  if (reply_.empty()) {
    reply_ = std::move(resp);
  } else {
    reply_.append(resp);
  }
}

DeferredReply Client::Defer() {
  CHECK(in_request_) << "Client::Defer outside OnRequest";
  CHECK(!deferred_) << "Client::Defer twice for one request";
  CHECK(reply_.empty()) << "Client::Defer after Reply";
  deferred_ = true;
  const uint64_t seq = next_seq_++;
  if (!closed_) {
    slots_.push_back(Slot{seq, false, std::string(), request_bytes_});
    inflight_request_bytes_ += request_bytes_;
  }
  return DeferredReply(weak_from_this(), seq, id_);
}

void Client::Close() {
  if (closed_) return;
  stop_parsing_ = true;
  StopReading();
  listener_->QueueFlush(this);
}

void Client::Kill() {
  if (closed_) return;
  closed_ = true;
  reading_ = false;
  // A write in flight completes with UV_ECANCELED before the close callback; the buffers are
  // released with the object, after that callback.
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), ClientListener::OnClientCloseCb);
}

void Client::Drain() {
  DCHECK(!in_request_);
  while (!closed_ && !stop_parsing_) {
    if (AtInflightCap()) {
      // Back-pressure: no more parsing or reading until replies drain (Flush resumes).
      paused_ = true;
      StopReading();
      return;
    }
    const protocol::RespParser::Result result = parser_.Next(&request_);
    if (result == protocol::RespParser::Result::kNeedMore) return;
    if (result == protocol::RespParser::Result::kError) {
      // As Redis: reply the error after the replies before it, then close.
      stop_parsing_ = true;
      StopReading();
      Enqueue(parser_.error() + "\r\n");
      if (!closed_) listener_->QueueFlush(this);
      return;
    }
    Dispatch();
  }
}

bool Client::AtInflightCap() const {
  return slots_.size() >= listener_->options_.max_inflight_requests ||
         inflight_request_bytes_ >= listener_->options_.max_inflight_request_bytes;
}

void Client::Dispatch() {
  listener_->stats_.total_commands_processed++;
  request_bytes_ = 0;
  for (const std::string& arg : request_.args) request_bytes_ += arg.size();
  in_request_ = true;
  deferred_ = false;
  reply_.clear();
  listener_->handler_->OnRequest(*this, std::move(request_.args));
  in_request_ = false;
  if (closed_) return;
  if (!deferred_) Enqueue(std::move(reply_));
}

void Client::Enqueue(std::string resp) {
  // An empty reply has nothing to keep in order.
  if (resp.empty() || closed_) return;
  if (slots_.empty()) {
    AppendOutput(std::move(resp));
    return;
  }
  waiting_bytes_ += resp.size();
  slots_.push_back(Slot{next_seq_++, true, std::move(resp)});
  CheckOutputLimit();
}

void Client::Complete(uint64_t seq, std::string resp) {
  if (closed_ || slots_.empty() || seq < slots_.front().seq) return;
  const uint64_t index = seq - slots_.front().seq;
  if (index >= slots_.size()) return;
  Slot& slot = slots_[index];
  if (slot.done) return;
  slot.done = true;
  inflight_request_bytes_ -= slot.request_bytes;
  waiting_bytes_ += resp.size();
  slot.reply = std::move(resp);
  bool popped = false;
  while (!closed_ && !slots_.empty() && slots_.front().done) {
    Slot& front = slots_.front();
    waiting_bytes_ -= front.reply.size();
    std::string reply = std::move(front.reply);
    slots_.pop_front();
    popped = true;
    AppendOutput(std::move(reply));
  }
  if (closed_) return;
  if (popped) {
    // The wait for the reply was not idleness: the idle clock restarts when the reply is ready.
    last_interaction_ms_ = uv_now(listener_->loop_);
    // A slot freed may resume a paused connection or make a pending close due.
    listener_->QueueFlush(this);
  }
  CheckOutputLimit();
}

void Client::AppendOutput(std::string resp) {
  if (resp.empty() || closed_) return;
  if (out_.empty() && out_.capacity() < resp.size()) {
    out_ = std::move(resp);
  } else {
    out_.append(resp);
  }
  listener_->QueueFlush(this);
  CheckOutputLimit();
}

void Client::CheckOutputLimit() {
  const size_t limit = listener_->options_.max_output_buffer_bytes;
  if (closed_ || limit == 0 || output_bytes() <= limit) return;
  listener_->stats_.client_output_buffer_limit_disconnections++;
  Kill();
}

bool Client::CloseIsDue() const {
  return (stop_parsing_ || (eof_ && !paused_)) && slots_.empty() && out_.empty() && !writing_;
}

void Client::Flush() {
  if (closed_) return;
  if (paused_ && !stop_parsing_ && !AtInflightCap()) {
    paused_ = false;
    Drain();
    StartReading();
  }
  if (closed_) return;
  if (!writing_ && !out_.empty()) StartWrite();
  if (!closed_ && CloseIsDue()) Kill();
}

void Client::StartWrite() {
  // Most replies fit the socket's buffer: written at once, they need no write request, no
  // callback and no change to the poll set (one syscall per flush).
  if (out_.size() <= kMaxPieceBytes) {
    uv_buf_t whole = uv_buf_init(out_.data(), static_cast<unsigned int>(out_.size()));
    const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&handle_), &whole, 1);
    if (n < 0 && n != UV_EAGAIN) {
      Kill();
      return;
    }
    if (n > 0) {
      listener_->stats_.total_net_output_bytes += static_cast<uint64_t>(n);
      last_interaction_ms_ = uv_now(listener_->loop_);
      if (static_cast<size_t>(n) == out_.size()) {
        if (out_.capacity() > kKeepBufferBytes) {
          std::string().swap(out_);
        } else {
          out_.clear();
        }
        return;
      }
      out_.erase(0, static_cast<size_t>(n));
    }
  }
  write_buf_.swap(out_);
  out_.clear();
  const size_t pieces = (write_buf_.size() + kMaxPieceBytes - 1) / kMaxPieceBytes;
  std::array<uv_buf_t, 4> small;
  std::vector<uv_buf_t> large;
  uv_buf_t* bufs = small.data();
  if (pieces > small.size()) {
    large.resize(pieces);
    bufs = large.data();
  }
  for (size_t i = 0; i < pieces; i++) {
    const size_t offset = i * kMaxPieceBytes;
    const size_t n = std::min(kMaxPieceBytes, write_buf_.size() - offset);
    bufs[i] = uv_buf_init(write_buf_.data() + offset, static_cast<unsigned int>(n));
  }
  // libuv copies the uv_buf_t array; the bytes stay in write_buf_ until OnWrite.
  const int r = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&handle_), bufs,
                         static_cast<unsigned int>(pieces), ClientListener::OnWriteCb);
  if (r < 0) {
    Kill();
    return;
  }
  writing_ = true;
}

void Client::OnWrite(int status) {
  writing_ = false;
  if (closed_) return;  // UV_ECANCELED: the connection was killed meanwhile
  if (status < 0) {
    Kill();
    return;
  }
  listener_->stats_.total_net_output_bytes += write_buf_.size();
  last_interaction_ms_ = uv_now(listener_->loop_);
  if (write_buf_.capacity() > kKeepBufferBytes) {
    std::string().swap(write_buf_);
  } else {
    write_buf_.clear();
  }
  if (!out_.empty() || CloseIsDue()) listener_->QueueFlush(this);
}

void Client::StartReading() {
  if (reading_ || closed_ || paused_ || stop_parsing_ || eof_) return;
  const int r = uv_read_start(reinterpret_cast<uv_stream_t*>(&handle_), ClientListener::OnAllocCb,
                              ClientListener::OnReadCb);
  if (r < 0) {
    Kill();
    return;
  }
  reading_ = true;
}

void Client::StopReading() {
  if (!reading_ || closed_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&handle_));
  reading_ = false;
}

void Client::OnRead(ssize_t nread, const uv_buf_t* buf) {
  if (closed_ || nread == 0) return;  // 0: nothing to read for now
  if (nread < 0) {
    if (nread == UV_EOF) {
      // Answer what was read, then close (Flush closes once it is written).
      eof_ = true;
      reading_ = false;  // libuv stopped reading at EOF
      listener_->QueueFlush(this);
    } else {
      Kill();
    }
    return;
  }
  listener_->stats_.total_net_input_bytes += static_cast<uint64_t>(nread);
  last_interaction_ms_ = uv_now(listener_->loop_);
  parser_.Feed(buf->base, static_cast<size_t>(nread));
  Drain();
  if (closed_ || stop_parsing_) return;
  // client-query-buffer-limit, and 1 MiB before authentication (CVE-2021-32675): close without
  // a reply, as Redis does.
  const ClientListener::Options& options = listener_->options_;
  const size_t limit = authenticated_ ? options.max_query_buffer_bytes
                                      : options.max_unauthenticated_query_buffer_bytes;
  if (parser_.pending_bytes() > limit) {
    listener_->stats_.client_query_buffer_limit_disconnections++;
    Kill();
  }
}

// ---------------------------------------------------------------------------------------------
// ClientListener

ClientListener::ClientListener(uv_loop_t* loop, Options options, ClientHandler* handler)
    : loop_(loop), options_(std::move(options)), handler_(handler), read_buf_(kReadBufferBytes) {
  CHECK(options_.max_inflight_requests >= 1);
}

ClientListener::~ClientListener() {
  CHECK(open_handles_ == 0) << open_handles_
                            << " handles still open: call Stop() and run the loop first";
}

common::Status ClientListener::Start() {
  CHECK(!started_) << "ClientListener::Start called twice";
  started_ = true;

  sockaddr_storage addr{};
  if (uv_ip4_addr(options_.bind.c_str(), options_.port, reinterpret_cast<sockaddr_in*>(&addr)) !=
          0 &&
      uv_ip6_addr(options_.bind.c_str(), options_.port, reinterpret_cast<sockaddr_in6*>(&addr)) !=
          0) {
    stopped_ = true;
    return common::Status::InvalidArgument("bind address '" + options_.bind +
                                           "' is not a numeric IPv4 or IPv6 address");
  }
  const std::string where = FormatAddress(options_.bind, options_.port);

  uv_tcp_init(loop_, &server_);
  server_.data = this;
  open_handles_++;
  // libuv reports EADDRINUSE from uv_listen rather than from uv_tcp_bind.
  int r = uv_tcp_bind(&server_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (r == 0) {
    r = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), options_.backlog, OnConnectionCb);
  }
  if (r < 0) {
    stopped_ = true;
    CloseHandle(reinterpret_cast<uv_handle_t*>(&server_));
    return common::Status::IOError("cannot listen on " + where + ": " + uv_strerror(r));
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  r = uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&bound), &len);
  if (r == 0 && bound.ss_family == AF_INET) {
    port_ = ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  } else if (r == 0 && bound.ss_family == AF_INET6) {
    port_ = ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  } else {
    port_ = options_.port;
  }

  // The loop's other handles keep it alive; these three only serve the connections.
  uv_prepare_init(loop_, &prepare_);
  prepare_.data = this;
  open_handles_++;
  uv_prepare_start(&prepare_, OnPrepareCb);
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));

  uv_idle_init(loop_, &idle_);
  idle_.data = this;
  open_handles_++;
  uv_unref(reinterpret_cast<uv_handle_t*>(&idle_));

  uv_timer_init(loop_, &sweep_);
  sweep_.data = this;
  open_handles_++;
  uv_unref(reinterpret_cast<uv_handle_t*>(&sweep_));
  if (options_.idle_timeout_ms > 0) {
    const uint64_t interval = std::clamp<uint64_t>(options_.idle_timeout_ms / 4, 1, 1000);
    uv_timer_start(&sweep_, OnSweepCb, interval, interval);
  }
  return common::Status::OK();
}

void ClientListener::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!started_) return;
  CloseHandle(reinterpret_cast<uv_handle_t*>(&server_));
  CloseHandle(reinterpret_cast<uv_handle_t*>(&prepare_));
  CloseHandle(reinterpret_cast<uv_handle_t*>(&idle_));
  CloseHandle(reinterpret_cast<uv_handle_t*>(&sweep_));
  for (auto& [id, client] : clients_) client->Kill();
  pending_.clear();
}

ClientListener::Stats ClientListener::stats() const {
  Stats stats = stats_;
  stats.connected_clients = clients_.size();
  return stats;
}

void ClientListener::ForEachClient(const std::function<void(Client&)>& fn) {
  for (auto& [id, client] : clients_) {
    if (!client->closed()) fn(*client);
  }
}

std::shared_ptr<Client> ClientListener::FindClient(uint64_t id) const {
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second->closed()) return nullptr;
  return it->second;
}

void ClientListener::CloseHandle(uv_handle_t* handle) {
  if (!uv_is_closing(handle)) uv_close(handle, OnOwnHandleCloseCb);
}

void ClientListener::OnConnection(int status) {
  if (status < 0 || stopped_) return;
  if (clients_.size() >= options_.maxclients) {
    Refuse(new Refused{this, {}});
    return;
  }
  // Not make_shared: the object (and its buffers) must go when the last strong reference does,
  // whatever DeferredReply (weak) handles remain.
  std::shared_ptr<Client> client(new Client(this, next_client_id_++, !options_.require_auth));
  uv_tcp_init(loop_, &client->handle_);
  open_handles_++;
  clients_.emplace(client->id(), client);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&server_),
                reinterpret_cast<uv_stream_t*>(&client->handle_)) != 0) {
    client->announced_ = false;
    client->Kill();
    return;
  }
  stats_.total_connections_received++;
  uv_tcp_nodelay(&client->handle_, 1);
  if (options_.tcp_keepalive_seconds > 0) {
    uv_tcp_keepalive(&client->handle_, 1, options_.tcp_keepalive_seconds);
  }

  sockaddr_storage peer{};
  int len = sizeof(peer);
  if (uv_tcp_getpeername(&client->handle_, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    std::array<char, INET6_ADDRSTRLEN + 1> ip{};
    if (peer.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&peer);
      uv_ip4_name(in, ip.data(), ip.size());
      client->address_ = FormatAddress(ip.data(), ntohs(in->sin_port));
      client->loopback_ = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (peer.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&peer);
      uv_ip6_name(in6, ip.data(), ip.size());
      client->address_ = FormatAddress(ip.data(), ntohs(in6->sin6_port));
      client->loopback_ =
          IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
          (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
    }
  }
  client->connected_at_ms_ = uv_now(loop_);
  client->last_interaction_ms_ = client->connected_at_ms_;

  handler_->OnConnect(*client);
  client->StartReading();
}

void ClientListener::Refuse(Refused* refused) {
  uv_tcp_t* handle = &refused->handle;
  uv_tcp_init(loop_, handle);
  handle->data = refused;
  open_handles_++;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&server_), reinterpret_cast<uv_stream_t*>(handle)) ==
      0) {
    // Best effort, as Redis: the new socket's send buffer takes these few bytes at once.
    uv_buf_t buf = uv_buf_init(const_cast<char*>(kMaxClientsError.data()),
                               static_cast<unsigned int>(kMaxClientsError.size()));
    (void)uv_try_write(reinterpret_cast<uv_stream_t*>(handle), &buf, 1);
    stats_.rejected_connections++;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(handle), OnRefusedCloseCb);
}

void ClientListener::QueueFlush(Client* client) {
  if (stopped_ || client->closed_ || client->flush_queued_) return;
  client->flush_queued_ = true;
  pending_.push_back(client->shared_from_this());
  // A flush is due before the loop next blocks: an active idle handle makes poll return at once
  // (this matters only when the reply came after this iteration's flush).
  uv_idle_start(&idle_, OnIdleCb);
}

void ClientListener::FlushAll() {
  flushing_.swap(pending_);
  for (const std::shared_ptr<Client>& client : flushing_) {
    client->Flush();
    client->flush_queued_ = false;
  }
  flushing_.clear();
  if (pending_.empty() && !stopped_) uv_idle_stop(&idle_);
}

void ClientListener::SweepIdle() {
  const uint64_t now = uv_now(loop_);
  for (auto& [id, client] : clients_) {
    // A client waiting for a reply is not idle (Redis spares blocked clients likewise).
    if (client->closed_ || !client->slots_.empty()) continue;
    if (now - client->last_interaction_ms_ > options_.idle_timeout_ms) {
      stats_.idle_timeout_disconnections++;
      client->Kill();
    }
  }
}

void ClientListener::OnClientClosed(Client* client) {
  open_handles_--;
  if (client->announced_) handler_->OnClose(*client);
  client->listener_ = nullptr;
  clients_.erase(client->id());  // may destroy *client
}

// --- libuv trampolines ---

void ClientListener::OnConnectionCb(uv_stream_t* server, int status) {
  static_cast<ClientListener*>(server->data)->OnConnection(status);
}

void ClientListener::OnPrepareCb(uv_prepare_t* prepare) {
  static_cast<ClientListener*>(prepare->data)->FlushAll();
}

void ClientListener::OnIdleCb(uv_idle_t* idle) {
  (void)idle;  // only there to keep poll from blocking; the prepare handle flushes
}

void ClientListener::OnSweepCb(uv_timer_t* timer) {
  static_cast<ClientListener*>(timer->data)->SweepIdle();
}

void ClientListener::OnAllocCb(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buf) {
  (void)suggested_size;
  // One buffer serves every connection: libuv calls alloc, reads, then the read callback (which
  // copies the bytes into the parser) before it allocates again.
  std::vector<char>& read_buf = static_cast<Client*>(handle->data)->listener_->read_buf_;
  *buf = uv_buf_init(read_buf.data(), static_cast<unsigned int>(read_buf.size()));
}

void ClientListener::OnReadCb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  static_cast<Client*>(stream->data)->OnRead(nread, buf);
}

void ClientListener::OnWriteCb(uv_write_t* req, int status) {
  static_cast<Client*>(req->data)->OnWrite(status);
}

void ClientListener::OnClientCloseCb(uv_handle_t* handle) {
  auto* client = static_cast<Client*>(handle->data);
  client->listener_->OnClientClosed(client);
}

void ClientListener::OnRefusedCloseCb(uv_handle_t* handle) {
  auto* refused = static_cast<Refused*>(handle->data);
  refused->listener->open_handles_--;
  delete refused;
}

void ClientListener::OnOwnHandleCloseCb(uv_handle_t* handle) {
  static_cast<ClientListener*>(handle->data)->open_handles_--;
}

}  // namespace server
