// PeerTransport on 127.0.0.1, several transports and raw TCP clients in one libuv loop:
// messages in every direction with every field, refusals of a wrong secret, a wrong cluster
// id, a node at the wrong address, unknown and own ids, garbage, oversized and silent
// connections; reconnection after a restart; queue limits; from/to checks. Every test runs
// the loop under a time bound and ends with no libuv handle left open.
#include "server/peer_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/coding.h"

namespace server {
namespace {

using protocol::PeerFrame;

constexpr char kSecret[] = "test-secret";
constexpr char kClusterId[] = "test-cluster";

// A port that was free a moment ago: bind 127.0.0.1:0 and read what the kernel chose.
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::map<uint64_t, PeerTransport::PeerAddress> Members(int n) {
  std::map<uint64_t, PeerTransport::PeerAddress> members;
  for (int i = 1; i <= n; i++) {
    members[static_cast<uint64_t>(i)] = PeerTransport::PeerAddress{"127.0.0.1", FreePort()};
  }
  return members;
}

// A message of type `type` with every field set to something distinct.
raft::Message FullMessage(uint64_t from, uint64_t to, uint64_t salt, raft::MessageType type) {
  raft::Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = salt * 100 + 1;
  m.log_term = salt * 100 + 2;
  m.index = salt * 100 + 3;
  m.entries.push_back(raft::Entry{salt * 100 + 4, salt * 100 + 5, raft::EntryType::kNormal,
                                  std::string("a\0b\xff", 4) + std::to_string(salt)});
  m.entries.push_back(raft::Entry{salt * 100 + 6, salt * 100 + 7, raft::EntryType::kNoop, ""});
  m.commit = salt * 100 + 8;
  m.reject = salt % 2 == 1;
  m.reject_hint = salt * 100 + 9;
  m.context = salt * 100 + 10;
  m.snapshot = raft::SnapshotMeta{salt * 100 + 11, salt * 100 + 12};
  return m;
}

void ExpectSameMessage(const raft::Message& want, const raft::Message& got) {
  EXPECT_EQ(want.type, got.type);
  EXPECT_EQ(want.from, got.from);
  EXPECT_EQ(want.to, got.to);
  EXPECT_EQ(want.term, got.term);
  EXPECT_EQ(want.log_term, got.log_term);
  EXPECT_EQ(want.index, got.index);
  EXPECT_EQ(want.entries, got.entries);
  EXPECT_EQ(want.commit, got.commit);
  EXPECT_EQ(want.reject, got.reject);
  EXPECT_EQ(want.reject_hint, got.reject_hint);
  EXPECT_EQ(want.context, got.context);
  EXPECT_EQ(want.snapshot, got.snapshot);
}

std::string BigEndian32(uint32_t v) {
  std::string s;
  common::PutBigEndian32(&s, v);
  return s;
}

// One transport and everything its callbacks reported.
struct Node {
  PeerTransport::Options options;
  std::unique_ptr<PeerTransport> transport;
  std::vector<raft::Message> messages;
  std::vector<protocol::SnapshotChunk> chunks;
  std::vector<protocol::SnapshotAck> acks;
  std::vector<std::pair<uint64_t, bool>> states;
  std::vector<std::string> warnings;

  bool Warned(const std::string& text) const {
    for (const std::string& w : warnings) {
      if (w.find(text) != std::string::npos) return true;
    }
    return false;
  }
  bool EverConnected() const {
    for (const auto& [id, up] : states) {
      if (up) return true;
    }
    return false;
  }
};

// A TCP client that connects, writes `out`, and records what it reads until the server
// closes the connection.
struct RawClient {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  std::string out;
  std::string received;
  bool connected = false;
  bool ended = false;  // EOF or error from the server
  bool closed = false;
};

// A listener that accepts connections and never says anything.
struct SilentServer {
  uv_tcp_t listener;
  std::vector<std::unique_ptr<uv_tcp_t>> accepted;
};

class PeerTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    // Wakes uv_run(UV_RUN_ONCE) regularly so that RunUntil checks its bound.
    ASSERT_EQ(uv_timer_init(&loop_, &tick_), 0);
    ASSERT_EQ(uv_timer_start(
                  &tick_, [](uv_timer_t*) {}, 5, 5),
              0);
  }

  void TearDown() override {
    nodes_.clear();  // each destructor Stop()s its transport
    for (auto& c : clients_) CloseClient(c.get());
    for (auto& s : silent_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&s->listener), nullptr);
      for (auto& a : s->accepted) uv_close(reinterpret_cast<uv_handle_t*>(a.get()), nullptr);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    // Everything was closed: the loop must run dry in a few iterations.
    for (int i = 0; i < 1000 && uv_loop_alive(&loop_); i++) uv_run(&loop_, UV_RUN_NOWAIT);
    if (uv_loop_alive(&loop_)) {
      ADD_FAILURE() << "libuv handles left open after Stop()";
      uv_walk(
          &loop_,
          [](uv_handle_t* h, void*) {
            ADD_FAILURE() << "open handle of type " << uv_handle_type_name(uv_handle_get_type(h));
            if (!uv_is_closing(h)) uv_close(h, nullptr);
          },
          nullptr);
      for (int i = 0; i < 1000 && uv_loop_alive(&loop_); i++) uv_run(&loop_, UV_RUN_NOWAIT);
    }
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  // Runs the loop until `done` or `timeout_ms` elapsed; returns `done()`.
  bool RunUntil(const std::function<bool()>& done, uint64_t timeout_ms = 5000) {
    const uint64_t deadline = uv_hrtime() + timeout_ms * 1000000;
    for (int i = 0; i < 1000000; i++) {
      if (done()) return true;
      if (uv_hrtime() > deadline) break;
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return done();
  }
  void RunFor(uint64_t ms) {
    RunUntil([] { return false; }, ms);
  }

  PeerTransport::Options BaseOptions(uint64_t id,
                                     const std::map<uint64_t, PeerTransport::PeerAddress>& m) {
    PeerTransport::Options o;
    o.self_id = id;
    o.cluster_id = kClusterId;
    o.cluster_secret = kSecret;
    o.members = m;
    o.jitter_seed = id;
    return o;
  }

  // Builds a node with `options` (callbacks filled in here) and starts it.
  Node* AddNode(PeerTransport::Options options) {
    auto node = std::make_unique<Node>();
    Node* n = node.get();
    options.on_message = [n](raft::Message m) { n->messages.push_back(std::move(m)); };
    options.on_snapshot_chunk = [n](protocol::SnapshotChunk c) { n->chunks.push_back(c); };
    options.on_snapshot_ack = [n](protocol::SnapshotAck a) { n->acks.push_back(a); };
    options.on_peer_state = [n](uint64_t id, bool up) { n->states.emplace_back(id, up); };
    options.on_log = [n](LogLevel level, std::string_view line) {
      if (level == LogLevel::kWarning) n->warnings.emplace_back(line);
    };
    n->options = options;
    n->transport = std::make_unique<PeerTransport>(&loop_, options);
    common::Status s = n->transport->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    nodes_.push_back(std::move(node));
    return n;
  }

  void RemoveNode(Node* n) {
    for (auto it = nodes_.begin(); it != nodes_.end(); ++it) {
      if (it->get() == n) {
        nodes_.erase(it);
        return;
      }
    }
  }

  RawClient* Connect(uint16_t port, std::string out) {
    clients_.push_back(std::make_unique<RawClient>());
    RawClient* c = clients_.back().get();
    c->out = std::move(out);
    EXPECT_EQ(uv_tcp_init(&loop_, &c->tcp), 0);
    c->tcp.data = c;
    c->connect_req.data = c;
    sockaddr_in addr;
    EXPECT_EQ(uv_ip4_addr("127.0.0.1", port, &addr), 0);
    EXPECT_EQ(uv_tcp_connect(&c->connect_req, &c->tcp, reinterpret_cast<const sockaddr*>(&addr),
                             OnClientConnect),
              0);
    return c;
  }

  static void OnClientConnect(uv_connect_t* req, int status) {
    auto* c = static_cast<RawClient*>(req->data);
    if (status != 0) {
      c->ended = true;
      return;
    }
    c->connected = true;
    auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
    if (!c->out.empty()) {
      uv_buf_t buf = uv_buf_init(c->out.data(), static_cast<unsigned int>(c->out.size()));
      uv_write(&c->write_req, stream, &buf, 1, [](uv_write_t*, int) {});
    }
    uv_read_start(
        stream,
        [](uv_handle_t*, size_t size, uv_buf_t* buf) {
          *buf = uv_buf_init(new char[size], static_cast<unsigned int>(size));
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
          auto* client = static_cast<RawClient*>(s->data);
          if (nread > 0) client->received.append(buf->base, static_cast<size_t>(nread));
          if (nread < 0) {
            client->ended = true;
            uv_read_stop(s);
          }
          delete[] buf->base;
        });
  }

  void CloseClient(RawClient* c) {
    if (c->closed) return;
    c->closed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), nullptr);
  }

  SilentServer* ListenSilently(uint16_t port) {
    silent_.push_back(std::make_unique<SilentServer>());
    SilentServer* s = silent_.back().get();
    EXPECT_EQ(uv_tcp_init(&loop_, &s->listener), 0);
    s->listener.data = s;
    sockaddr_in addr;
    EXPECT_EQ(uv_ip4_addr("127.0.0.1", port, &addr), 0);
    EXPECT_EQ(uv_tcp_bind(&s->listener, reinterpret_cast<const sockaddr*>(&addr), 0), 0);
    EXPECT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(&s->listener), 16,
                        [](uv_stream_t* server, int status) {
                          if (status != 0) return;
                          auto* self = static_cast<SilentServer*>(server->data);
                          auto conn = std::make_unique<uv_tcp_t>();
                          uv_tcp_init(server->loop, conn.get());
                          uv_accept(server, reinterpret_cast<uv_stream_t*>(conn.get()));
                          self->accepted.push_back(std::move(conn));
                        }),
              0);
    return s;
  }

  // A raw client's Hello, as a member would send it.
  static std::string HelloBytes(uint64_t node_id, const std::string& cluster_id = kClusterId) {
    protocol::Hello hello;
    hello.cluster_id = cluster_id;
    hello.node_id = node_id;
    hello.nonce = std::string(32, 'n');
    return protocol::EncodeFrame(hello);
  }

  uv_loop_t loop_;
  uv_timer_t tick_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<RawClient>> clients_;
  std::vector<std::unique_ptr<SilentServer>> silent_;
};

TEST_F(PeerTransportTest, ThreeNodesExchangeMessagesWithEveryField) {
  auto members = Members(3);
  std::vector<Node*> nodes;
  for (uint64_t id = 1; id <= 3; id++) nodes.push_back(AddNode(BaseOptions(id, members)));
  // Frames queued while a dial fails are dropped (the first dials may beat the listeners).
  ASSERT_TRUE(RunUntil([&] {
    for (Node* n : nodes) {
      for (uint64_t peer = 1; peer <= 3; peer++) {
        if (peer != n->options.self_id && !n->transport->connected(peer)) return false;
      }
    }
    return true;
  }));

  std::map<std::pair<uint64_t, uint64_t>, std::vector<raft::Message>> sent;
  uint64_t salt = 0;
  for (uint64_t from = 1; from <= 3; from++) {
    for (uint64_t to = 1; to <= 3; to++) {
      if (from == to) continue;
      for (uint8_t type = 0; type <= protocol::kMaxPeerMessageType; type++) {
        raft::Message m = FullMessage(from, to, ++salt, static_cast<raft::MessageType>(type));
        nodes[from - 1]->transport->Send(m);
        sent[{from, to}].push_back(m);
      }
    }
  }
  ASSERT_TRUE(RunUntil([&] {
    for (Node* n : nodes) {
      if (n->messages.size() < 20) return false;
    }
    return true;
  }));
  for (uint64_t to = 1; to <= 3; to++) {
    Node* n = nodes[to - 1];
    ASSERT_EQ(n->messages.size(), 20u);
    // Per sender, in the order sent.
    std::map<uint64_t, size_t> next;
    for (const raft::Message& got : n->messages) {
      const auto& want = sent[{got.from, to}];
      size_t& i = next[got.from];
      ASSERT_LT(i, want.size());
      ExpectSameMessage(want[i], got);
      i++;
    }
    EXPECT_TRUE(n->warnings.empty()) << n->warnings.front();
  }
  for (Node* n : nodes) {
    for (uint64_t peer = 1; peer <= 3; peer++) {
      if (peer == n->options.self_id) continue;
      EXPECT_TRUE(n->transport->connected(peer));
      PeerTransport::PeerStats s = n->transport->peer_stats(peer);
      EXPECT_EQ(s.frames_sent, 10u);
      EXPECT_EQ(s.frames_received, 10u);
      EXPECT_EQ(s.queued_frames, 0u);
      EXPECT_EQ(s.dropped_queue_full + s.dropped_connection_lost + s.dropped_too_large, 0u);
      EXPECT_TRUE(s.inbound_connected);
    }
    EXPECT_EQ(n->states.size(), 2u);
    EXPECT_EQ(n->transport->stats().connections_refused, 0u);
  }

  // Snapshot frames are forwarded as they are.
  protocol::SnapshotChunk chunk{1, 2, 7, 100, 6, 4096, std::string("chunk\0data", 10), true};
  protocol::SnapshotAck ack{2, 1, 100, 6, 4106, false, "disk full"};
  EXPECT_TRUE(nodes[0]->transport->SendFrame(2, chunk));
  EXPECT_TRUE(nodes[1]->transport->SendFrame(1, ack));
  ASSERT_TRUE(RunUntil([&] { return !nodes[1]->chunks.empty() && !nodes[0]->acks.empty(); }));
  EXPECT_EQ(nodes[1]->chunks.front(), chunk);
  EXPECT_EQ(nodes[0]->acks.front(), ack);
}

TEST_F(PeerTransportTest, WrongSecretIsRefusedOnBothSides) {
  auto members = Members(2);
  Node* a = AddNode(BaseOptions(1, members));
  PeerTransport::Options bad = BaseOptions(2, members);
  bad.cluster_secret = "another-secret";
  Node* b = AddNode(bad);
  a->transport->Send(FullMessage(1, 2, 1, raft::MessageType::kVote));
  b->transport->Send(FullMessage(2, 1, 2, raft::MessageType::kVote));
  ASSERT_TRUE(RunUntil(
      [&] { return a->Warned("proof does not verify") && b->Warned("proof does not verify"); }));
  RunFor(300);
  EXPECT_TRUE(a->messages.empty());
  EXPECT_TRUE(b->messages.empty());
  EXPECT_FALSE(a->EverConnected());
  EXPECT_FALSE(b->EverConnected());
  EXPECT_GE(a->transport->stats().connections_refused, 1u);
  EXPECT_GE(b->transport->stats().connections_refused, 1u);
  EXPECT_FALSE(a->transport->peer_stats(2).inbound_connected);
  EXPECT_EQ(a->transport->peer_stats(2).dropped_connection_lost, 1u);
}

TEST_F(PeerTransportTest, WrongClusterIdIsRefusedOnBothSides) {
  auto members = Members(2);
  Node* a = AddNode(BaseOptions(1, members));
  PeerTransport::Options other = BaseOptions(2, members);
  other.cluster_id = "other-cluster";
  Node* b = AddNode(other);
  a->transport->Send(FullMessage(1, 2, 1, raft::MessageType::kHeartbeat));
  b->transport->Send(FullMessage(2, 1, 2, raft::MessageType::kHeartbeat));
  ASSERT_TRUE(RunUntil([&] {
    return a->Warned("cluster id 'other-cluster'") && b->Warned("cluster id 'test-cluster'");
  }));
  RunFor(200);
  EXPECT_TRUE(a->messages.empty());
  EXPECT_TRUE(b->messages.empty());
  EXPECT_FALSE(a->EverConnected());
  EXPECT_FALSE(b->EverConnected());
}

TEST_F(PeerTransportTest, NodesClaimingAnotherIdAreRefused) {
  auto members = Members(3);
  Node* a = AddNode(BaseOptions(1, members));
  // Listens where node 3 should be, claiming to be node 2 (and holding the secret).
  auto impostor_view = members;
  impostor_view[2] = members[3];
  impostor_view[3] = PeerTransport::PeerAddress{"127.0.0.1", FreePort()};
  Node* impostor = AddNode(BaseOptions(2, impostor_view));
  // A node the cluster does not know.
  auto stranger_view = members;
  stranger_view.erase(2);
  stranger_view.erase(3);
  stranger_view[7] = PeerTransport::PeerAddress{"127.0.0.1", FreePort()};
  Node* stranger = AddNode(BaseOptions(7, stranger_view));
  // A second node 1, which node 1 itself dials as node 2.
  std::map<uint64_t, PeerTransport::PeerAddress> twin_view;
  twin_view[1] = PeerTransport::PeerAddress{"127.0.0.1", FreePort()};
  twin_view[2] = members[1];
  Node* twin = AddNode(BaseOptions(1, twin_view));

  for (int i = 0; i < 3; i++) a->transport->Send(FullMessage(1, 3, 1, raft::MessageType::kVote));
  ASSERT_TRUE(RunUntil([&] {
    return a->Warned("expected node 3 there, found node 2") &&
           a->Warned("node id 7 is not a member") && a->Warned("this node's own id 1") &&
           twin->Warned("this node's own id 1");
  }));
  RunFor(200);
  EXPECT_FALSE(a->transport->connected(3));
  EXPECT_TRUE(impostor->messages.empty());
  EXPECT_TRUE(stranger->messages.empty());
  EXPECT_TRUE(twin->messages.empty());
  for (const auto& [id, up] : a->states) EXPECT_FALSE(up && id == 3);
  EXPECT_FALSE(twin->EverConnected());
  EXPECT_FALSE(stranger->EverConnected());
}

TEST_F(PeerTransportTest, RestartedPeerIsReconnected) {
  auto members = Members(2);
  Node* a = AddNode(BaseOptions(1, members));
  Node* b = AddNode(BaseOptions(2, members));
  ASSERT_TRUE(RunUntil([&] { return a->transport->connected(2) && b->transport->connected(1); }));
  a->transport->Send(FullMessage(1, 2, 1, raft::MessageType::kAppend));
  b->transport->Send(FullMessage(2, 1, 2, raft::MessageType::kAppendResponse));
  ASSERT_TRUE(RunUntil([&] { return a->messages.size() == 1 && b->messages.size() == 1; }));

  RemoveNode(b);  // Stop() and destroy
  ASSERT_TRUE(RunUntil([&] { return !a->transport->connected(2); }));
  EXPECT_EQ(a->states.back(), std::make_pair(uint64_t{2}, false));
  RunFor(100);  // a few failed dials, growing the backoff
  a->transport->Send(FullMessage(1, 2, 3, raft::MessageType::kHeartbeat));  // lost or queued

  Node* b2 = AddNode(BaseOptions(2, members));  // same port
  ASSERT_TRUE(RunUntil([&] { return a->transport->connected(2) && b2->transport->connected(1); }));
  EXPECT_EQ(a->states.back(), std::make_pair(uint64_t{2}, true));
  EXPECT_EQ(a->transport->peer_stats(2).connects, 2u);
  a->transport->Send(FullMessage(1, 2, 4, raft::MessageType::kAppend));
  b2->transport->Send(FullMessage(2, 1, 5, raft::MessageType::kAppendResponse));
  ASSERT_TRUE(RunUntil([&] {
    return !b2->messages.empty() && b2->messages.back().term == 401 && a->messages.size() == 2;
  }));
  ExpectSameMessage(FullMessage(2, 1, 5, raft::MessageType::kAppendResponse), a->messages[1]);
  EXPECT_TRUE(a->transport->peer_stats(2).inbound_connected);
}

TEST_F(PeerTransportTest, BadStreamsAreClosedAndDeliverNothing) {
  auto members = Members(2);
  PeerTransport::Options o = BaseOptions(1, members);
  o.handshake_timeout_ms = 300;
  Node* a = AddNode(o);
  const uint16_t port = members[1].port;

  struct Case {
    std::string name;
    std::string bytes;
    std::string warning;
  };
  protocol::PeerRaftMessage early;
  early.from = 2;
  early.to = 1;
  protocol::HelloProof forged;
  forged.mac = std::string(32, '\0');
  std::vector<Case> cases = {
      {"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "malformed stream"},
      {"oversized prefix", BigEndian32(9u << 20) + std::string(100, 'x'), "malformed stream"},
      {"garbage body", BigEndian32(16) + std::string(16, '\x5a'), "malformed stream"},
      {"nothing", "", "no handshake within 300 ms"},
      {"big body before the handshake", BigEndian32(1u << 20) + std::string(100 << 10, 'x'),
       "bytes before the handshake completed"},
      {"message before the proof", HelloBytes(2) + protocol::EncodeFrame(early),
       "expected HelloProof, got RaftMessage"},
      {"message instead of a hello", protocol::EncodeFrame(early), "expected Hello, got"},
      {"forged proof", HelloBytes(2) + protocol::EncodeFrame(forged), "proof does not verify"},
      {"wrong version",
       [] {
         protocol::Hello h;
         h.version = protocol::kPeerProtocolVersion + 1;
         h.cluster_id = kClusterId;
         h.node_id = 2;
         h.nonce = std::string(32, 'n');
         return protocol::EncodeFrame(h);
       }(),
       "peer protocol version " + std::to_string(protocol::kPeerProtocolVersion + 1)},
      {"the version before batched entries",
       [] {
         protocol::Hello h;
         h.version = 1;
         h.cluster_id = kClusterId;
         h.node_id = 2;
         h.nonce = std::string(32, 'n');
         return protocol::EncodeFrame(h);
       }(),
       "peer protocol version 1"},
      {"short nonce",
       [] {
         protocol::Hello h;
         h.cluster_id = kClusterId;
         h.node_id = 2;
         h.nonce = "short";
         return protocol::EncodeFrame(h);
       }(),
       "nonce of 5 bytes"},
  };
  uint64_t refused = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    a->warnings.clear();
    RawClient* client = Connect(port, c.bytes);
    ASSERT_TRUE(RunUntil([&] { return client->ended; }));
    EXPECT_TRUE(client->connected);
    EXPECT_TRUE(a->Warned(c.warning)) << (a->warnings.empty() ? "" : a->warnings.front());
    EXPECT_EQ(a->transport->stats().connections_refused, ++refused);
    CloseClient(client);
  }
  EXPECT_TRUE(a->messages.empty());
  EXPECT_FALSE(a->transport->peer_stats(2).inbound_connected);
  EXPECT_EQ(a->transport->peer_stats(2).frames_received, 0u);
}

TEST_F(PeerTransportTest, SilentPeerTimesOutAndIsDialedAgain) {
  auto members = Members(2);
  ListenSilently(members[2].port);
  PeerTransport::Options o = BaseOptions(1, members);
  o.handshake_timeout_ms = 100;
  Node* a = AddNode(o);
  ASSERT_TRUE(RunUntil([&] { return a->transport->stats().connections_refused >= 2; }));
  EXPECT_TRUE(a->Warned("no handshake within 100 ms"));
  EXPECT_FALSE(a->EverConnected());
}

TEST_F(PeerTransportTest, FullQueueDropsAndCounts) {
  auto members = Members(2);
  PeerTransport::Options o = BaseOptions(1, members);
  o.max_queue_frames = 10;
  Node* a = AddNode(o);
  Node* b = AddNode(BaseOptions(2, members));
  ASSERT_TRUE(RunUntil([&] { return a->transport->connected(2); }));

  // Nothing is written before the loop runs again: 10 fit, 5 are dropped.
  for (uint64_t i = 1; i <= 15; i++) {
    a->transport->Send(FullMessage(1, 2, i, raft::MessageType::kAppend));
  }
  PeerTransport::PeerStats s = a->transport->peer_stats(2);
  EXPECT_EQ(s.dropped_queue_full, 5u);
  EXPECT_EQ(s.queued_frames, 10u);
  ASSERT_TRUE(RunUntil([&] { return b->messages.size() == 10; }));
  for (uint64_t i = 1; i <= 10; i++) EXPECT_EQ(b->messages[i - 1].term, i * 100 + 1);
  RunFor(50);
  EXPECT_EQ(b->messages.size(), 10u);
  EXPECT_EQ(a->transport->peer_stats(2).frames_sent, 10u);
  EXPECT_EQ(a->transport->peer_stats(2).queued_frames, 0u);
}

TEST_F(PeerTransportTest, QueueBytesAndFrameSizeAreCapped) {
  auto members = Members(2);
  PeerTransport::Options o = BaseOptions(1, members);
  o.max_queue_bytes = 10 << 10;
  o.max_frame_bytes = 64 << 10;
  Node* a = AddNode(o);
  Node* b = AddNode(BaseOptions(2, members));
  ASSERT_TRUE(RunUntil([&] { return a->transport->connected(2); }));

  raft::Message big = FullMessage(1, 2, 0, raft::MessageType::kAppend);
  big.entries[0].data = std::string(100 << 10, 'x');
  a->transport->Send(big);
  EXPECT_EQ(a->transport->peer_stats(2).dropped_too_large, 1u);

  for (uint64_t i = 1; i <= 20; i++) {
    raft::Message m = FullMessage(1, 2, i, raft::MessageType::kAppend);
    m.entries[0].data = std::string(1000, 'y');
    a->transport->Send(m);
  }
  PeerTransport::PeerStats s = a->transport->peer_stats(2);
  EXPECT_GT(s.dropped_queue_full, 0u);
  EXPECT_LE(s.queued_bytes, size_t{10 << 10});
  const size_t accepted = 20 - s.dropped_queue_full;
  ASSERT_TRUE(RunUntil([&] { return b->messages.size() == accepted; }));
  for (size_t i = 0; i < accepted; i++) EXPECT_EQ(b->messages[i].term, (i + 1) * 100 + 1);
}

TEST_F(PeerTransportTest, QueuedFramesAreDroppedWhenTheDialFails) {
  auto members = Members(2);  // nobody listens for node 2
  Node* a = AddNode(BaseOptions(1, members));
  for (uint64_t i = 1; i <= 3; i++)
    a->transport->Send(FullMessage(1, 2, i, raft::MessageType::kVote));
  EXPECT_EQ(a->transport->peer_stats(2).queued_frames, 3u);
  ASSERT_TRUE(RunUntil([&] { return a->transport->peer_stats(2).dropped_connection_lost == 3; }));
  EXPECT_EQ(a->transport->peer_stats(2).queued_frames, 0u);
  EXPECT_TRUE(a->warnings.empty());  // failed dials are not warnings
  // Unknown destinations and this node itself are counted, not sent.
  a->transport->Send(FullMessage(1, 9, 1, raft::MessageType::kVote));
  a->transport->Send(FullMessage(1, 1, 1, raft::MessageType::kVote));
  EXPECT_EQ(a->transport->stats().unknown_destination, 2u);
}

TEST_F(PeerTransportTest, FramesWithTheWrongFromOrToAreDropped) {
  auto members = Members(3);
  Node* a = AddNode(BaseOptions(1, members));
  Node* b = AddNode(BaseOptions(2, members));
  ASSERT_TRUE(RunUntil([&] { return a->transport->connected(2); }));

  protocol::PeerRaftMessage spoofed;  // claims to come from node 3
  spoofed.from = 3;
  spoofed.to = 2;
  protocol::PeerRaftMessage misrouted;  // meant for node 3
  misrouted.from = 1;
  misrouted.to = 3;
  protocol::SnapshotChunk chunk;  // from the wrong node
  chunk.from = 3;
  chunk.to = 2;
  EXPECT_TRUE(a->transport->SendFrame(2, spoofed));
  EXPECT_TRUE(a->transport->SendFrame(2, misrouted));
  EXPECT_TRUE(a->transport->SendFrame(2, chunk));
  a->transport->Send(FullMessage(1, 2, 1, raft::MessageType::kHeartbeat));
  ASSERT_TRUE(RunUntil([&] { return !b->messages.empty(); }));
  EXPECT_EQ(b->messages.size(), 1u);
  EXPECT_EQ(b->messages[0].from, 1u);
  EXPECT_TRUE(b->chunks.empty());
  EXPECT_EQ(b->transport->peer_stats(1).frames_rejected, 3u);
  EXPECT_EQ(b->transport->peer_stats(1).frames_received, 1u);
  EXPECT_TRUE(b->Warned("dropping a RaftMessage from 3 to 2"));
  // The connection stays up.
  EXPECT_TRUE(a->transport->connected(2));
}

TEST_F(PeerTransportTest, NewerConnectionFromANodeReplacesTheOlder) {
  auto members = Members(2);
  Node* a = AddNode(BaseOptions(1, members));
  Node* b = AddNode(BaseOptions(2, members));
  ASSERT_TRUE(RunUntil([&] { return a->transport->peer_stats(2).inbound_connected; }));
  // A second process with node 2's id and secret dials node 1 too.
  auto twin_view = members;
  twin_view[2] = PeerTransport::PeerAddress{"127.0.0.1", FreePort()};
  Node* twin = AddNode(BaseOptions(2, twin_view));
  ASSERT_TRUE(RunUntil([&] { return a->transport->stats().inbound_replaced >= 1; }));
  EXPECT_TRUE(a->transport->peer_stats(2).inbound_connected);
  (void)b;
  (void)twin;
}

TEST_F(PeerTransportTest, StartFailsOnAPortInUseAndStopIsIdempotent) {
  auto members = Members(2);
  Node* a = AddNode(BaseOptions(1, members));
  PeerTransport clash(&loop_, BaseOptions(1, members));
  common::Status s = clash.Start();
  EXPECT_EQ(s.code(), common::Status::Code::kIOError) << s.ToString();
  clash.Stop();
  clash.Stop();
  EXPECT_EQ(clash.listen_port(), 0);
  EXPECT_EQ(a->transport->listen_port(), members[1].port);

  PeerTransport never_started(&loop_, BaseOptions(2, members));
  never_started.Stop();
  never_started.Send(FullMessage(2, 1, 1, raft::MessageType::kVote));
  EXPECT_EQ(never_started.peer_stats(1).queued_frames, 0u);
}

TEST_F(PeerTransportTest, BlockedPeerLosesTrafficBothWaysUntilHealed) {
  auto members = Members(3);
  Node* a = AddNode(BaseOptions(1, members));
  Node* b = AddNode(BaseOptions(2, members));
  Node* c = AddNode(BaseOptions(3, members));
  ASSERT_TRUE(RunUntil([&] {
    return a->transport->connected(2) && a->transport->connected(3) && b->transport->connected(1) &&
           c->transport->connected(1);
  }));
  EXPECT_FALSE(a->transport->Block(1));  // itself
  EXPECT_FALSE(a->transport->Block(9));  // not a member
  EXPECT_TRUE(a->transport->Block(2));
  EXPECT_EQ(a->transport->faults().blocked, std::set<uint64_t>{2});

  // Outgoing: dropped before queueing, counted, reported as sent. Others still flow.
  EXPECT_TRUE(a->transport->SendFrame(2, protocol::SnapshotAck{1, 2, 1, 1, 0, true, ""}));
  a->transport->Send(FullMessage(1, 2, 1, raft::MessageType::kHeartbeat));
  EXPECT_EQ(a->transport->peer_stats(2).dropped_blocked_out, 2u);
  EXPECT_EQ(a->transport->peer_stats(2).queued_frames, 0u);
  a->transport->Send(FullMessage(1, 3, 2, raft::MessageType::kHeartbeat));
  // Incoming: node 2 sends (it knows of no fault), node 1 drops on receipt.
  b->transport->Send(FullMessage(2, 1, 3, raft::MessageType::kHeartbeat));
  ASSERT_TRUE(RunUntil([&] {
    return c->messages.size() == 1 && a->transport->peer_stats(2).dropped_blocked_in == 1;
  }));
  RunFor(50);
  EXPECT_TRUE(a->messages.empty());
  EXPECT_TRUE(b->messages.empty());
  EXPECT_TRUE(b->acks.empty());
  EXPECT_EQ(a->transport->peer_stats(2).frames_received, 0u);
  // The connections stayed up.
  EXPECT_TRUE(a->transport->connected(2));
  EXPECT_TRUE(b->transport->connected(1));

  // Healing lets traffic through at once, both ways.
  a->transport->Heal();
  EXPECT_TRUE(a->transport->faults().blocked.empty());
  a->transport->Send(FullMessage(1, 2, 4, raft::MessageType::kHeartbeat));
  b->transport->Send(FullMessage(2, 1, 5, raft::MessageType::kHeartbeat));
  ASSERT_TRUE(RunUntil([&] { return a->messages.size() == 1 && b->messages.size() == 1; }));
  EXPECT_EQ(a->messages[0].term, 501u);
  EXPECT_EQ(b->messages[0].term, 401u);

  // Unblock undoes Block for one peer.
  EXPECT_TRUE(b->transport->Block(1));
  EXPECT_TRUE(b->transport->Block(3));
  EXPECT_TRUE(b->transport->Unblock(1));
  EXPECT_EQ(b->transport->faults().blocked, std::set<uint64_t>{3});
  b->transport->Send(FullMessage(2, 1, 6, raft::MessageType::kHeartbeat));
  ASSERT_TRUE(RunUntil([&] { return a->messages.size() == 2; }));
  EXPECT_TRUE(a->warnings.empty());
}

TEST_F(PeerTransportTest, UnreliableWithFullDropLosesEverything) {
  auto members = Members(2);
  Node* a = AddNode(BaseOptions(1, members));
  Node* b = AddNode(BaseOptions(2, members));
  ASSERT_TRUE(RunUntil([&] { return a->transport->connected(2); }));
  a->transport->SetUnreliable(100, 20);
  EXPECT_TRUE(a->transport->faults().unreliable);
  for (uint64_t i = 1; i <= 50; i++) {
    a->transport->Send(FullMessage(1, 2, i, raft::MessageType::kAppend));
  }
  EXPECT_TRUE(a->transport->SendFrame(2, protocol::SnapshotAck{1, 2, 1, 1, 0, true, ""}));
  RunFor(100);
  EXPECT_TRUE(b->messages.empty());
  EXPECT_TRUE(b->acks.empty());
  PeerTransport::PeerStats s = a->transport->peer_stats(2);
  EXPECT_EQ(s.dropped_unreliable, 51u);
  EXPECT_EQ(s.delayed, 0u);
  EXPECT_EQ(s.frames_sent, 0u);
  // Only outgoing frames are affected: node 2's still arrive.
  b->transport->Send(FullMessage(2, 1, 1, raft::MessageType::kHeartbeat));
  ASSERT_TRUE(RunUntil([&] { return a->messages.size() == 1; }));

  a->transport->SetReliable();
  EXPECT_FALSE(a->transport->faults().unreliable);
  a->transport->Send(FullMessage(1, 2, 60, raft::MessageType::kAppend));
  ASSERT_TRUE(RunUntil([&] { return b->messages.size() == 1; }));
}

TEST_F(PeerTransportTest, UnreliableWithoutDropDelaysAndDeliversEverything) {
  auto members = Members(2);
  Node* a = AddNode(BaseOptions(1, members));
  Node* b = AddNode(BaseOptions(2, members));
  ASSERT_TRUE(RunUntil([&] { return a->transport->connected(2); }));
  a->transport->SetUnreliable(0, 30);
  const uint64_t start = uv_now(&loop_);
  std::set<uint64_t> sent;
  for (uint64_t i = 1; i <= 100; i++) {
    a->transport->Send(FullMessage(1, 2, i, raft::MessageType::kAppend));
    sent.insert(i * 100 + 1);
  }
  PeerTransport::PeerStats s = a->transport->peer_stats(2);
  EXPECT_GT(s.delayed, 50u);  // a delay of 0 ms (about 1 in 31) is queued at once
  EXPECT_EQ(s.dropped_unreliable, 0u);
  ASSERT_TRUE(RunUntil([&] { return b->messages.size() == 100; }));
  // Every one, exactly once (in any order).
  std::set<uint64_t> got;
  for (const raft::Message& m : b->messages) got.insert(m.term);
  EXPECT_EQ(got, sent);
  EXPECT_GE(uv_now(&loop_) - start, 10u);
  RunFor(50);
  EXPECT_EQ(b->messages.size(), 100u);
  EXPECT_EQ(a->transport->peer_stats(2).frames_sent, 100u);
}

TEST_F(PeerTransportTest, StopFreesDelayedFrames) {
  auto members = Members(2);
  Node* a = AddNode(BaseOptions(1, members));
  Node* b = AddNode(BaseOptions(2, members));
  ASSERT_TRUE(RunUntil([&] { return a->transport->connected(2); }));
  a->transport->SetUnreliable(0, 10000);
  for (uint64_t i = 1; i <= 20; i++) {
    a->transport->Send(FullMessage(1, 2, i, raft::MessageType::kAppend));
  }
  EXPECT_GE(a->transport->peer_stats(2).delayed, 19u);
  a->transport->Stop();  // TearDown checks that no timer is left open
  RunFor(20);
  EXPECT_TRUE(b->messages.empty());
}

TEST(PeerTransportOptionsTest, FromConfig) {
  Config config;
  config.node_id = 2;
  config.cluster = {{1, "127.0.0.1", 7001, 17001}, {2, "10.0.0.2", 7002, 17002}};
  config.cluster_id = "prod";
  config.cluster_secret = "s3cret";
  config.bind = "0.0.0.0";
  PeerTransport::Options o = PeerTransport::OptionsFromConfig(config);
  EXPECT_EQ(o.self_id, 2u);
  EXPECT_EQ(o.cluster_id, "prod");
  EXPECT_EQ(o.cluster_secret, "s3cret");
  EXPECT_EQ(o.bind, "0.0.0.0");
  ASSERT_EQ(o.members.size(), 2u);
  EXPECT_EQ(o.members[1].host, "127.0.0.1");
  EXPECT_EQ(o.members[1].port, 17001);
  EXPECT_EQ(o.members[2].host, "10.0.0.2");
  EXPECT_EQ(o.members[2].port, 17002);
}

}  // namespace
}  // namespace server
