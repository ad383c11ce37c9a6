// RAFT.FAULT: fault injection on demand (DESIGN.md "External interface", docs/commands.md
// "Fault injection"). A node command: it changes only the peer transport of the node that
// answers it, and exists only when enable-debug-command allows the client.
//
//   RAFT.FAULT BLOCK <id> [<id> ...]     drop every frame to and from those peers
//   RAFT.FAULT UNBLOCK <id> [<id> ...]   let their traffic through again
//   RAFT.FAULT UNRELIABLE <drop-percent 0..100> <max-delay-ms 0..10000>
//   RAFT.FAULT RELIABLE                  stop dropping and delaying
//   RAFT.FAULT HEAL                      both of the above for every peer
//   RAFT.FAULT STATUS                    the faults in force, as a flat array
//
// Thread-safety: the loop thread only (it changes the transport).
#pragma once

#include <string>
#include <vector>

#include "server/config.h"
#include "server/peer_transport.h"

namespace server {

// Whether enable-debug-command `mode` allows a client (connected over loopback or not).
bool DebugCommandAllowed(DebugCommand mode, bool loopback);

// Redis 7's refusal of a protected command (its DEBUG text, naming `command` instead).
std::string DebugCommandRefusal(const std::string& command);

// Runs RAFT.FAULT `args` (checked against the command table already: a known subcommand with
// the right number of arguments, HELP excepted) on `transport`, the peer transport of the node
// `config` describes, and returns the whole RESP reply. Every argument is checked before
// anything changes. Logs each change at notice level.
std::string RunFaultCommand(const std::vector<std::string>& args, const Config& config,
                            PeerTransport& transport);

}  // namespace server
