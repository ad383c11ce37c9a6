// PeerTransport: the TCP transport between raftkv-server processes (DESIGN.md, "peer
// transport"), on a libuv loop. It carries Raft messages, snapshot chunks and forwarded client
// requests as the frames of protocol/peer.h, after a handshake in which each side proves that it
// holds cluster-secret.
//
// Connections. Each node dials every other member for the traffic it sends, and accepts the
// connections its peers dial for the traffic it receives: one direction per connection, so
// there is never a question of which of two simultaneous connections to keep, and a dialer
// knows whom it expects at the other end. A dialed connection that fails or closes is dialed
// again after a backoff (reconnect_initial_ms, doubled per failure up to reconnect_max_ms, each
// delay drawn in [backoff/2, backoff] from a generator seeded with jitter_seed); the backoff
// resets once a handshake succeeds. An accepted connection from a node that already has one
// replaces the older, which is closed. After the handshake the acceptor sends nothing: a frame
// arriving on a dialed connection closes it.
//
// Handshake (on every connection, both sides, as peer.h describes). Each side sends
//   Hello{version 1, cluster_id, node_id, nonce: 32 bytes from RAND_bytes}
// and, once it has the other side's Hello, HelloProof{mac} with
//   mac = HMAC-SHA256(key = cluster-secret,
//                     "raftkv-peer-v1" || tag || len32(cluster_id) || cluster_id ||
//                     dialer id (8 bytes) || acceptor id (8 bytes) ||
//                     dialer nonce (32 bytes) || acceptor nonce (32 bytes))
// where tag is the byte 'D' in the dialer's proof and 'A' in the acceptor's, so neither proof
// can be reflected as the other; integers are big-endian. The secret itself never travels.
// A side refuses the connection (logs why at warning level, counts it, closes) on: a Hello
// with another version, another cluster id, node id 0, its own id, an id that is not a
// member, or (on a dialed connection) an id other than the member dialed at that address; a
// nonce that is not 32 bytes or equals its own; a proof that does not verify (compared with
// CRYPTO_memcmp); any other frame where a Hello or a HelloProof is due; a handshake frame
// after the handshake; more than 64 KiB buffered before the handshake completes; no completed
// handshake within handshake_timeout_ms (counted from the dial or the accept); a malformed
// stream (FrameDecoder error, which also enforces max_frame_bytes before buffering a body).
// Only after the other side's proof checks does traffic flow; nothing is delivered before.
//
// What the handshake does not do: it authenticates the connection's origin, not the frames
// that follow (they are neither encrypted nor individually authenticated), so someone who
// can tamper with TCP between members can still inject or relay. Run peers on a trusted
// network. An accepted connection's source address is not checked against the member list
// (ports are ephemeral and hosts may be names): a node is identified by its proof.
//
// Traffic. Send() queues a Raft message on the dialed connection to m.to; SendFrame() queues
// any other frame (a snapshot chunk or ack, a forwarded request or its reply). Each peer's queue
// (frames waiting plus frames handed to the socket and not yet written) is capped by
// max_queue_frames and max_queue_bytes: a frame that does not fit is dropped and counted (Raft
// tolerates loss and resends what matters). Frames sent while the connection is being
// (re)established wait in the queue; when a dialed connection fails or is lost, everything queued
// for that peer is dropped and counted, so that a dead peer holds no memory and a revived one gets
// no stale backlog. Received frames must name the authenticated peer as `from` and this node as
// `to`; others are dropped and counted.
//
// Faults (enable-debug-command, RAFT.FAULT; DESIGN.md "External interface"). A node can be
// told at run time to lose traffic as a faulty network would. Every frame to or from a
// `blocked` peer is dropped: outgoing ones before they are queued, incoming ones on receipt,
// each counted. Connections and their handshakes are left alone, so Unblock() and Heal() take
// effect at once. When `unreliable`, every frame sent to any peer is dropped with probability
// drop_percent/100 and otherwise held for a delay drawn uniformly in [0, max_delay_ms] (a
// libuv timer) before it is queued; delayed frames may overtake one another (Raft copes), are
// dropped if their peer is blocked meanwhile, and are freed by Stop(). Draws come from a
// generator seeded with jitter_seed. A frame dropped by a fault counts as sent (SendFrame
// returns true): like a real network, the sender does not learn of the loss.
//
// Lifetime. Every libuv handle is closed by Stop(), which the destructor calls. The handles'
// memory is released by their close callbacks, which touch nothing else: after Stop() (or the
// destructor) the caller runs the loop until it has no active handles, then may close it.
// No callback of Options is called after Stop(). Callbacks may call Send, SendFrame and
// Stop, but must not destroy the transport.
//
// Thread-safety: none. Everything, callbacks included, runs on the loop's thread.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "protocol/peer.h"
#include "raft/types.h"
#include "server/config.h"
#include "server/raft_driver.h"

namespace server {

class PeerTransport : public RaftDriver::Transport {
 public:
  // Where a member accepts connections from its peers.
  struct PeerAddress {
    std::string host;  // numeric IPv4 or IPv6 address, or a host name (resolved by Start)
    uint16_t port = 0;
  };

  struct Options {
    // This node's id: a key of `members`, > 0.
    uint64_t self_id = 0;
    // cluster-id and cluster-secret (config.h); the secret must not be empty.
    std::string cluster_id;
    std::string cluster_secret;
    // Numeric IPv4 or IPv6 address the listener binds to; its port is members[self_id].port.
    std::string bind = "127.0.0.1";
    // Every member of the cluster, this node included: id -> peer address.
    std::map<uint64_t, PeerAddress> members;

    // Largest frame body sent or accepted (reliability plan §4.3: max-peer-frame, 8 MiB).
    // Must lie in [protocol::kMinPeerFrameBytes, protocol::kMaxPeerFrameBytesLimit].
    size_t max_frame_bytes = 8 << 20;
    // Per peer: most bytes and frames queued or being written (etcd keeps 4096 messages
    // per stream).
    size_t max_queue_bytes = 32 << 20;
    size_t max_queue_frames = 4096;
    // Time a connection has from the dial or the accept to complete its handshake.
    uint64_t handshake_timeout_ms = 2000;
    // Reconnect backoff of dialed connections (see the top of this file).
    uint64_t reconnect_initial_ms = 50;
    uint64_t reconnect_max_ms = 2000;
    uint64_t jitter_seed = 0;
    // Accepted connections that may be in their handshake at once; more are closed at once.
    size_t max_pending_handshakes = 64;

    // A Raft message from an authenticated peer, addressed to this node.
    std::function<void(raft::Message)> on_message;
    // Snapshot frames from an authenticated peer, addressed to this node, as received.
    std::function<void(protocol::SnapshotChunk)> on_snapshot_chunk;
    std::function<void(protocol::SnapshotAck)> on_snapshot_ack;
    // Forwarded client requests and their replies (follower-mode forward), as received.
    std::function<void(protocol::ForwardRequest)> on_forward_request;
    std::function<void(protocol::ForwardReply)> on_forward_reply;
    // The dialed connection to `id` completed its handshake (true) or was lost (false): whether
    // this node can send to `id` right now (for INFO's raft_peer lines).
    std::function<void(uint64_t id, bool connected)> on_peer_state;
    // Log lines. Default: notice and warning lines to stderr.
    std::function<void(LogLevel, std::string_view)> on_log;
  };

  // Options for the node `config` describes: its id, cluster id, secret, bind address and
  // every member's host and peer port. Callbacks and limits keep their defaults.
  static Options OptionsFromConfig(const Config& config);

  // Counters of one peer.
  struct PeerStats {
    bool connected = false;                // the dialed connection has completed its handshake
    bool inbound_connected = false;        // an accepted connection from it has
    uint64_t connects = 0;                 // handshakes completed on dialed connections
    uint64_t frames_sent = 0;              // frames written to the dialed connection
    uint64_t frames_received = 0;          // frames delivered to the callbacks
    uint64_t frames_rejected = 0;          // received with the wrong from/to, dropped
    uint64_t dropped_queue_full = 0;       // did not fit the queue
    uint64_t dropped_too_large = 0;        // body above max_frame_bytes
    uint64_t dropped_connection_lost = 0;  // queued when the dial failed or the connection
                                           // was lost, or sent while not running
    uint64_t dropped_blocked_out = 0;      // sent while the peer was blocked (faults)
    uint64_t dropped_blocked_in = 0;       // received while the peer was blocked (faults)
    uint64_t dropped_unreliable = 0;       // sent and lost to the unreliable fault
    uint64_t delayed = 0;                  // sent and held by the unreliable fault
    size_t queued_frames = 0;              // waiting or being written
    size_t queued_bytes = 0;
  };

  // The injected faults (see "Faults" above).
  struct Faults {
    std::set<uint64_t> blocked;  // peers whose traffic is dropped both ways
    bool unreliable = false;
    uint32_t drop_percent = 0;  // 0..100
    uint64_t max_delay_ms = 0;
  };

  // Counters of the whole transport.
  struct Stats {
    uint64_t connections_refused = 0;  // handshakes or streams refused (see the top)
    uint64_t inbound_replaced = 0;     // accepted connections replaced by a newer one
    uint64_t unknown_destination = 0;  // Send/SendFrame to a node that is not a peer
  };

  // REQUIRES: `loop` outlives the transport; options as documented above (checked).
  PeerTransport(uv_loop_t* loop, Options options);
  // Calls Stop(). The loop must then run for the close callbacks to release memory.
  ~PeerTransport() override;

  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Resolves every member's address, listens on `bind` and this node's port, and dials every
  // other member. Returns InvalidArgument if an address does not resolve, IOError if the
  // listener cannot bind or listen; then nothing was started (call Stop() or destroy).
  // REQUIRES: called once, before Stop().
  common::Status Start();

  // Closes every connection, timer and the listener. Queued frames are dropped. Idempotent.
  // After it, Send and SendFrame drop everything and no callback is called.
  void Stop();

  // RaftDriver::Transport: queues `m` for node m.to (see "Traffic" above). A node that is not
  // a peer, or a transport not running, drops it and counts it.
  void Send(const raft::Message& m) override;

  // Queues `frame` for node `peer`. Returns whether it was queued (a frame lost to an injected
  // fault counts as queued: see "Faults" above).
  // REQUIRES: `frame` is not a handshake frame (checked), and its
  // `from` is this node (not checked: the receiver drops it otherwise).
  bool SendFrame(uint64_t peer, const protocol::PeerFrame& frame) override;

  // The port the listener is bound to (useful when members[self_id].port is 0); 0 before
  // Start() or after Stop().
  uint16_t listen_port() const;

  // Whether the dialed connection to `peer` has completed its handshake.
  bool connected(uint64_t peer) const;

  // Faults. Block/Unblock return false (and change nothing) when `peer` is not a peer of
  // this node (unknown, or this node itself). REQUIRES: drop_percent <= 100.
  bool Block(uint64_t peer);
  bool Unblock(uint64_t peer);
  void SetUnreliable(uint32_t drop_percent, uint64_t max_delay_ms);
  void SetReliable();
  // Clears every fault: no peer blocked, reliable. Frames already delayed still arrive.
  void Heal();
  Faults faults() const;

  // Counters of `peer` (all zero for a node that is not a peer), and of the transport.
  PeerStats peer_stats(uint64_t peer) const;
  Stats stats() const;

 private:
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

}  // namespace server
