// Server: one raftkv node in a process. It owns the libuv loop's handles, the node's storage,
// the Raft driver, the peer transport and the client listener, and answers Redis commands
// (docs/commands.md).
//
// Where a command runs:
//   - Connection and node commands (PING, AUTH, HELLO, CLIENT, CONFIG GET, INFO, CLUSTER,
//     RAFT.STATUS, RAFT.COMPACT, RAFT.FAULT, MULTI/DISCARD bookkeeping) are answered by the node
//     the client is connected to.
//   - Data commands (commands.h) need the leader. On the leader, reads wait for a ReadIndex
//     point, writes are proposed and answered once applied, and EXEC proposes its whole queue as
//     one log entry. On a follower, `follower-mode moved` answers -MOVED <slot> <leader>, and
//     `follower-mode forward` (the default) relays the request to the leader over the peer
//     transport (a ForwardRequest frame) and the leader's reply back to the client. Forwarded
//     writes carry this node's exactly-once session and a fresh sequence number, so the leader's
//     state machine would recognise a repeat.
//   - With no leader known, data commands get -CLUSTERDOWN no leader (never proposed).
// Every request waits at most request-timeout-ms for its outcome, then gets -TIMEOUT (DESIGN.md's
// reply table): a write may still be applied later.
//
// Shutdown: Shutdown() (SIGTERM) first hands leadership to the most up-to-date connected
// follower, waits until another node leads (or an election timeout passes), then Stop()s.
//
// Thread-safety: the loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "kv/node_storage.h"
#include "protocol/peer.h"
#include "server/client_listener.h"
#include "server/commands.h"
#include "server/config.h"
#include "server/peer_transport.h"
#include "server/raft_driver.h"

namespace server {

class Server : public ClientHandler {
 public:
  struct Connection;

  Server(uv_loop_t* loop, Config config);
  ~Server() override;

  // Opens the storage, starts the node, the peer transport and the client listener.
  common::Status Start();
  // Hands leadership away if this node leads, then Stop()s. A second call stops at once.
  void Shutdown();
  // Closes every handle; the loop then runs out.
  void Stop();
  // Why the node stopped on its own (a failed write: fail-stop), or OK.
  const common::Status& fatal() const { return fatal_; }

  void OnRequest(Client& client, std::vector<std::string>&& args) override;

 private:
  // Where the reply of a request goes: a client's reply slot, or a ForwardReply frame.
  using Sink = std::function<void(std::string)>;

  // A request forwarded to the leader (follower side). Every forwarded write carries a
  // session (the node's own, or the client's inside RAFT.REQUEST), so the request can be sent
  // again, to the same or a new leader, until its deadline: it applies at most once.
  struct Forward {
    Sink sink;
    uint64_t leader = 0;    // the node the last attempt went to; 0: none in flight
    uint64_t deadline = 0;  // tick
    uint64_t sent = 0;      // tick of the last attempt
    std::string commands;
    uint64_t session = 0;  // the node's forwarding session it is in, and its number there;
    uint64_t seq = 0;      // 0: none (a read, or a write in the client's own session)
    // Whether a lost attempt may be sent again (RAFT.SESSION is sent once), and whether an
    // attempt that may have been applied was followed by another.
    bool resendable = true;
    bool ambiguous = false;
  };
  struct Transfer {
    uint64_t target;
    uint64_t deadline;  // tick
    Sink sink;
  };

  void OnTick();
  // A data command, or an EXEC queue (`transaction`), from a client of this node.
  void Dispatch(Client& client, std::vector<Plan> plans,
                std::vector<std::vector<std::string>> commands, bool transaction);
  // Runs planned commands on this node as the leader; `not_leader` runs instead if it is not
  // (or stops being before anything was proposed).
  // `node_session` is used for a write that has no session of its own (RAFT.REQUEST's).
  void RunOnLeader(std::vector<Plan> plans, bool transaction, SessionRef node_session, Sink sink,
                   std::function<void()> not_leader);
  void Begin(std::weak_ptr<Client> weak, Connection* conn, DeferredReply reply,
             std::vector<Plan> plans, std::vector<std::vector<std::string>> commands,
             bool transaction, bool write);
  // Forwards encoded `commands` to the leader; `node_session`: a write without a session of its
  // own, sent in this node's forwarding session.
  void ForwardToLeader(Sink sink, std::string commands, bool node_session, bool resendable);
  // Sends (again) forward `id` to `leader`, or serves it here if this node now leads.
  void SendForward(uint64_t id, raft::NodeId leader);
  // The leader's answer to forward `id`: relayed, or, for an answer that means "ask again",
  // kept for a later attempt.
  void OnForwardAnswer(uint64_t id, std::string reply);
  // Answers forward `id` and forgets it.
  void FinishForward(uint64_t id, std::string reply);
  // Replaces the node's forwarding session (the old one expired).
  void NewForwardSession();
  // Each tick: expires forwards past their deadline and sends again those whose attempt was
  // lost, went to a node that no longer leads, or has had no answer for two election
  // timeouts (a dropped frame).
  void RetryForwards();
  void OnPeerState(uint64_t peer, bool connected);
  void OnForwardRequest(protocol::ForwardRequest request);
  // Runs a forwarded request as the leader; reply(not_leader, out) answers it.
  void ServeForwarded(const protocol::ForwardRequest& q,
                      std::function<void(bool not_leader, std::string out)> reply);
  void OnForwardReply(protocol::ForwardReply reply);
  void StartTransfer(uint64_t target, Sink sink);
  void CheckTransfers();
  // -MOVED to the leader (slot `slot`) or -CLUSTERDOWN.
  std::string RedirectReply(uint16_t slot);
  std::string ClusterReply(const std::vector<std::string>& args);
  // The reply to AUTH or HELLO (args as the client sent them); authenticates `client` and sets
  // its name as they ask.
  std::string AuthOrHello(Client& client, const std::vector<std::string>& args);
  // INFO's text; args as the client sent them (INFO [section ...]).
  std::string Info(const std::vector<std::string>& args);
  void CheckDisk();
  void CheckFatal();

  uv_loop_t* loop_;
  Config config_;
  std::unique_ptr<kv::NodeStorage> storage_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<RaftDriver> driver_;
  std::unique_ptr<ClientListener> listener_;
  uv_timer_t* tick_ = nullptr;
  uv_async_t* storage_news_ = nullptr;
  uv_prepare_t* flush_ = nullptr;
  common::Status fatal_;
  bool stopped_ = false;
  bool shutting_down_ = false;
  uint64_t shutdown_deadline_ = 0;  // tick

  uint64_t ticks_ = 0;
  uint64_t request_timeout_ticks_ = 0;
  uint64_t election_ticks_ = 0;
  size_t max_forward_reply_bytes_ = 0;
  uint64_t start_time_ms_ = 0;
  bool disk_low_ = false;
  uint64_t disk_free_mb_ = 0;
  ScanCursors cursors_;

  // Forwarding (follower side): requests sent to the leader and waiting for its reply.
  uint64_t forward_session_ = 0;
  uint64_t forward_seq_ = 0;
  std::set<uint64_t> forward_seqs_;  // the forwarding session's requests in flight
  uint64_t next_forward_id_ = 0;
  std::map<uint64_t, Forward> forwards_;  // by id: the order requests came in
  std::vector<Transfer> transfers_;

  // For INFO # Stats.
  uint64_t forwarded_requests_ = 0;
  uint64_t forwarded_served_ = 0;
  uint64_t forward_retries_ = 0;
  uint64_t timeouts_ = 0;
};

}  // namespace server
