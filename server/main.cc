// raftkv-server: one node of a raftkv cluster.
//
//   raftkv-server [config-file] [--name value ...]     (docs/configuration.md)
//   raftkv-server --node-id 1                          (the default local 3-node cluster)
#include <spdlog/spdlog.h>
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/log.h"
#include "server/server.h"

int main(int argc, char** argv) {
  // A write to a connection the other end has closed must fail with EPIPE, which the
  // connection's owner handles, not kill the node (as Redis does).
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::printf("usage: raftkv-server [config-file] [--name value ...]\n\n%s",
                server::ConfigUsage().c_str());
    return 0;
  }
  if (!args.empty() && (args[0] == "--version" || args[0] == "-v")) {
    std::printf("raftkv-server 0.1.0\n");
    return 0;
  }
  server::Config config;
  common::Status s = server::ParseConfig(args, server::GetProcessEnv, &config);
  if (!s.ok()) {
    std::fprintf(stderr, "\n*** FATAL CONFIG ERROR (raftkv) ***\n%s\n", s.message().c_str());
    return 1;
  }
  s = server::InitLogging(config);
  if (!s.ok()) {
    std::fprintf(stderr, "\n*** FATAL CONFIG ERROR (raftkv) ***\n%s\n", s.message().c_str());
    return 1;
  }
  if (server::IsDevelopmentSecret(config) && config.cluster.size() > 1) {
    spdlog::warn("cluster-secret is the public development default: set your own");
  }
  uv_loop_t* loop = uv_default_loop();
  server::Server srv(loop, config);
  // SIGTERM and SIGINT stop the node cleanly: a leader hands leadership away first; a second
  // signal stops at once. (SIGKILL at any moment is safe by design.) The signal handles do not
  // keep the loop alive: it ends when the server has closed its own handles.
  uv_signal_t term, intr;
  for (uv_signal_t* h : {&term, &intr}) {
    uv_signal_init(loop, h);
    h->data = &srv;
    uv_unref(reinterpret_cast<uv_handle_t*>(h));
  }
  auto on_signal = [](uv_signal_t* h, int signum) {
    spdlog::info("signal {} received", signum);
    static_cast<server::Server*>(h->data)->Shutdown();
  };
  uv_signal_start(&term, on_signal, SIGTERM);
  uv_signal_start(&intr, on_signal, SIGINT);
  auto close_signals = [&] {
    for (uv_signal_t* h : {&term, &intr}) uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  };
  s = srv.Start();
  if (!s.ok()) {
    spdlog::critical("cannot start node {}: {}", config.node_id, s.ToString());
    srv.Stop();
    close_signals();
    uv_run(loop, UV_RUN_DEFAULT);
    return 1;
  }
  spdlog::info("node {} serving clients on {}:{}, peers on port {}, data in {}", config.node_id,
               config.bind, config.port, config.self().peer_port, config.dir);
  uv_run(loop, UV_RUN_DEFAULT);
  // Stopped (a signal, or fail-stop): close the signal handles and let the loop run out.
  close_signals();
  uv_run(loop, UV_RUN_DEFAULT);
  if (!srv.fatal().ok()) return 2;
  spdlog::info("node {} stopped", config.node_id);
  return 0;
}
