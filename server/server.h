// Server: one raftkv node in a process. It owns the libuv loop's handles, the node's storage,
// the Raft driver, the peer transport and the client listener, and answers Redis commands.
//
// Commands (docs/commands.md): PING, ECHO, QUIT, SELECT 0, AUTH, HELLO (protocol 2), CLIENT
// SETNAME/GETNAME/ID, COMMAND, CONFIG GET, INFO, DBSIZE, GET, MGET, EXISTS, STRLEN, TYPE, SET
// (NX, XX, GET), PUT, SETNX, GETSET, GETDEL, MSET, DEL, APPEND, INCR, DECR, INCRBY, DECRBY,
// INCRBYFLOAT, FLUSHALL, RAFT.STATUS. Writes are proposed through Raft and answered once
// applied; reads wait for a ReadIndex point. A follower answers -MOVED with the leader's
// address, or -CLUSTERDOWN when it knows no leader.
//
// Not yet: forwarding from followers (follower-mode forward answers as moved does), MULTI,
// log compaction and snapshot streaming, leadership transfer on SIGTERM, a timeout for
// proposals whose outcome never arrives.
//
// Thread-safety: the loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/node_storage.h"
#include "server/client_listener.h"
#include "server/config.h"
#include "server/peer_transport.h"
#include "server/raft_driver.h"

namespace server {

class Server : public ClientHandler {
 public:
  Server(uv_loop_t* loop, Config config);
  ~Server() override;

  // Opens the storage, starts the node, the peer transport and the client listener.
  common::Status Start();
  // Closes every handle; the loop then runs out.
  void Stop();
  // Why the node stopped on its own (a failed write: fail-stop), or OK.
  const common::Status& fatal() const { return fatal_; }

  void OnRequest(Client& client, std::vector<std::string>&& args) override;

 private:
  void Propose(Client& client, protocol::Command cmd,
               std::function<void(const kv::ApplyResult&, std::string*)> format);
  void ReadThen(Client& client, std::function<void(std::string*)> answer);
  // -MOVED to the leader or -CLUSTERDOWN; true if this node is not the leader.
  bool RedirectIfFollower(Client& client);
  std::string RedirectReply();
  std::string Info();
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
};

}  // namespace server
