#include "server/fault_command.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "common/strings.h"
#include "protocol/resp_writer.h"
#include "server/commands.h"

namespace server {
namespace {

constexpr int64_t kMaxDelayMs = 10000;

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string IdList(const std::set<uint64_t>& ids) {
  std::string out;
  for (uint64_t id : ids) {
    if (!out.empty()) out += ",";
    out += std::to_string(id);
  }
  return out;
}

std::string Ok() {
  std::string out;
  protocol::RespWriter(&out).Ok();
  return out;
}

}  // namespace

bool DebugCommandAllowed(DebugCommand mode, bool loopback) {
  return mode == DebugCommand::kYes || (mode == DebugCommand::kLocal && loopback);
}

std::string DebugCommandRefusal(const std::string& command) {
  return "ERR " + Upper(command) +
         " command not allowed. If the enable-debug-command option is set to \"local\", you can "
         "run it from a local connection, otherwise you need to set this option in the "
         "configuration file, and then restart the server.";
}

std::string RunFaultCommand(const std::vector<std::string>& args, const Config& config,
                            PeerTransport& transport) {
  const std::string sub = common::AsciiLower(args[1]);
  if (sub == "block" || sub == "unblock") {
    // Every id first, so that a bad one changes nothing.
    std::vector<uint64_t> ids;
    for (size_t i = 2; i < args.size(); i++) {
      int64_t id = 0;
      if (!common::ParseInt64(args[i], &id)) {
        return ErrorReply("ERR value is not an integer or out of range");
      }
      bool peer = false;
      for (const ClusterMember& m : config.cluster) {
        if (id > 0 && m.id == static_cast<uint64_t>(id) && m.id != config.node_id) peer = true;
      }
      if (!peer) return ErrorReply("ERR unknown node id " + args[i]);
      ids.push_back(static_cast<uint64_t>(id));
    }
    for (uint64_t id : ids) {
      if (sub == "block") {
        transport.Block(id);
      } else {
        transport.Unblock(id);
      }
    }
    spdlog::info("fault injection: {} traffic with node(s) {}; blocked now: [{}]",
                 sub == "block" ? "blocking" : "unblocking",
                 IdList(std::set<uint64_t>(ids.begin(), ids.end())),
                 IdList(transport.faults().blocked));
    return Ok();
  }
  if (sub == "unreliable") {
    int64_t drop = 0;
    int64_t delay = 0;
    if (!common::ParseInt64(args[2], &drop) || drop < 0 || drop > 100 ||
        !common::ParseInt64(args[3], &delay) || delay < 0 || delay > kMaxDelayMs) {
      return ErrorReply("ERR value is not an integer or out of range");
    }
    transport.SetUnreliable(static_cast<uint32_t>(drop), static_cast<uint64_t>(delay));
    spdlog::info(
        "fault injection: unreliable peer links: dropping {}% of frames, delaying the "
        "others 0-{} ms",
        drop, delay);
    return Ok();
  }
  if (sub == "reliable") {
    transport.SetReliable();
    spdlog::info("fault injection: reliable peer links");
    return Ok();
  }
  if (sub == "heal") {
    transport.Heal();
    spdlog::info("fault injection: healed (no peer blocked, reliable peer links)");
    return Ok();
  }
  // status
  const PeerTransport::Faults f = transport.faults();
  std::string out;
  protocol::RespWriter w(&out);
  w.ArrayHeader(8);
  w.BulkString("blocked");
  w.BulkString(IdList(f.blocked));
  w.BulkString("unreliable");
  w.BulkString(f.unreliable ? "yes" : "no");
  w.BulkString("drop_percent");
  w.Integer(static_cast<int64_t>(f.drop_percent));
  w.BulkString("max_delay_ms");
  w.Integer(static_cast<int64_t>(f.max_delay_ms));
  return out;
}

}  // namespace server
