#include "server/peer_transport.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/coding.h"

namespace server {
namespace {

// protocol/ cannot include raft/, so the copy between raft::Message and PeerRaftMessage
// checks here that the two numberings agree (peer.h, peer.fbs).
static_assert(static_cast<uint8_t>(raft::MessageType::kPreVote) == 0);
static_assert(static_cast<uint8_t>(raft::MessageType::kPreVoteResponse) == 1);
static_assert(static_cast<uint8_t>(raft::MessageType::kVote) == 2);
static_assert(static_cast<uint8_t>(raft::MessageType::kVoteResponse) == 3);
static_assert(static_cast<uint8_t>(raft::MessageType::kAppend) == 4);
static_assert(static_cast<uint8_t>(raft::MessageType::kAppendResponse) == 5);
static_assert(static_cast<uint8_t>(raft::MessageType::kHeartbeat) == 6);
static_assert(static_cast<uint8_t>(raft::MessageType::kHeartbeatResponse) == 7);
static_assert(static_cast<uint8_t>(raft::MessageType::kSnapshot) == 8);
static_assert(static_cast<uint8_t>(raft::MessageType::kTimeoutNow) ==
              protocol::kMaxPeerMessageType);
static_assert(static_cast<uint8_t>(raft::EntryType::kNormal) == 0);
static_assert(static_cast<uint8_t>(raft::EntryType::kNoop) == protocol::kMaxPeerEntryType);

constexpr size_t kNonceBytes = 32;
constexpr size_t kMacBytes = 32;  // SHA-256
constexpr std::string_view kMacLabel = "raftkv-peer-v1";
constexpr char kDialerProofTag = 'D';
constexpr char kAcceptorProofTag = 'A';
// Bytes a connection may hold buffered before its handshake completes. A Hello or a
// HelloProof takes about a hundred.
constexpr size_t kMaxUnauthenticatedBytes = 64 << 10;
constexpr size_t kReadBufferBytes = 64 << 10;
constexpr unsigned kKeepAliveDelaySeconds = 30;
constexpr int kListenBacklog = 128;

protocol::PeerRaftMessage ToWire(const raft::Message& m) {
  protocol::PeerRaftMessage p;
  p.type = static_cast<uint8_t>(m.type);
  p.from = m.from;
  p.to = m.to;
  p.term = m.term;
  p.log_term = m.log_term;
  p.index = m.index;
  p.entries.reserve(m.entries.size());
  for (const raft::Entry& e : m.entries) {
    p.entries.push_back(protocol::PeerEntry{e.term, e.index, static_cast<uint8_t>(e.type), e.data});
  }
  p.commit = m.commit;
  p.reject = m.reject;
  p.reject_hint = m.reject_hint;
  p.context = m.context;
  p.snapshot_index = m.snapshot.index;
  p.snapshot_term = m.snapshot.term;
  return p;
}

// REQUIRES: p came out of a FrameDecoder, which checked the type ranges.
raft::Message FromWire(protocol::PeerRaftMessage&& p) {
  raft::Message m;
  m.type = static_cast<raft::MessageType>(p.type);
  m.from = p.from;
  m.to = p.to;
  m.term = p.term;
  m.log_term = p.log_term;
  m.index = p.index;
  m.entries.reserve(p.entries.size());
  for (protocol::PeerEntry& e : p.entries) {
    m.entries.push_back(
        raft::Entry{e.term, e.index, static_cast<raft::EntryType>(e.type), std::move(e.data)});
  }
  m.commit = p.commit;
  m.reject = p.reject;
  m.reject_hint = p.reject_hint;
  m.context = p.context;
  m.snapshot = raft::SnapshotMeta{p.snapshot_index, p.snapshot_term};
  return m;
}

const char* FrameName(const protocol::PeerFrame& frame) {
  switch (frame.index()) {
    case 0:
      return "Hello";
    case 1:
      return "HelloProof";
    case 2:
      return "RaftMessage";
    case 3:
      return "SnapshotChunk";
    case 4:
      return "SnapshotAck";
    case 5:
      return "ForwardRequest";
    default:
      return "ForwardReply";
  }
}

// Text from the wire, made safe to log: at most 64 bytes, non-printable bytes as \xHH.
std::string Printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 64; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

std::string FormatAddress(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    uv_ip4_name(a, host, sizeof(host));
    port = ntohs(a->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(a, host, sizeof(host));
    port = ntohs(a->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "?";
}

// Fills *out from a numeric address, or else through the resolver (blocking).
common::Status ResolveAddress(const std::string& host, uint16_t port, sockaddr_storage* out) {
  std::memset(out, 0, sizeof(*out));
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(out)) == 0) {
    return common::Status::OK();
  }
  if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(out)) == 0) {
    return common::Status::OK();
  }
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int r = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &result);
  if (r != 0 || result == nullptr) {
    return common::Status::InvalidArgument("cannot resolve '" + host + "': " + gai_strerror(r));
  }
  std::memcpy(out, result->ai_addr, std::min<size_t>(result->ai_addrlen, sizeof(*out)));
  ::freeaddrinfo(result);
  return common::Status::OK();
}

bool IsLoopback(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
  }
  return false;
}

void DefaultLog(LogLevel level, std::string_view line) {
  if (level < LogLevel::kNotice) return;
  std::fprintf(stderr, "peer transport: %.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace

struct PeerTransport::Rep {
  enum class Direction { kDialed, kAccepted };
  enum class State { kConnecting, kAwaitHello, kAwaitProof, kOpen };

  // One TCP connection and its handshake timer. Owned by the loop once closing: it deletes
  // itself when both handles are closed. `rep` may be used only while !closing.
  struct Conn {
    Rep* rep = nullptr;
    Direction direction = Direction::kDialed;
    State state = State::kConnecting;
    uint64_t expected_id = 0;  // dialed: the member dialed
    uint64_t remote_id = 0;    // from the other side's Hello
    std::string label;         // for log lines
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    int open_handles = 0;
    bool closing = false;
    bool counted_pending = false;  // accepted, counted in pending_handshakes
    bool reported_rejects = false;
    protocol::FrameDecoder decoder;
    std::string local_nonce;
    std::string remote_nonce;
    std::unique_ptr<char[]> read_buffer;
    // Traffic handed to uv_write and not yet completed (one batch at a time).
    bool write_in_flight = false;
    size_t inflight_frames = 0;
    size_t inflight_bytes = 0;

    explicit Conn(size_t max_frame_bytes) : decoder(max_frame_bytes) {}
  };

  // One uv_write: its request, the bytes it writes, and whether they are peer traffic.
  struct WriteReq {
    uv_write_t req;
    Conn* conn = nullptr;
    bool traffic = false;
    std::vector<std::string> frames;
    std::vector<uv_buf_t> bufs;
  };

  struct Peer {
    Rep* rep = nullptr;
    uint64_t id = 0;
    std::string label;  // "node 2 (host:port)"
    sockaddr_storage address;
    Conn* dialed = nullptr;    // the connection this node sends on, if any
    Conn* accepted = nullptr;  // the authenticated connection it receives on, if any
    uv_timer_t* reconnect_timer = nullptr;
    uint64_t backoff_ms = 0;
    std::deque<std::string> queue;  // encoded frames not yet handed to uv_write
    size_t queue_bytes = 0;
    PeerStats stats;
  };

  // A frame held by the unreliable fault until its timer fires. Owned by `delayed` until then
  // (or Stop), and by the loop while its timer closes.
  struct DelayedFrame {
    uv_timer_t timer;
    Rep* rep = nullptr;
    uint64_t peer = 0;
    std::string bytes;
  };

  Rep(uv_loop_t* l, Options o)
      : loop(l),
        options(std::move(o)),
        rng(options.jitter_seed),
        fault_rng(options.jitter_seed ^ 0x9e3779b97f4a7c15ULL) {
    CHECK(loop != nullptr);
    CHECK(options.self_id != 0);
    CHECK(options.members.count(options.self_id) == 1) << "self " << options.self_id;
    CHECK(!options.cluster_secret.empty());
    CHECK(options.max_frame_bytes >= protocol::kMinPeerFrameBytes &&
          options.max_frame_bytes <= protocol::kMaxPeerFrameBytesLimit);
    CHECK(options.max_queue_frames > 0 && options.max_queue_bytes > 0);
    CHECK(options.reconnect_initial_ms > 0 &&
          options.reconnect_max_ms >= options.reconnect_initial_ms);
    CHECK(options.handshake_timeout_ms > 0);
    if (!options.on_log) options.on_log = DefaultLog;
    for (const auto& [id, address] : options.members) {
      CHECK(id != 0);
      if (id == options.self_id) continue;
      auto peer = std::make_unique<Peer>();
      peer->rep = this;
      peer->id = id;
      peer->label = "node " + std::to_string(id) + " (" + address.host + ":" +
                    std::to_string(address.port) + ")";
      std::memset(&peer->address, 0, sizeof(peer->address));
      peer->backoff_ms = options.reconnect_initial_ms;
      peers.emplace(id, std::move(peer));
    }
  }

  // ---------------------------------------------------------------- start and stop

  common::Status Start() {
    CHECK(!started && !stopped) << "Start() called twice or after Stop()";
    for (auto& [id, peer] : peers) {
      const PeerAddress& a = options.members.at(id);
      common::Status s = ResolveAddress(a.host, a.port, &peer->address);
      if (!s.ok())
        return common::Status::InvalidArgument("node " + std::to_string(id) + ": " + s.message());
    }
    sockaddr_storage bind_address;
    std::memset(&bind_address, 0, sizeof(bind_address));
    uint16_t port = options.members.at(options.self_id).port;
    if (uv_ip4_addr(options.bind.c_str(), port, reinterpret_cast<sockaddr_in*>(&bind_address)) !=
            0 &&
        uv_ip6_addr(options.bind.c_str(), port, reinterpret_cast<sockaddr_in6*>(&bind_address)) !=
            0) {
      return common::Status::InvalidArgument("bind '" + options.bind +
                                             "' is not a numeric IPv4 or IPv6 address");
    }
    listener = new uv_tcp_t;
    CHECK(uv_tcp_init(loop, listener) == 0);
    listener->data = this;
    int r = uv_tcp_bind(listener, reinterpret_cast<const sockaddr*>(&bind_address), 0);
    if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(listener), kListenBacklog, OnAccept);
    if (r != 0) {
      CloseListener();
      return common::Status::IOError("cannot listen for peers on " + FormatAddress(bind_address) +
                                     ": " + uv_strerror(r));
    }
    started = true;
    if (!IsLoopback(bind_address) && options.cluster_secret == kDevelopmentClusterSecret) {
      Log(LogLevel::kWarning,
          "the peer port listens beyond loopback with the public development cluster-secret: "
          "set cluster-secret");
    }
    Log(LogLevel::kVerbose, "listening for peers on " + FormatAddress(bind_address));
    for (auto& [id, peer] : peers) {
      peer->reconnect_timer = new uv_timer_t;
      CHECK(uv_timer_init(loop, peer->reconnect_timer) == 0);
      peer->reconnect_timer->data = peer.get();
      Dial(*peer);
    }
    return common::Status::OK();
  }

  void Stop() {
    if (stopped) return;
    stopped = true;
    CloseListener();
    for (auto& [id, peer] : peers) {
      if (peer->reconnect_timer != nullptr) {
        uv_close(reinterpret_cast<uv_handle_t*>(peer->reconnect_timer), DeleteTimer);
        peer->reconnect_timer = nullptr;
      }
    }
    std::vector<Conn*> all(conns.begin(), conns.end());
    for (Conn* c : all) Close(c, "transport stopped", LogLevel::kDebug);
    for (DelayedFrame* d : delayed) {
      uv_close(reinterpret_cast<uv_handle_t*>(&d->timer), DeleteDelayed);
    }
    delayed.clear();
    for (auto& [id, peer] : peers) DropQueue(*peer, /*count=*/false);
  }

  void CloseListener() {
    if (listener == nullptr) return;
    uv_close(reinterpret_cast<uv_handle_t*>(listener), DeleteTcp);
    listener = nullptr;
  }

  static void DeleteTimer(uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); }
  static void DeleteTcp(uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); }
  static void DeleteDelayed(uv_handle_t* h) { delete static_cast<DelayedFrame*>(h->data); }

  // ---------------------------------------------------------------- connections

  Conn* NewConn(Direction direction) {
    auto* c = new Conn(options.max_frame_bytes);
    c->rep = this;
    c->direction = direction;
    CHECK(uv_tcp_init(loop, &c->tcp) == 0);
    CHECK(uv_timer_init(loop, &c->timer) == 0);
    c->open_handles = 2;
    c->tcp.data = c;
    c->timer.data = c;
    c->connect_req.data = c;
    conns.insert(c);
    CHECK(uv_timer_start(&c->timer, OnHandshakeTimeout, options.handshake_timeout_ms, 0) == 0);
    return c;
  }

  void Dial(Peer& peer) {
    if (stopped || peer.dialed != nullptr) return;
    Conn* c = NewConn(Direction::kDialed);
    c->expected_id = peer.id;
    c->label = peer.label;
    peer.dialed = c;
    int r = uv_tcp_connect(&c->connect_req, &c->tcp,
                           reinterpret_cast<const sockaddr*>(&peer.address), OnConnect);
    if (r != 0) Close(c, std::string("cannot connect: ") + uv_strerror(r), LogLevel::kVerbose);
  }

  static void OnConnect(uv_connect_t* req, int status) {
    auto* c = static_cast<Conn*>(req->data);
    if (c->closing) return;  // closed while connecting (status is UV_ECANCELED)
    if (status != 0) {
      c->rep->Close(c, std::string("cannot connect: ") + uv_strerror(status), LogLevel::kVerbose);
      return;
    }
    // Dialing a local port nobody listens on can connect the socket to itself (TCP
    // simultaneous open, when the kernel picks that very port as the source). It would hold
    // the port its peer needs to listen on: drop it at once and dial again later.
    sockaddr_storage local, remote;
    int local_len = sizeof(local), remote_len = sizeof(remote);
    if (uv_tcp_getsockname(&c->tcp, reinterpret_cast<sockaddr*>(&local), &local_len) == 0 &&
        uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&remote), &remote_len) == 0 &&
        local_len == remote_len && FormatAddress(local) == FormatAddress(remote)) {
      c->rep->Close(c, "connected to itself", LogLevel::kVerbose);
      return;
    }
    c->rep->BeginHandshake(c);
  }

  static void OnAccept(uv_stream_t* server, int status) {
    auto* rep = static_cast<Rep*>(server->data);
    if (status != 0) {
      rep->Log(LogLevel::kWarning,
               std::string("accepting a peer connection failed: ") + uv_strerror(status));
      return;
    }
    Conn* c = rep->NewConn(Direction::kAccepted);
    c->label = "accepted connection";
    int r = uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp));
    if (r != 0) {
      rep->Close(c, std::string("accept: ") + uv_strerror(r), LogLevel::kWarning);
      return;
    }
    sockaddr_storage from;
    int len = sizeof(from);
    if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&from), &len) == 0) {
      c->label = "connection from " + FormatAddress(from);
    }
    if (rep->pending_handshakes >= rep->options.max_pending_handshakes) {
      rep->Refuse(c, "too many connections in their handshake");
      return;
    }
    rep->pending_handshakes++;
    c->counted_pending = true;
    rep->BeginHandshake(c);
  }

  // Sends our Hello and starts reading.
  void BeginHandshake(Conn* c) {
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, kKeepAliveDelaySeconds);
    c->local_nonce.resize(kNonceBytes);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(c->local_nonce.data()),
                   static_cast<int>(kNonceBytes)) != 1) {
      Close(c, "RAND_bytes failed: no nonce", LogLevel::kWarning);
      return;
    }
    c->state = State::kAwaitHello;
    protocol::Hello hello;
    hello.version = protocol::kPeerProtocolVersion;
    hello.cluster_id = options.cluster_id;
    hello.node_id = options.self_id;
    hello.nonce = c->local_nonce;
    WriteHandshake(c, protocol::EncodeFrame(hello));
    if (c->closing) return;
    int r = uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), OnAlloc, OnRead);
    if (r != 0) Close(c, std::string("cannot read: ") + uv_strerror(r), LogLevel::kWarning);
  }

  static void OnHandshakeTimeout(uv_timer_t* timer) {
    auto* c = static_cast<Conn*>(timer->data);
    if (c->closing) return;
    c->rep->Refuse(
        c, "no handshake within " + std::to_string(c->rep->options.handshake_timeout_ms) + " ms");
  }

  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(handle->data);
    // One buffer per connection, reused: libuv hands each one back in OnRead before the next
    // allocation.
    if (!c->read_buffer) c->read_buffer = std::make_unique<char[]>(kReadBufferBytes);
    *buf = uv_buf_init(c->read_buffer.get(), static_cast<unsigned int>(kReadBufferBytes));
  }

  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(stream->data);
    if (c->closing || nread == 0) return;
    Rep* rep = c->rep;
    if (nread < 0) {
      bool open = c->state == State::kOpen;
      rep->Close(c,
                 nread == UV_EOF
                     ? std::string("closed by the other side")
                     : std::string("read failed: ") + uv_strerror(static_cast<int>(nread)),
                 open ? LogLevel::kNotice : LogLevel::kVerbose);
      return;
    }
    c->decoder.Feed(buf->base, static_cast<size_t>(nread));
    rep->ProcessFrames(c);
  }

  void ProcessFrames(Conn* c) {
    protocol::PeerFrame frame;
    while (!c->closing) {
      protocol::FrameDecoder::Result r = c->decoder.Next(&frame);
      if (r == protocol::FrameDecoder::kNeedMore) break;
      if (r == protocol::FrameDecoder::kError) {
        Refuse(c, "malformed stream: " + c->decoder.error());
        return;
      }
      HandleFrame(c, std::move(frame));
    }
    if (!c->closing && c->state != State::kOpen &&
        c->decoder.buffered_bytes() > kMaxUnauthenticatedBytes) {
      Refuse(c, "more than " + std::to_string(kMaxUnauthenticatedBytes) +
                    " bytes before the handshake completed");
    }
  }

  // ---------------------------------------------------------------- handshake

  void HandleFrame(Conn* c, protocol::PeerFrame&& frame) {
    switch (c->state) {
      case State::kConnecting:
        PANIC() << "frame before the connection was established";
      case State::kAwaitHello: {
        auto* hello = std::get_if<protocol::Hello>(&frame);
        if (hello == nullptr) {
          Refuse(c, std::string("expected Hello, got ") + FrameName(frame));
          return;
        }
        OnHello(c, std::move(*hello));
        return;
      }
      case State::kAwaitProof: {
        auto* proof = std::get_if<protocol::HelloProof>(&frame);
        if (proof == nullptr) {
          Refuse(c, std::string("expected HelloProof, got ") + FrameName(frame));
          return;
        }
        OnProof(c, *proof);
        return;
      }
      case State::kOpen:
        OnTraffic(c, std::move(frame));
        return;
    }
  }

  void OnHello(Conn* c, protocol::Hello&& hello) {
    if (hello.version != protocol::kPeerProtocolVersion) {
      Refuse(c, "peer protocol version " + std::to_string(hello.version) + " (this node speaks " +
                    std::to_string(protocol::kPeerProtocolVersion) + ")");
      return;
    }
    if (hello.cluster_id != options.cluster_id) {
      Refuse(c, "cluster id '" + Printable(hello.cluster_id) + "' is not this cluster's ('" +
                    options.cluster_id + "')");
      return;
    }
    const uint64_t id = hello.node_id;
    if (id == options.self_id) {
      Refuse(c, "it claims this node's own id " + std::to_string(id));
      return;
    }
    if (peers.count(id) == 0) {
      Refuse(c, "node id " + std::to_string(id) + " is not a member of the cluster");
      return;
    }
    if (c->direction == Direction::kDialed && id != c->expected_id) {
      Refuse(c, "expected node " + std::to_string(c->expected_id) + " there, found node " +
                    std::to_string(id));
      return;
    }
    if (hello.nonce.size() != kNonceBytes) {
      Refuse(c, "nonce of " + std::to_string(hello.nonce.size()) + " bytes (want " +
                    std::to_string(kNonceBytes) + ")");
      return;
    }
    if (CRYPTO_memcmp(hello.nonce.data(), c->local_nonce.data(), kNonceBytes) == 0) {
      Refuse(c, "it echoed this node's nonce");
      return;
    }
    c->remote_id = id;
    c->remote_nonce = std::move(hello.nonce);
    if (c->direction == Direction::kAccepted) c->label += " (node " + std::to_string(id) + ")";
    protocol::HelloProof proof;
    proof.mac = Mac(*c, c->direction == Direction::kDialed ? kDialerProofTag : kAcceptorProofTag);
    c->state = State::kAwaitProof;
    WriteHandshake(c, protocol::EncodeFrame(proof));
  }

  void OnProof(Conn* c, const protocol::HelloProof& proof) {
    const std::string expected =
        Mac(*c, c->direction == Direction::kDialed ? kAcceptorProofTag : kDialerProofTag);
    if (proof.mac.size() != kMacBytes ||
        CRYPTO_memcmp(proof.mac.data(), expected.data(), kMacBytes) != 0) {
      Refuse(c, "its proof does not verify (is cluster-secret the same on both nodes?)");
      return;
    }
    c->state = State::kOpen;
    uv_timer_stop(&c->timer);
    Peer& peer = *peers.at(c->remote_id);
    if (c->direction == Direction::kDialed) {
      peer.backoff_ms = options.reconnect_initial_ms;
      peer.stats.connected = true;
      peer.stats.connects++;
      Log(LogLevel::kNotice, "connected to " + peer.label);
      Flush(peer);
      if (!stopped && options.on_peer_state) options.on_peer_state(peer.id, true);
      return;
    }
    c->counted_pending = false;
    pending_handshakes--;
    Conn* older = peer.accepted;
    peer.accepted = c;
    peer.stats.inbound_connected = true;
    Log(LogLevel::kVerbose, "accepted " + c->label);
    if (older != nullptr) {
      inbound_replaced++;
      Close(older, "replaced by a newer connection from node " + std::to_string(peer.id),
            LogLevel::kNotice);
    }
  }

  // HMAC-SHA256 over the handshake transcript (see peer_transport.h).
  std::string Mac(const Conn& c, char tag) const {
    const bool dialed = c.direction == Direction::kDialed;
    std::string msg(kMacLabel);
    msg.push_back(tag);
    std::string len;
    common::PutBigEndian64(&len, options.cluster_id.size());
    msg.append(len, 4, 4);  // the low 4 bytes: a 32-bit length
    msg += options.cluster_id;
    common::PutBigEndian64(&msg, dialed ? options.self_id : c.remote_id);
    common::PutBigEndian64(&msg, dialed ? c.remote_id : options.self_id);
    msg += dialed ? c.local_nonce : c.remote_nonce;
    msg += dialed ? c.remote_nonce : c.local_nonce;
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    CHECK(HMAC(EVP_sha256(), options.cluster_secret.data(),
               static_cast<int>(options.cluster_secret.size()),
               reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out,
               &out_len) != nullptr &&
          out_len == kMacBytes)
        << "HMAC-SHA256 failed";
    return std::string(reinterpret_cast<const char*>(out), out_len);
  }

  // ---------------------------------------------------------------- traffic

  void OnTraffic(Conn* c, protocol::PeerFrame&& frame) {
    if (c->direction == Direction::kDialed) {
      Refuse(c, std::string("unexpected ") + FrameName(frame) + " on a dialed connection");
      return;
    }
    Peer& peer = *peers.at(c->remote_id);
    uint64_t from = 0;
    uint64_t to = 0;
    if (auto* m = std::get_if<protocol::PeerRaftMessage>(&frame)) {
      from = m->from;
      to = m->to;
    } else if (auto* chunk = std::get_if<protocol::SnapshotChunk>(&frame)) {
      from = chunk->from;
      to = chunk->to;
    } else if (auto* ack = std::get_if<protocol::SnapshotAck>(&frame)) {
      from = ack->from;
      to = ack->to;
    } else if (auto* request = std::get_if<protocol::ForwardRequest>(&frame)) {
      from = request->from;
      to = request->to;
    } else if (auto* reply = std::get_if<protocol::ForwardReply>(&frame)) {
      from = reply->from;
      to = reply->to;
    } else {
      Refuse(c, std::string("handshake frame ") + FrameName(frame) + " after the handshake");
      return;
    }
    if (from != peer.id || to != options.self_id) {
      peer.stats.frames_rejected++;
      if (!c->reported_rejects) {
        c->reported_rejects = true;
        Log(LogLevel::kWarning, std::string("dropping a ") + FrameName(frame) + " from " +
                                    std::to_string(from) + " to " + std::to_string(to) +
                                    " received on " + c->label + " (further ones not logged)");
      }
      return;
    }
    if (faults.blocked.count(peer.id) != 0) {
      peer.stats.dropped_blocked_in++;
      return;
    }
    peer.stats.frames_received++;
    if (stopped) return;
    if (auto* m = std::get_if<protocol::PeerRaftMessage>(&frame)) {
      if (options.on_message) options.on_message(FromWire(std::move(*m)));
    } else if (auto* chunk = std::get_if<protocol::SnapshotChunk>(&frame)) {
      if (options.on_snapshot_chunk) options.on_snapshot_chunk(std::move(*chunk));
    } else if (auto* ack = std::get_if<protocol::SnapshotAck>(&frame)) {
      if (options.on_snapshot_ack) options.on_snapshot_ack(std::move(*ack));
    } else if (auto* request = std::get_if<protocol::ForwardRequest>(&frame)) {
      if (options.on_forward_request) options.on_forward_request(std::move(*request));
    } else if (auto* reply = std::get_if<protocol::ForwardReply>(&frame)) {
      if (options.on_forward_reply) options.on_forward_reply(std::move(*reply));
    }
  }

  bool Enqueue(uint64_t to, std::string bytes) {
    auto it = peers.find(to);
    if (it == peers.end()) {
      unknown_destination++;
      return false;
    }
    Peer& peer = *it->second;
    if (stopped || !started) {
      peer.stats.dropped_connection_lost++;
      return false;
    }
    if (bytes.size() - protocol::kPeerFrameHeaderBytes > options.max_frame_bytes) {
      peer.stats.dropped_too_large++;
      Log(LogLevel::kWarning, "dropping a frame of " + std::to_string(bytes.size()) +
                                  " bytes for " + peer.label + ": above max frame size");
      return false;
    }
    // Faults: the frame is lost (or held) as a network would lose it, so it counts as sent.
    if (faults.blocked.count(to) != 0) {
      peer.stats.dropped_blocked_out++;
      return true;
    }
    if (faults.unreliable) {
      if (faults.drop_percent > 0 && fault_rng() % 100 < faults.drop_percent) {
        peer.stats.dropped_unreliable++;
        return true;
      }
      const uint64_t delay = fault_rng() % (faults.max_delay_ms + 1);
      if (delay > 0) {
        auto* d = new DelayedFrame;
        d->rep = this;
        d->peer = to;
        d->bytes = std::move(bytes);
        d->timer.data = d;
        CHECK(uv_timer_init(loop, &d->timer) == 0);
        CHECK(uv_timer_start(&d->timer, OnDelayedFrame, delay, 0) == 0);
        delayed.insert(d);
        peer.stats.delayed++;
        return true;
      }
    }
    return Queue(peer, std::move(bytes));
  }

  static void OnDelayedFrame(uv_timer_t* timer) {
    auto* d = static_cast<DelayedFrame*>(timer->data);
    Rep* rep = d->rep;
    rep->delayed.erase(d);
    uv_close(reinterpret_cast<uv_handle_t*>(&d->timer), DeleteDelayed);
    Peer& peer = *rep->peers.at(d->peer);
    if (rep->faults.blocked.count(d->peer) != 0) {
      peer.stats.dropped_blocked_out++;
      return;
    }
    rep->Queue(peer, std::move(d->bytes));
  }

  // Queues `bytes` for `peer` within the queue limits, and writes if the connection is idle.
  bool Queue(Peer& peer, std::string bytes) {
    const Conn* c = peer.dialed;
    const size_t frames = peer.queue.size() + (c != nullptr ? c->inflight_frames : 0);
    const size_t queued = peer.queue_bytes + (c != nullptr ? c->inflight_bytes : 0);
    if (frames >= options.max_queue_frames || queued > options.max_queue_bytes ||
        bytes.size() > options.max_queue_bytes - queued) {
      peer.stats.dropped_queue_full++;
      return false;
    }
    peer.queue_bytes += bytes.size();
    peer.queue.push_back(std::move(bytes));
    Flush(peer);
    return true;
  }

  // Hands everything queued for `peer` to uv_write, if its connection is open and idle.
  void Flush(Peer& peer) {
    Conn* c = peer.dialed;
    if (c == nullptr || c->closing || c->state != State::kOpen || c->write_in_flight ||
        peer.queue.empty()) {
      return;
    }
    auto* w = new WriteReq;
    w->conn = c;
    w->traffic = true;
    w->frames.assign(std::make_move_iterator(peer.queue.begin()),
                     std::make_move_iterator(peer.queue.end()));
    c->inflight_frames = w->frames.size();
    c->inflight_bytes = peer.queue_bytes;
    c->write_in_flight = true;
    peer.queue.clear();
    peer.queue_bytes = 0;
    StartWrite(c, w);
  }

  void WriteHandshake(Conn* c, std::string bytes) {
    auto* w = new WriteReq;
    w->conn = c;
    w->frames.push_back(std::move(bytes));
    StartWrite(c, w);
  }

  void StartWrite(Conn* c, WriteReq* w) {
    w->req.data = w;
    w->bufs.reserve(w->frames.size());
    for (std::string& f : w->frames) {
      w->bufs.push_back(uv_buf_init(f.data(), static_cast<unsigned int>(f.size())));
    }
    int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), w->bufs.data(),
                     static_cast<unsigned int>(w->bufs.size()), OnWrite);
    if (r != 0) {
      delete w;  // not queued: OnWrite will not run for it
      Close(c, std::string("write failed: ") + uv_strerror(r), LogLevel::kNotice);
    }
  }

  static void OnWrite(uv_write_t* req, int status) {
    std::unique_ptr<WriteReq> w(static_cast<WriteReq*>(req->data));
    Conn* c = w->conn;
    if (c->closing) return;  // cancelled by uv_close (status is UV_ECANCELED)
    Rep* rep = c->rep;
    if (w->traffic) {
      c->write_in_flight = false;
      c->inflight_frames = 0;
      c->inflight_bytes = 0;
    }
    if (status != 0) {
      rep->Close(c, std::string("write failed: ") + uv_strerror(status), LogLevel::kNotice);
      return;
    }
    if (w->traffic) {
      Peer& peer = *rep->peers.at(c->expected_id);
      peer.stats.frames_sent += w->frames.size();
      rep->Flush(peer);
    }
  }

  void DropQueue(Peer& peer, bool count) {
    if (count) peer.stats.dropped_connection_lost += peer.queue.size();
    peer.queue.clear();
    peer.queue_bytes = 0;
  }

  // ---------------------------------------------------------------- closing

  void Refuse(Conn* c, const std::string& why) {
    if (c->closing) return;
    connections_refused++;
    Close(c, "refused: " + why, LogLevel::kWarning);
  }

  // Closes `c` and forgets it; a dialed connection is dialed again after the backoff.
  void Close(Conn* c, const std::string& why, LogLevel level) {
    if (c->closing) return;
    c->closing = true;
    conns.erase(c);
    if (c->counted_pending) {
      c->counted_pending = false;
      pending_handshakes--;
    }
    Log(level, c->label + ": " + why);
    uint64_t lost = 0;  // a peer this node can no longer send to
    if (c->direction == Direction::kDialed) {
      Peer& peer = *peers.at(c->expected_id);
      if (peer.dialed == c) {
        peer.dialed = nullptr;
        if (peer.stats.connected) {
          peer.stats.connected = false;
          lost = peer.id;
        }
        // In-flight frames are lost with the connection; count them with the queue's.
        if (!stopped) peer.stats.dropped_connection_lost += c->inflight_frames;
        DropQueue(peer, /*count=*/!stopped);
        ScheduleReconnect(peer);
      }
    } else if (c->state == State::kOpen) {
      Peer& peer = *peers.at(c->remote_id);
      if (peer.accepted == c) {
        peer.accepted = nullptr;
        peer.stats.inbound_connected = false;
      }
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnConnHandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), OnConnHandleClosed);
    if (lost != 0 && !stopped && options.on_peer_state) options.on_peer_state(lost, false);
  }

  static void OnConnHandleClosed(uv_handle_t* handle) {
    auto* c = static_cast<Conn*>(handle->data);
    if (--c->open_handles == 0) delete c;
  }

  void ScheduleReconnect(Peer& peer) {
    if (stopped || peer.reconnect_timer == nullptr) return;
    const uint64_t b = peer.backoff_ms;
    const uint64_t delay = b / 2 + rng() % (b - b / 2 + 1);
    peer.backoff_ms = std::min(b * 2, options.reconnect_max_ms);
    CHECK(uv_timer_start(peer.reconnect_timer, OnReconnectTimer, delay, 0) == 0);
  }

  static void OnReconnectTimer(uv_timer_t* timer) {
    auto* peer = static_cast<Peer*>(timer->data);
    peer->rep->Dial(*peer);
  }

  void Log(LogLevel level, const std::string& line) const { options.on_log(level, line); }

  uv_loop_t* loop;
  Options options;
  std::mt19937_64 rng;
  std::mt19937_64 fault_rng;  // the unreliable fault's draws
  Faults faults;
  std::set<DelayedFrame*> delayed;  // timers running
  std::map<uint64_t, std::unique_ptr<Peer>> peers;
  std::set<Conn*> conns;  // every connection not yet closing
  uv_tcp_t* listener = nullptr;
  size_t pending_handshakes = 0;
  bool started = false;
  bool stopped = false;
  uint64_t connections_refused = 0;
  uint64_t inbound_replaced = 0;
  uint64_t unknown_destination = 0;
};

PeerTransport::Options PeerTransport::OptionsFromConfig(const Config& config) {
  Options o;
  o.self_id = config.node_id;
  o.cluster_id = config.cluster_id;
  o.cluster_secret = config.cluster_secret;
  o.bind = config.bind;
  for (const ClusterMember& m : config.cluster) o.members[m.id] = PeerAddress{m.host, m.peer_port};
  return o;
}

PeerTransport::PeerTransport(uv_loop_t* loop, Options options)
    : rep_(std::make_unique<Rep>(loop, std::move(options))) {}

PeerTransport::~PeerTransport() { rep_->Stop(); }

common::Status PeerTransport::Start() { return rep_->Start(); }

void PeerTransport::Stop() { rep_->Stop(); }

void PeerTransport::Send(const raft::Message& m) {
  if (m.to == rep_->options.self_id || rep_->peers.count(m.to) == 0) {
    rep_->unknown_destination++;
    return;
  }
  rep_->Enqueue(m.to, protocol::EncodeFrame(ToWire(m)));
}

bool PeerTransport::SendFrame(uint64_t peer, const protocol::PeerFrame& frame) {
  CHECK(!std::holds_alternative<protocol::Hello>(frame) &&
        !std::holds_alternative<protocol::HelloProof>(frame))
      << "handshake frames are the transport's own";
  if (rep_->peers.count(peer) == 0) {
    rep_->unknown_destination++;
    return false;
  }
  return rep_->Enqueue(peer, protocol::EncodeFrame(frame));
}

uint16_t PeerTransport::listen_port() const {
  if (rep_->listener == nullptr) return 0;
  sockaddr_storage addr;
  int len = sizeof(addr);
  if (uv_tcp_getsockname(rep_->listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

bool PeerTransport::connected(uint64_t peer) const { return peer_stats(peer).connected; }

bool PeerTransport::Block(uint64_t peer) {
  if (rep_->peers.count(peer) == 0) return false;
  rep_->faults.blocked.insert(peer);
  return true;
}

bool PeerTransport::Unblock(uint64_t peer) {
  if (rep_->peers.count(peer) == 0) return false;
  rep_->faults.blocked.erase(peer);
  return true;
}

void PeerTransport::SetUnreliable(uint32_t drop_percent, uint64_t max_delay_ms) {
  CHECK(drop_percent <= 100) << drop_percent;
  rep_->faults.unreliable = true;
  rep_->faults.drop_percent = drop_percent;
  rep_->faults.max_delay_ms = max_delay_ms;
}

void PeerTransport::SetReliable() {
  rep_->faults.unreliable = false;
  rep_->faults.drop_percent = 0;
  rep_->faults.max_delay_ms = 0;
}

void PeerTransport::Heal() {
  rep_->faults.blocked.clear();
  SetReliable();
}

PeerTransport::Faults PeerTransport::faults() const { return rep_->faults; }

PeerTransport::PeerStats PeerTransport::peer_stats(uint64_t peer) const {
  auto it = rep_->peers.find(peer);
  if (it == rep_->peers.end()) return PeerStats();
  const Rep::Peer& p = *it->second;
  PeerStats s = p.stats;
  s.queued_frames = p.queue.size();
  s.queued_bytes = p.queue_bytes;
  if (p.dialed != nullptr) {
    s.queued_frames += p.dialed->inflight_frames;
    s.queued_bytes += p.dialed->inflight_bytes;
  }
  return s;
}

PeerTransport::Stats PeerTransport::stats() const {
  Stats s;
  s.connections_refused = rep_->connections_refused;
  s.inbound_replaced = rep_->inbound_replaced;
  s.unknown_destination = rep_->unknown_destination;
  return s;
}

}  // namespace server
