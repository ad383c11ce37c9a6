// raftkv-server: one node of a raftkv cluster.
//
//   raftkv-server [config-file] [--name value ...]     (docs/configuration.md)
//   raftkv-server --node-id 1                          (the default local 3-node cluster)
#include <uv.h>

#include <cstdio>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/server.h"

int main(int argc, char** argv) {
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
  uv_loop_t* loop = uv_default_loop();
  server::Server srv(loop, config);
  // SIGTERM and SIGINT stop the node cleanly (SIGKILL at any moment is safe by design).
  struct Signals {
    server::Server* srv;
    uv_signal_t term;
    uv_signal_t intr;
    void Close() {
      for (uv_signal_t* h : {&term, &intr}) {
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(h))) {
          uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
        }
      }
    }
  } signals{&srv, {}, {}};
  uv_signal_init(loop, &signals.term);
  uv_signal_init(loop, &signals.intr);
  signals.term.data = signals.intr.data = &signals;
  auto on_signal = [](uv_signal_t* h, int signum) {
    auto* sig = static_cast<Signals*>(h->data);
    std::fprintf(stderr, "raftkv: signal %d, shutting down\n", signum);
    sig->srv->Stop();
    sig->Close();
  };
  uv_signal_start(&signals.term, on_signal, SIGTERM);
  uv_signal_start(&signals.intr, on_signal, SIGINT);
  s = srv.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "raftkv: cannot start node %llu: %s\n",
                 static_cast<unsigned long long>(config.node_id), s.ToString().c_str());
    srv.Stop();
    signals.Close();
    uv_run(loop, UV_RUN_DEFAULT);
    return 1;
  }
  std::fprintf(stderr, "raftkv: node %llu serving clients on %s:%u, data in %s\n",
               static_cast<unsigned long long>(config.node_id), config.bind.c_str(),
               static_cast<unsigned>(config.port), config.dir.c_str());
  uv_run(loop, UV_RUN_DEFAULT);
  // Stopped on its own (fail-stop): close the signal handles and let the loop run out.
  signals.Close();
  uv_run(loop, UV_RUN_DEFAULT);
  if (!srv.fatal().ok()) return 2;
  return 0;
}
