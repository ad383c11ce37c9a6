#include "raft/types.h"

namespace raft {

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kVote:
      return "RequestVote";
    case MessageType::kVoteResponse:
      return "RequestVoteResponse";
    case MessageType::kAppend:
      return "AppendEntries";
    case MessageType::kAppendResponse:
      return "AppendEntriesResponse";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kSnapshot:
      return "InstallSnapshot";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
  }
  return "?";
}

bool IsResponse(MessageType type) {
  return type == MessageType::kPreVoteResponse || type == MessageType::kVoteResponse ||
         type == MessageType::kAppendResponse || type == MessageType::kHeartbeatResponse;
}

size_t MessageBytes(const Message& m) {
  // Fixed fields (type, ids, terms, indexes, flags, context, snapshot metadata) as a compact
  // binary encoding would carry them, plus each entry's payload and its own header.
  size_t bytes = 64;
  for (const Entry& e : m.entries) bytes += EntryPayloadBytes(e);
  return bytes;
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "precandidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

}  // namespace raft
