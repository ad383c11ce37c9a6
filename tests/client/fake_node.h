// FakeNode: a scripted RESP server on 127.0.0.1 for the client library's unit tests. One thread
// serves any number of connections; every command (an array of bulk strings, as hiredis sends)
// is logged and handed to the handler, which says what to do: reply with given bytes, close the
// connection, or stay silent (the client's attempt then times out).
//
// Thread-safety: the handler runs on the server thread; commands() and connections() may be
// called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace raftkv_client_test {

using Command = std::vector<std::string>;

struct Action {
  enum class Kind { kReply, kClose, kSilence };
  Kind kind = Kind::kReply;
  std::string bytes;  // kReply: sent as they are
};

inline Action Send(std::string bytes) { return Action{Action::Kind::kReply, std::move(bytes)}; }
inline Action CloseConnection() { return Action{Action::Kind::kClose, ""}; }
inline Action Silence() { return Action{Action::Kind::kSilence, ""}; }

class FakeNode {
 public:
  using Handler = std::function<Action(const Command& command)>;

  explicit FakeNode(Handler handler);
  ~FakeNode();
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  uint16_t port() const { return port_; }
  // Every command received so far, in order.
  std::vector<Command> commands() const;
  // Connections accepted so far.
  int connections() const { return connections_.load(); }

 private:
  void Serve();

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<Command> commands_;
  std::thread thread_;
};

// A port on 127.0.0.1 that nothing listens on (bound, then closed): connects are refused.
uint16_t UnusedPort();

}  // namespace raftkv_client_test
