// SnapshotSender and SnapshotReceiver against fakes: a BackgroundWork the test runs by hand, a
// reader serving given chunks, a writer recording them, and frames captured instead of sent.
// The sender streams within its window, rewrites the snapshot to what it reads, and abandons
// a stream (telling the core, or not) on each failure it knows, and keeps to its throttle; the
// receiver writes one stream in order, answers every chunk with what it has, and hands a
// complete stream over.
#include "server/snapshot_stream.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "tests/server/manual_background_work.h"

namespace server {
namespace {

class FakeReader : public kv::StateMachine::SnapshotReader {
 public:
  FakeReader(raft::SnapshotMeta meta, std::vector<std::string> chunks, int fail_at)
      : meta_(meta), chunks_(std::move(chunks)), fail_at_(fail_at) {}
  raft::SnapshotMeta meta() const override { return meta_; }
  common::Status Next(std::string* chunk, bool* done) override {
    if (static_cast<int>(next_) == fail_at_) return common::Status::IOError("disk gone");
    *chunk = chunks_.at(next_++);
    *done = next_ == chunks_.size();
    return common::Status::OK();
  }

 private:
  raft::SnapshotMeta meta_;
  std::vector<std::string> chunks_;
  size_t next_ = 0;
  int fail_at_;
};

raft::Message SnapshotMessage(raft::NodeId to, raft::Term term, raft::Index index) {
  raft::Message m;
  m.type = raft::MessageType::kSnapshot;
  m.from = 1;
  m.to = to;
  m.term = term;
  m.snapshot = {index, 1};
  return m;
}

class SnapshotSenderTest : public ::testing::Test {
 protected:
  void Make(size_t window, int stall_ticks = 5) {
    SnapshotSender::Options o;
    o.self = 1;
    o.chunk_bytes = 4;
    o.window_chunks = window;
    o.stall_ticks = stall_ticks;
    o.max_bytes_per_tick = max_bytes_per_tick_;
    SnapshotSender::Hooks h;
    h.open_reader = [this](size_t) -> std::unique_ptr<kv::StateMachine::SnapshotReader> {
      readers_opened_++;
      if (no_reader_) return nullptr;
      return std::make_unique<FakeReader>(meta_, chunks_, fail_read_at_);
    };
    h.send_frame = [this](raft::NodeId peer, const protocol::PeerFrame& f) {
      EXPECT_TRUE(std::holds_alternative<protocol::SnapshotChunk>(f));
      if (!transport_takes_) return false;
      sent_.push_back({peer, std::get<protocol::SnapshotChunk>(f)});
      return true;
    };
    h.report_failure = [this](raft::NodeId follower) { reported_.push_back(follower); };
    sender_ = std::make_unique<SnapshotSender>(o, std::move(h), &bg_);
  }
  protocol::SnapshotAck Ack(uint64_t offset, bool ok = true, raft::NodeId from = 2) {
    protocol::SnapshotAck a;
    a.from = from;
    a.to = 1;
    a.snapshot_index = meta_.index;
    a.snapshot_term = meta_.term;
    a.offset_received = offset;
    a.ok = ok;
    if (!ok) a.error = "no thanks";
    return a;
  }

  // Runs every read and acknowledges every chunk sent, as a fast follower would, until the
  // sender waits for something else (budget or a tick). An answer repeated once all is
  // acknowledged is ignored, so each follower is simply answered with the end of its last chunk.
  void SendAndAcknowledgeAll() {
    do {
      bg_.RunAll();
      std::map<raft::NodeId, uint64_t> ends;
      for (const auto& [peer, c] : sent_) ends[peer] = c.offset + c.data.size();
      for (const auto& [peer, end] : ends) sender_->OnAck(Ack(end, true, peer));
    } while (bg_.pending() > 0);
  }
  uint64_t BytesSentTo(raft::NodeId follower) const {
    uint64_t n = 0;
    for (const auto& [peer, c] : sent_) {
      if (peer == follower) n += c.data.size();
    }
    return n;
  }

  ManualBackgroundWork bg_;
  uint64_t max_bytes_per_tick_ = 0;
  raft::SnapshotMeta meta_{120, 3};
  std::vector<std::string> chunks_{"aaaa", "bbbb", "cccc", "dddd", "ee"};
  int fail_read_at_ = -1;
  bool no_reader_ = false;
  bool transport_takes_ = true;
  int readers_opened_ = 0;
  std::vector<std::pair<raft::NodeId, protocol::SnapshotChunk>> sent_;
  std::vector<raft::NodeId> reported_;
  std::unique_ptr<SnapshotSender> sender_;
};

TEST_F(SnapshotSenderTest, StreamsWithinTheWindowUntilEveryChunkIsAcknowledged) {
  Make(2);
  // The core names its log's snapshot (100); the stream carries the state machine's (120).
  sender_->Start(SnapshotMessage(2, 7, 100));
  EXPECT_EQ(bg_.pending(), 1u) << "one read at a time";
  bg_.RunAll();
  ASSERT_EQ(sent_.size(), 2u) << "the window holds two unacknowledged chunks";
  const protocol::SnapshotChunk& c = sent_[0].second;
  EXPECT_EQ(sent_[0].first, 2u);
  EXPECT_EQ(c.from, 1u);
  EXPECT_EQ(c.to, 2u);
  EXPECT_EQ(c.term, 7u);
  EXPECT_EQ(c.snapshot_index, 120u);
  EXPECT_EQ(c.snapshot_term, 3u);
  EXPECT_EQ(c.offset, 0u);
  EXPECT_EQ(c.data, "aaaa");
  EXPECT_FALSE(c.last);
  EXPECT_EQ(sent_[1].second.offset, 4u);
  sender_->OnAck(Ack(4));
  bg_.RunAll();
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[2].second.offset, 8u);
  sender_->OnAck(Ack(12));  // both in flight at once
  bg_.RunAll();
  ASSERT_EQ(sent_.size(), 5u);
  EXPECT_EQ(sent_[4].second.data, "ee");
  EXPECT_TRUE(sent_[4].second.last);
  EXPECT_TRUE(sender_->streaming(2));
  sender_->OnAck(Ack(16));
  EXPECT_TRUE(sender_->streaming(2)) << "the last chunk is not acknowledged yet";
  sender_->OnAck(Ack(18));
  EXPECT_FALSE(sender_->streaming(2));
  EXPECT_TRUE(reported_.empty());
  EXPECT_EQ(sender_->stats().completed, 1u);
  EXPECT_EQ(sender_->stats().bytes_sent, 18u);
  EXPECT_EQ(bg_.pending(), 0u);
}

TEST_F(SnapshotSenderTest, AskedAgainInTheSameTermTheStreamGoesOn) {
  Make(1);
  sender_->Start(SnapshotMessage(2, 7, 100));
  bg_.RunAll();
  sender_->Start(SnapshotMessage(2, 7, 100));  // the core's snapshot timeout ran out
  bg_.RunAll();
  EXPECT_EQ(readers_opened_, 1);
  EXPECT_EQ(sent_.size(), 1u);
  // A new term is a new stream, from the start.
  sender_->Start(SnapshotMessage(2, 8, 100));
  bg_.RunAll();
  EXPECT_EQ(readers_opened_, 2);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].second.offset, 0u);
  EXPECT_EQ(sent_[1].second.term, 8u);
  EXPECT_TRUE(reported_.empty());
}

TEST_F(SnapshotSenderTest, RefusalAbandonsTheStreamAndTellsTheCore) {
  Make(2);
  sender_->Start(SnapshotMessage(2, 7, 100));
  bg_.RunAll();
  sender_->OnAck(Ack(0, false));
  EXPECT_FALSE(sender_->streaming(2));
  EXPECT_EQ(reported_, std::vector<raft::NodeId>{2});
  sender_->OnAck(Ack(4));  // late: no stream, no effect
  bg_.RunAll();
  EXPECT_EQ(sent_.size(), 2u);
  EXPECT_EQ(reported_.size(), 1u);
}

TEST_F(SnapshotSenderTest, AnAnswerShortOfTheOldestChunkInFlightStartsOver) {
  Make(3);
  sender_->Start(SnapshotMessage(2, 7, 100));
  bg_.RunAll();
  ASSERT_EQ(sent_.size(), 3u);
  sender_->OnAck(Ack(4));
  bg_.RunAll();
  // The follower got a chunk after a hole: it still has only the first one.
  sender_->OnAck(Ack(4));
  EXPECT_FALSE(sender_->streaming(2));
  EXPECT_EQ(reported_, std::vector<raft::NodeId>{2});
}

TEST_F(SnapshotSenderTest, AnswersOfOtherStreamsAreIgnored) {
  Make(2);
  sender_->Start(SnapshotMessage(2, 7, 100));
  bg_.RunAll();
  protocol::SnapshotAck other = Ack(4, false);
  other.snapshot_index = 99;  // another snapshot
  sender_->OnAck(other);
  sender_->OnAck(Ack(40));  // beyond what this stream sent: an earlier stream's
  protocol::SnapshotAck stranger = Ack(4, false);
  stranger.from = 3;  // no stream to node 3
  sender_->OnAck(stranger);
  EXPECT_TRUE(sender_->streaming(2));
  EXPECT_TRUE(reported_.empty());
  sender_->OnAck(Ack(4));
  bg_.RunAll();
  EXPECT_EQ(sent_.size(), 3u);
}

TEST_F(SnapshotSenderTest, AStreamWithoutProgressForStallTicksIsAbandoned) {
  Make(2, /*stall_ticks=*/5);
  sender_->Start(SnapshotMessage(2, 7, 100));
  bg_.RunAll();
  for (int i = 0; i < 4; i++) sender_->Tick(true, 7);
  sender_->OnAck(Ack(4));  // progress: the count starts again
  bg_.RunAll();
  for (int i = 0; i < 4; i++) sender_->Tick(true, 7);
  EXPECT_TRUE(sender_->streaming(2));
  EXPECT_TRUE(reported_.empty());
  sender_->Tick(true, 7);
  EXPECT_FALSE(sender_->streaming(2));
  EXPECT_EQ(reported_, std::vector<raft::NodeId>{2});
}

TEST_F(SnapshotSenderTest, LosingLeadershipEndsStreamsWithoutTellingTheCore) {
  Make(2);
  sender_->Start(SnapshotMessage(2, 7, 100));
  sender_->Start(SnapshotMessage(3, 7, 100));
  bg_.RunAll();
  sender_->Tick(true, 8);  // a new term
  EXPECT_FALSE(sender_->streaming(2));
  EXPECT_FALSE(sender_->streaming(3));
  sender_->Start(SnapshotMessage(2, 8, 100));
  sender_->Tick(false, 8);  // a follower now
  EXPECT_FALSE(sender_->streaming(2));
  EXPECT_TRUE(reported_.empty());
  EXPECT_EQ(sender_->stats().abandoned, 3u);
}

TEST_F(SnapshotSenderTest, AReadFinishingAfterTheStreamEndedIsDropped) {
  Make(2);
  sender_->Start(SnapshotMessage(2, 7, 100));
  ASSERT_EQ(bg_.pending(), 1u);
  sender_->Tick(false, 7);
  bg_.RunAll();
  EXPECT_TRUE(sent_.empty());
  // The same with a new stream to the same follower started meanwhile: only its chunks go.
  sender_->Start(SnapshotMessage(2, 7, 100));
  sender_->Tick(true, 8);
  sender_->Start(SnapshotMessage(2, 8, 100));
  bg_.RunAll();
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].second.term, 8u);
  EXPECT_EQ(sent_[0].second.offset, 0u);
  EXPECT_EQ(sent_[1].second.offset, 4u);
}

TEST_F(SnapshotSenderTest, FailuresToReadOrQueueAreReported) {
  Make(2);
  no_reader_ = true;  // an install is replacing the state
  sender_->Start(SnapshotMessage(2, 7, 100));
  EXPECT_FALSE(sender_->streaming(2));
  EXPECT_EQ(reported_, std::vector<raft::NodeId>{2});

  no_reader_ = false;
  fail_read_at_ = 1;
  sender_->Start(SnapshotMessage(3, 7, 100));
  bg_.RunAll();
  EXPECT_FALSE(sender_->streaming(3));
  EXPECT_EQ(reported_, (std::vector<raft::NodeId>{2, 3}));
  EXPECT_EQ(sent_.size(), 1u);

  fail_read_at_ = -1;
  transport_takes_ = false;
  sender_->Start(SnapshotMessage(4, 7, 100));
  bg_.RunAll();
  EXPECT_FALSE(sender_->streaming(4));
  EXPECT_EQ(reported_, (std::vector<raft::NodeId>{2, 3, 4}));
}

TEST_F(SnapshotSenderTest, StopEndsEverythingQuietly) {
  Make(2);
  sender_->Start(SnapshotMessage(2, 7, 100));
  sender_->Stop();
  bg_.RunAll();
  sender_->Start(SnapshotMessage(3, 7, 100));
  bg_.RunAll();
  EXPECT_TRUE(sent_.empty());
  EXPECT_TRUE(reported_.empty());
  EXPECT_EQ(readers_opened_, 1);
}

TEST_F(SnapshotSenderTest, AThrottledStreamKeepsWithinTheBucketsBound) {
  // Chunks of exactly chunk_bytes (C = 4), always room in the window: the bucket alone limits
  // the stream. It reads whenever the budget is positive, so no refill is lost and after T
  // ticks (T + 1) * N <= bytes sent <= (T + 1) * N + C - 1; with chunks of 4 bytes that fixes
  // the count of chunks exactly, for a budget smaller, equal to and larger than a chunk.
  chunks_.assign(60, "xxxx");
  for (uint64_t n : {1u, 3u, 4u, 10u}) {
    SCOPED_TRACE("max_bytes_per_tick " + std::to_string(n));
    sent_.clear();
    max_bytes_per_tick_ = n;
    Make(4, /*stall_ticks=*/5);
    sender_->Start(SnapshotMessage(2, 7, 100));
    SendAndAcknowledgeAll();
    for (uint64_t t = 0; t <= 20; t++) {
      if (t > 0) {
        sender_->Tick(true, 7);
        SendAndAcknowledgeAll();
      }
      uint64_t sent = sender_->stats().bytes_sent;
      EXPECT_GE(sent, (t + 1) * n) << "after " << t << " ticks";
      EXPECT_LE(sent, (t + 1) * n + 3) << "after " << t << " ticks";
    }
    EXPECT_TRUE(sender_->streaming(2));
    EXPECT_GT(sender_->stats().throttled_ticks, 0u);
    EXPECT_TRUE(reported_.empty());
  }
}

TEST_F(SnapshotSenderTest, AChunkLargerThanTheBudgetGoesOutAndLeavesADebt) {
  chunks_ = {"aaaa", std::string(12, 'y'), "bbbb"};
  max_bytes_per_tick_ = 2;
  Make(4, /*stall_ticks=*/5);
  sender_->Start(SnapshotMessage(2, 7, 100));
  SendAndAcknowledgeAll();
  ASSERT_EQ(sent_.size(), 1u) << "budget 2, then 2 - 4";
  sender_->Tick(true, 7);  // 0: nothing
  SendAndAcknowledgeAll();
  EXPECT_EQ(sent_.size(), 1u);
  sender_->Tick(true, 7);  // 2: the large chunk goes, and costs 12: 2 - 12 = -10
  SendAndAcknowledgeAll();
  ASSERT_EQ(sent_.size(), 2u);
  // Five ticks pay the debt to 0; the sixth makes the budget positive again.
  for (int i = 0; i < 5; i++) {
    sender_->Tick(true, 7);
    SendAndAcknowledgeAll();
  }
  EXPECT_EQ(sent_.size(), 2u);
  sender_->Tick(true, 7);
  SendAndAcknowledgeAll();
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_FALSE(sender_->streaming(2)) << "all acknowledged";
  EXPECT_EQ(sender_->stats().completed, 1u);
}

TEST_F(SnapshotSenderTest, WaitingForBudgetIsNotStalling) {
  // One chunk every four ticks, and a stream abandoned after two without an acknowledgement.
  max_bytes_per_tick_ = 1;
  Make(4, /*stall_ticks=*/2);
  sender_->Start(SnapshotMessage(2, 7, 100));
  SendAndAcknowledgeAll();
  for (int t = 0; t < 20 && sender_->streaming(2); t++) {
    sender_->Tick(true, 7);
    SendAndAcknowledgeAll();
  }
  EXPECT_FALSE(sender_->streaming(2));
  EXPECT_EQ(sender_->stats().completed, 1u);
  EXPECT_EQ(sender_->stats().bytes_sent, 18u);
  EXPECT_TRUE(reported_.empty());
  EXPECT_GE(sender_->stats().throttled_ticks, 12u);

  // A chunk in flight is still owed an answer, budget or not.
  sent_.clear();
  Make(4, /*stall_ticks=*/2);
  sender_->Start(SnapshotMessage(3, 7, 100));
  bg_.RunAll();
  ASSERT_EQ(sent_.size(), 1u);
  sender_->Tick(true, 7);
  EXPECT_TRUE(sender_->streaming(3));
  sender_->Tick(true, 7);
  EXPECT_FALSE(sender_->streaming(3));
  EXPECT_EQ(reported_, std::vector<raft::NodeId>{3});
}

TEST_F(SnapshotSenderTest, StreamsToTwoFollowersShareTheBudgetInTurn) {
  chunks_.assign(20, "xxxx");
  max_bytes_per_tick_ = 4;  // one chunk a tick for both together
  Make(4, /*stall_ticks=*/5);
  sender_->Start(SnapshotMessage(2, 7, 100));
  sender_->Start(SnapshotMessage(3, 7, 100));
  SendAndAcknowledgeAll();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].first, 2u);
  for (uint64_t t = 1; t <= 12; t++) {
    sender_->Tick(true, 7);
    SendAndAcknowledgeAll();
    ASSERT_EQ(sent_.size(), t + 1);
    EXPECT_EQ(sent_.back().first, t % 2 == 0 ? 2u : 3u) << "tick " << t;
  }
  EXPECT_EQ(BytesSentTo(2), 28u);
  EXPECT_EQ(BytesSentTo(3), 24u);
}

TEST_F(SnapshotSenderTest, AChunkNotSentGivesItsBudgetBack) {
  max_bytes_per_tick_ = 4;  // one chunk's worth
  Make(2);
  fail_read_at_ = 0;
  sender_->Start(SnapshotMessage(2, 7, 100));
  bg_.RunAll();
  EXPECT_FALSE(sender_->streaming(2));
  fail_read_at_ = -1;
  transport_takes_ = false;
  sender_->Start(SnapshotMessage(3, 7, 100));
  bg_.RunAll();
  EXPECT_FALSE(sender_->streaming(3));
  EXPECT_EQ(reported_, (std::vector<raft::NodeId>{2, 3}));
  // No tick since: the budget is whole again.
  transport_takes_ = true;
  sender_->Start(SnapshotMessage(4, 7, 100));
  bg_.RunAll();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].first, 4u);
}

TEST_F(SnapshotSenderTest, ProgressTellsEachStreamsBytesAndWhetherItWaits) {
  max_bytes_per_tick_ = 4;
  Make(2);
  sender_->Start(SnapshotMessage(3, 7, 100));
  sender_->Start(SnapshotMessage(2, 7, 100));
  bg_.RunAll();
  sender_->OnAck(Ack(4, true, 3));
  sender_->Tick(true, 7);
  sender_->Tick(true, 7);
  bg_.RunAll();
  std::vector<SnapshotSender::Progress> p = sender_->progress();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].follower, 2u);
  EXPECT_EQ(p[1].follower, 3u);
  for (const SnapshotSender::Progress& q : p) {
    EXPECT_EQ(q.snapshot, meta_);
    EXPECT_EQ(q.elapsed_ticks, 2u);
  }
  // Node 3 took the first budget, node 2 the first refill, node 3 the second.
  EXPECT_EQ(p[1].bytes_sent, 8u);
  EXPECT_EQ(p[1].chunks_sent, 2u);
  EXPECT_EQ(p[1].bytes_acked, 4u);
  EXPECT_TRUE(p[1].throttled);
  EXPECT_EQ(p[0].bytes_sent, 4u);
  EXPECT_EQ(p[0].chunks_sent, 1u);
  EXPECT_EQ(p[0].bytes_acked, 0u);
  EXPECT_TRUE(p[0].throttled);
  EXPECT_EQ(sender_->stats().throttled_ticks, 2u);

  max_bytes_per_tick_ = 0;
  Make(2);
  sender_->Start(SnapshotMessage(2, 7, 100));
  bg_.RunAll();
  p = sender_->progress();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].bytes_sent, 8u);
  EXPECT_FALSE(p[0].throttled);
  sender_->Tick(true, 7);
  EXPECT_EQ(sender_->stats().throttled_ticks, 0u);
}

// ---- SnapshotReceiver ----

struct WriterLog {
  int created = 0;
  int destroyed = 0;
  std::vector<std::string> added;  // by every writer, in order
};

class FakeWriter : public kv::StateMachine::SnapshotWriter {
 public:
  FakeWriter(std::shared_ptr<WriterLog> log, raft::SnapshotMeta meta, common::Status fail)
      : log_(std::move(log)), meta_(meta), fail_(std::move(fail)) {
    log_->created++;
  }
  ~FakeWriter() override { log_->destroyed++; }
  common::Status Add(std::string_view chunk) override {
    if (chunk == "bad") return fail_;
    log_->added.emplace_back(chunk);
    return common::Status::OK();
  }
  common::Status Finish(raft::SnapshotMeta* meta) override {
    *meta = meta_;
    return common::Status::OK();
  }
  raft::SnapshotMeta meta() const override { return meta_; }

 private:
  std::shared_ptr<WriterLog> log_;
  raft::SnapshotMeta meta_;
  common::Status fail_;
};

class SnapshotReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SnapshotReceiver::Options o;
    o.self = 2;
    o.stall_ticks = 3;
    SnapshotReceiver::Hooks h;
    h.refusal = [this](const protocol::SnapshotChunk&) { return refusal_; };
    h.new_writer = [this](std::unique_ptr<kv::StateMachine::SnapshotWriter>* out) {
      *out = std::make_unique<FakeWriter>(log_, content_meta_, add_failure_);
      return common::Status::OK();
    };
    h.send_frame = [this](raft::NodeId peer, const protocol::PeerFrame& f) {
      EXPECT_TRUE(std::holds_alternative<protocol::SnapshotAck>(f));
      acks_.push_back(std::get<protocol::SnapshotAck>(f));
      EXPECT_EQ(peer, acks_.back().to);
      return true;
    };
    h.on_complete = [this](raft::NodeId from, raft::Term term, const raft::SnapshotMeta& meta) {
      completions_.push_back({from, term, meta.index});
      if (take_) taken_ = receiver_->TakeCompleted(meta);
    };
    h.on_fatal = [this](const common::Status& s) { fatal_ = s; };
    receiver_ = std::make_unique<SnapshotReceiver>(o, std::move(h), &bg_);
  }
  protocol::SnapshotChunk Chunk(uint64_t offset, std::string data, bool last = false,
                                raft::Index index = 50) {
    protocol::SnapshotChunk c;
    c.from = 1;
    c.to = 2;
    c.term = 4;
    c.snapshot_index = index;
    c.snapshot_term = 2;
    c.offset = offset;
    c.data = std::move(data);
    c.last = last;
    return c;
  }
  // The acknowledgements so far as "offset" or "!error", and forgets them.
  std::vector<std::string> TakeAcks() {
    std::vector<std::string> out;
    for (const protocol::SnapshotAck& a : acks_) {
      EXPECT_EQ(a.from, 2u);
      out.push_back(a.ok ? std::to_string(a.offset_received) : "!" + a.error);
    }
    acks_.clear();
    return out;
  }
  using Strings = std::vector<std::string>;

  ManualBackgroundWork bg_;
  std::shared_ptr<WriterLog> log_ = std::make_shared<WriterLog>();
  raft::SnapshotMeta content_meta_{50, 2};
  common::Status add_failure_ = common::Status::Corruption("snapshot chunk fails its checksum");
  std::string refusal_;
  bool take_ = true;
  std::vector<protocol::SnapshotAck> acks_;
  struct Completion {
    raft::NodeId from;
    raft::Term term;
    raft::Index index;
  };
  std::vector<Completion> completions_;
  std::unique_ptr<kv::StateMachine::SnapshotWriter> taken_;
  common::Status fatal_;
  std::unique_ptr<SnapshotReceiver> receiver_;
};

TEST_F(SnapshotReceiverTest, AWholeStreamIsWrittenInOrderAndHandedOver) {
  receiver_->OnChunk(Chunk(0, "aaa"));
  receiver_->OnChunk(Chunk(3, "bbb"));
  receiver_->OnChunk(Chunk(6, "cc", true));
  EXPECT_EQ(bg_.pending(), 1u) << "one chunk written at a time";
  bg_.RunAll();
  EXPECT_EQ(log_->added, (Strings{"aaa", "bbb", "cc"}));
  EXPECT_EQ(TakeAcks(), (Strings{"3", "6", "8"}));
  ASSERT_EQ(completions_.size(), 1u);
  EXPECT_EQ(completions_[0].from, 1u);
  EXPECT_EQ(completions_[0].term, 4u);
  EXPECT_EQ(completions_[0].index, 50u);
  ASSERT_NE(taken_, nullptr);
  EXPECT_EQ(taken_->meta(), (raft::SnapshotMeta{50, 2}));
  EXPECT_EQ(log_->created, 1);
  EXPECT_EQ(log_->destroyed, 0);
  EXPECT_EQ(receiver_->TakeCompleted({50, 2}), nullptr) << "only while completing";
}

TEST_F(SnapshotReceiverTest, RepeatsAndChunksAfterAHoleAreAnsweredWithWhatItHas) {
  receiver_->OnChunk(Chunk(0, "aaa"));
  receiver_->OnChunk(Chunk(3, "bbb"));
  receiver_->OnChunk(Chunk(3, "bbb"));  // a repeat
  receiver_->OnChunk(Chunk(9, "ddd"));  // after a hole at 6
  bg_.RunAll();
  EXPECT_EQ(log_->added, (Strings{"aaa", "bbb"}));
  EXPECT_EQ(TakeAcks(), (Strings{"3", "6", "6", "6"}));
  // The middle of a stream it never had: it has nothing of it.
  receiver_->OnChunk(Chunk(3, "xxx", false, 60));
  bg_.RunAll();
  EXPECT_EQ(TakeAcks(), (Strings{"0"}));
  // The right next chunk still continues the stream.
  receiver_->OnChunk(Chunk(6, "ccc", true));
  bg_.RunAll();
  EXPECT_EQ(TakeAcks(), (Strings{"9"}));
  EXPECT_EQ(completions_.size(), 1u);
  EXPECT_EQ(receiver_->stats().chunks_skipped, 3u);
}

TEST_F(SnapshotReceiverTest, OffsetZeroStartsANewStreamWithAFreshWriter) {
  receiver_->OnChunk(Chunk(0, "aaa"));
  receiver_->OnChunk(Chunk(3, "bbb"));
  bg_.RunAll();
  content_meta_ = {60, 2};
  receiver_->OnChunk(Chunk(0, "new", false, 60));
  bg_.RunAll();
  EXPECT_EQ(log_->created, 2);
  EXPECT_EQ(log_->destroyed, 1) << "the old writer is closed before the new one opens";
  receiver_->OnChunk(Chunk(6, "ccc", true));  // the old stream's next chunk: not taken
  receiver_->OnChunk(Chunk(3, "end", true, 60));
  bg_.RunAll();
  EXPECT_EQ(TakeAcks(), (Strings{"3", "6", "3", "0", "6"}));
  ASSERT_EQ(completions_.size(), 1u);
  EXPECT_EQ(completions_[0].index, 60u);
}

TEST_F(SnapshotReceiverTest, ABadChunkRefusesTheStream) {
  receiver_->OnChunk(Chunk(0, "aaa"));
  receiver_->OnChunk(Chunk(3, "bad"));
  receiver_->OnChunk(Chunk(6, "ccc", true));
  bg_.RunAll();
  Strings acks = TakeAcks();
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0], "3");
  EXPECT_NE(acks[1].find("!Corruption"), std::string::npos) << acks[1];
  EXPECT_EQ(acks[2], "0") << "the stream is gone";
  EXPECT_EQ(log_->destroyed, 1);
  EXPECT_TRUE(completions_.empty());
  EXPECT_TRUE(fatal_.ok());
}

TEST_F(SnapshotReceiverTest, FrameAndContentMustNameOneSnapshot) {
  content_meta_ = {51, 2};  // the chunk's bytes say 51, its frame 50
  receiver_->OnChunk(Chunk(0, "aaa", true));
  bg_.RunAll();
  Strings acks = TakeAcks();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_NE(acks[0].find("!InvalidArgument"), std::string::npos) << acks[0];
  EXPECT_TRUE(completions_.empty());
  EXPECT_EQ(log_->destroyed, 1);
}

TEST_F(SnapshotReceiverTest, AWriteErrorIsFatal) {
  add_failure_ = common::Status::IOError("No space left on device");
  receiver_->OnChunk(Chunk(0, "bad"));
  bg_.RunAll();
  EXPECT_EQ(fatal_.code(), common::Status::Code::kIOError);
  EXPECT_TRUE(TakeAcks().empty()) << "a node that stops answers nothing";
}

TEST_F(SnapshotReceiverTest, RefusedChunksAreAnsweredAndNotWritten) {
  receiver_->OnChunk(Chunk(0, "aaa"));
  bg_.RunAll();
  refusal_ = "installing another snapshot";
  receiver_->OnChunk(Chunk(3, "bbb"));
  bg_.RunAll();
  EXPECT_EQ(TakeAcks(), (Strings{"3", "!installing another snapshot"}));
  EXPECT_EQ(log_->added, (Strings{"aaa"}));
  EXPECT_EQ(log_->destroyed, 1) << "a refused stream is dropped";
  refusal_.clear();
  receiver_->OnChunk(Chunk(6, "ccc", true));
  bg_.RunAll();
  EXPECT_EQ(TakeAcks(), (Strings{"0"}));
}

TEST_F(SnapshotReceiverTest, ACompleteStreamNotTakenIsDiscarded) {
  take_ = false;  // the core already had it
  receiver_->OnChunk(Chunk(0, "aaa", true));
  bg_.RunAll();
  EXPECT_EQ(completions_.size(), 1u);
  EXPECT_EQ(log_->destroyed, 1);
}

TEST_F(SnapshotReceiverTest, AnIdleIncompleteStreamIsDroppedAfterStallTicks) {
  receiver_->OnChunk(Chunk(0, "aaa"));
  bg_.RunAll();
  receiver_->Tick();
  receiver_->Tick();
  EXPECT_EQ(log_->destroyed, 0);
  receiver_->Tick();
  bg_.RunAll();
  EXPECT_EQ(log_->destroyed, 1);
  receiver_->OnChunk(Chunk(3, "bbb", true));
  bg_.RunAll();
  EXPECT_EQ(TakeAcks(), (Strings{"3", "0"}));
  EXPECT_TRUE(completions_.empty());
}

TEST_F(SnapshotReceiverTest, ProgressTellsTheStreamBeingReceived) {
  EXPECT_FALSE(receiver_->progress().has_value());
  receiver_->OnChunk(Chunk(0, "aaa"));
  receiver_->OnChunk(Chunk(3, "bbbb"));
  bg_.RunAll();
  receiver_->Tick();
  receiver_->Tick();
  std::optional<SnapshotReceiver::ReceiveProgress> p = receiver_->progress();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->from, 1u);
  EXPECT_EQ(p->snapshot, (raft::SnapshotMeta{50, 2}));
  EXPECT_EQ(p->bytes_received, 7u);
  EXPECT_EQ(p->elapsed_ticks, 2u);
  receiver_->OnChunk(Chunk(7, "cc", true));
  bg_.RunAll();
  EXPECT_FALSE(receiver_->progress().has_value()) << "complete";
}

TEST_F(SnapshotReceiverTest, StopDropsWhatWaits) {
  receiver_->OnChunk(Chunk(0, "aaa"));
  receiver_->OnChunk(Chunk(3, "bbb", true));
  receiver_->Stop();
  bg_.RunAll();
  receiver_->OnChunk(Chunk(0, "ccc"));
  bg_.RunAll();
  EXPECT_TRUE(acks_.empty());
  EXPECT_TRUE(completions_.empty());
  EXPECT_LE(log_->added.size(), 1u);
}

}  // namespace
}  // namespace server
