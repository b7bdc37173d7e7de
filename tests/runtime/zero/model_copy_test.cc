// ModelCopy: the sharded copy (stage 3) gathers a run of parameters whole
// from every rank's shard and frees it on release; the replicated one is
// the whole buffer. Ranks as threads over Gloo; the reference is the flat
// buffer the copies were made from.
#include "runtime/zero/model_copy.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"
#include "tests/runtime/zero/engine_fixture.h"

namespace zshard::zero {
namespace {

using namespace std::chrono_literals;

// Four parameters of 7, 1, 12 and 5 floats, aligned to 2: shards split them.
shard::ShardPlan plan(int world) {
  return shard::ShardPlan::build({{{7}, DType::kFloat32},
                                  {{1}, DType::kFloat32},
                                  {{3, 4}, DType::kFloat32},
                                  {{5}, DType::kFloat32}},
                                 world, 2);
}

std::vector<float> flatValues(const shard::ShardPlan& p) {
  std::vector<float> v(p.totalNumel());
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) + 0.5f;
  return v;
}

// What a sharded copy on `rank` starts from: its shard of the flat values.
const char* ownValues(const shard::ShardPlan& p, const std::vector<float>& flat, int rank) {
  return reinterpret_cast<const char*>(flat.data() + p.ownerRange(rank).begin);
}

void onRanks(int world, const std::function<void(int, comm::Communicator&)>& body) {
  for (const std::string& f : fixture::onRanks(world, body)) EXPECT_EQ(f, "");
}

// `body` on every rank of worlds 1, 2 and 3, each with its sharded copy of
// flatValues().
void onShardedCopies(const std::function<void(const shard::ShardPlan&, const std::vector<float>&,
                                              ModelCopy&)>& body) {
  for (int world : {1, 2, 3}) {
    const shard::ShardPlan p = plan(world);
    const std::vector<float> flat = flatValues(p);
    onRanks(world, [&](int rank, comm::Communicator& comm) {
      auto copy = makeShardedCopy(p, comm, kernels::cpuBackend(), kernels::cpuBackend(),
                                  DType::kFloat32, ownValues(p, flat, rank), 20s);
      body(p, flat, *copy);
    });
  }
}

TEST(ModelCopy, ShardedGathersRunsWholeAndFreesThem) {
  onShardedCopies([](const shard::ShardPlan& p, const std::vector<float>& flat, ModelCopy& c) {
    ModelCopy* copy = &c;
    const int64_t shard_bytes = p.shardNumel() * 4;
    EXPECT_EQ(copy->bytes(), shard_bytes);
    for (auto [first, last] :
         {std::pair{0, 0}, std::pair{1, 2}, std::pair{0, 3}, std::pair{3, 3}}) {
      const float* run = static_cast<const float*>(copy->gather(first, last));
      const int64_t begin = p.params()[first].offset, end = p.params()[last].range().end;
      for (int64_t i = begin; i < end; ++i)
        EXPECT_EQ(run[i - begin], flat[i]) << first << ".." << last;
      EXPECT_EQ(copy->bytes(), shard_bytes + (end - begin) * 4);
      EXPECT_EQ(copy->gather(first, last), run);  // a second use of the live run
      copy->release(first);
      EXPECT_EQ(copy->liveRuns(), 1);
      copy->release(first);
      EXPECT_EQ(copy->liveRuns(), 0);
      EXPECT_EQ(copy->bytes(), shard_bytes);
    }
    EXPECT_EQ(copy->peakBytes(), shard_bytes + p.params()[3].range().end * 4);  // the run 0..3
    copy->gather(1, 2);
    EXPECT_THROW(copy->gather(2, 3), UsageError);  // overlaps the live run
    EXPECT_THROW(copy->release(0), UsageError);    // not gathered
    EXPECT_THROW(copy->gather(2, 1), UsageError);
    copy->release(1);
  });
}

// Prefetch: several gathers in flight at once, waited in any order, each
// into its own caller buffer, equal the flat values.
TEST(ModelCopy, GathersStartedAheadArriveWhole) {
  onShardedCopies([](const shard::ShardPlan& p, const std::vector<float>& flat, ModelCopy& c) {
    ModelCopy* copy = &c;
    const std::vector<std::pair<int, int>> runs = {{0, 1}, {2, 2}, {3, 3}};
    std::vector<std::vector<float>> out;
    std::vector<std::shared_ptr<comm::Work>> works;
    for (auto [first, last] : runs) {
      out.emplace_back(p.params()[last].range().end - p.params()[first].offset, -1.f);
      works.push_back(copy->startGatherInto(first, last, out.back().data()));
    }
    for (size_t k = works.size(); k-- > 0;) {
      works[k]->wait(20s);
      const int64_t begin = p.params()[runs[k].first].offset;
      for (size_t i = 0; i < out[k].size(); ++i) EXPECT_EQ(out[k][i], flat[begin + i]) << k;
    }
    EXPECT_EQ(copy->liveRuns(), 0);  // caller buffers: nothing tracked
  });
}

// On 2 ranks, each rank's failure when rank r does what `act` says.
std::vector<std::string> failuresOfTwoRanks(const std::function<void(int, ModelCopy&)>& act) {
  const shard::ShardPlan p = plan(2);
  const std::vector<float> flat = flatValues(p);
  const auto failures = fixture::onRanks(2, [&](int rank, comm::Communicator& comm) {
    auto copy = makeShardedCopy(p, comm, kernels::cpuBackend(), kernels::cpuBackend(),
                                DType::kFloat32, ownValues(p, flat, rank), 20s);
    act(rank, *copy);
  });
  EXPECT_EQ(failures.size(), 2u);
  return failures;
}

TEST(ModelCopy, RanksGatheringDifferentRunsFailNamingEachRanksRun) {
  std::vector<float> mine(64);
  for (const std::string& f : failuresOfTwoRanks([&](int rank, ModelCopy&copy) {
         copy.startGatherInto(rank, rank, mine.data())
             ->wait(20s);  // rank 0 parameter 0, rank 1 parameter 1
       })) {
    EXPECT_NE(f.find("rank 0 parameters 0..0, rank 1 parameters 1..1"), std::string::npos) << f;
  }
}

// A rank that ends its pass while a peer still gathers (it ran a module
// more) fails with it at once.
TEST(ModelCopy, ARankEndingItsPassWhileAPeerGathersFailsWithIt) {
  std::vector<float> mine(64);
  for (const std::string& f : failuresOfTwoRanks([&](int rank, ModelCopy&copy) {
         if (rank == 0) copy.startGatherInto(3, 3, mine.data())->wait(20s);
         if (rank == 1) copy.endPass();
       })) {
    EXPECT_NE(f.find("rank 0 parameters 3..3, rank 1 ended its backward"), std::string::npos) << f;
  }
}

TEST(ModelCopy, PublishRefreshesLiveRunsFromTheNewShards) {
  const int world = 3;
  const shard::ShardPlan p = plan(world);
  const std::vector<float> flat = flatValues(p);
  onRanks(world, [&](int rank, comm::Communicator& comm) {
    auto copy = makeShardedCopy(p, comm, kernels::cpuBackend(), kernels::cpuBackend(),
                                DType::kFloat32, ownValues(p, flat, rank), 20s);
    const float* run = static_cast<const float*>(copy->gather(0, 3));
    float* own = static_cast<float*>(copy->ownShard().data);
    for (int64_t i = 0; i < p.shardNumel(); ++i) own[i] = -float(rank);
    copy->publish();
    for (int64_t i = 0; i < p.params()[3].range().end; ++i) EXPECT_EQ(run[i], -float(p.ownerOf(i)));
    copy->release(0);
  });
}

TEST(ModelCopy, ReplicatedIsTheWholeBufferAndPublishAllGathers) {
  const int world = 2;
  const shard::ShardPlan p = plan(world);
  const std::vector<float> flat = flatValues(p);
  onRanks(world, [&](int rank, comm::Communicator& comm) {
    auto copy = makeReplicatedCopy(p, comm, kernels::cpuBackend(), DType::kFloat32,
                                   reinterpret_cast<const char*>(flat.data()), 20s);
    EXPECT_EQ(copy->bytes(), p.totalNumel() * 4);
    const float* all = static_cast<const float*>(copy->gather(0, 3));
    EXPECT_EQ(all[p.params()[2].offset], flat[p.params()[2].offset]);
    float* own = static_cast<float*>(copy->ownShard().data);
    for (int64_t i = 0; i < p.shardNumel(); ++i) own[i] = float(rank + 10);
    copy->publish();
    for (int64_t i = 0; i < p.totalNumel(); ++i) EXPECT_EQ(all[i], float(p.ownerOf(i) + 10));
  });
}

}  // namespace
}  // namespace zshard::zero
