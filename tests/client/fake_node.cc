#include "tests/client/fake_node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>

namespace raftkv_client_test {
namespace {

int ListenOnLoopback(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) std::abort();
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) std::abort();
  *port = ntohs(addr.sin_port);
  return fd;
}

// Parses one "*N\r\n$L\r\n<bytes>\r\n..." command from the front of `buf`. Returns the bytes it
// took, or 0 if the command is not complete yet.
size_t ParseCommand(const std::string& buf, Command* out) {
  size_t pos = 0;
  auto read_line = [&buf, &pos](char type, long* n) {
    if (pos >= buf.size() || buf[pos] != type) return false;
    const size_t end = buf.find("\r\n", pos);
    if (end == std::string::npos) return false;
    *n = std::strtol(buf.c_str() + pos + 1, nullptr, 10);
    pos = end + 2;
    return true;
  };
  long count = 0;
  if (!read_line('*', &count)) return 0;
  out->clear();
  for (long i = 0; i < count; i++) {
    long len = 0;
    if (!read_line('$', &len)) return 0;
    if (buf.size() < pos + static_cast<size_t>(len) + 2) return 0;
    out->push_back(buf.substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len) + 2;
  }
  return pos;
}

}  // namespace

FakeNode::FakeNode(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ListenOnLoopback(&port_);
  if (::listen(listen_fd_, 64) != 0) std::abort();
  thread_ = std::thread([this] { Serve(); });
}

FakeNode::~FakeNode() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::vector<Command> FakeNode::commands() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commands_;
}

void FakeNode::Serve() {
  struct Conn {
    std::string in;
    bool silent = false;
  };
  std::map<int, Conn> conns;
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back(pollfd{listen_fd_, POLLIN, 0});
    for (const auto& [fd, c] : conns) fds.push_back(pollfd{fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd >= 0) {
        conns[fd] = Conn{};
        connections_++;
      }
    }
    for (size_t i = 1; i < fds.size(); i++) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      Conn& c = conns[fd];
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        ::close(fd);
        conns.erase(fd);
        continue;
      }
      if (c.silent) continue;
      c.in.append(buf, static_cast<size_t>(n));
      bool closed = false;
      while (!closed && !c.silent) {
        Command cmd;
        const size_t used = ParseCommand(c.in, &cmd);
        if (used == 0) break;
        c.in.erase(0, used);
        {
          std::lock_guard<std::mutex> lock(mu_);
          commands_.push_back(cmd);
        }
        const Action a = handler_(cmd);
        switch (a.kind) {
          case Action::Kind::kReply:
            (void)::send(fd, a.bytes.data(), a.bytes.size(), MSG_NOSIGNAL);
            break;
          case Action::Kind::kClose:
            closed = true;
            break;
          case Action::Kind::kSilence:
            c.silent = true;
            break;
        }
      }
      if (closed) {
        ::close(fd);
        conns.erase(fd);
      }
    }
  }
  for (const auto& [fd, c] : conns) ::close(fd);
}

uint16_t UnusedPort() {
  uint16_t port = 0;
  int fd = ListenOnLoopback(&port);
  ::close(fd);
  return port;
}

}  // namespace raftkv_client_test
